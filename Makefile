# The two commands of the README: `make demo` and `make test`.
# Both build .venv on first use (about 2 minutes: torch is installed from pip).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) tools/compare.py --dataset digits --epochs 6 --seeds 0,1 --jobs 2 \
		--variants dense,dynamic-random,forgetting-swap,infobatch,tokens,all --output-dir runs/demo

test: $(STAMP)
	OMP_NUM_THREADS=2 $(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check tome_train models tools tests

clean:
	rm -rf $(VENV) runs build *.egg-info
