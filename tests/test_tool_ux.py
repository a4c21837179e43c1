"""What a user of the tools sees: console scripts, help, notices, one-line errors, JSON names."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tome_train.cli import benchmark as benchmark_cli
from tome_train.cli import flops as flops_cli
from tome_train.cli.train import cli as train_cli
from tome_train.job import train as train_job
from tome_train.job.args import build_parser

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = ["--dataset", "digits", "--limit-train", "64", "--limit-test", "32", "--seed", "0",
        "--device", "cpu", "--no-progress"]


def _entry_points() -> dict[str, tuple[str, str]]:
    """``[project.scripts]`` of pyproject.toml: name -> (module, function)."""
    text = (REPO_ROOT / "pyproject.toml").read_text()
    section = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return {name: (module, func) for name, module, func
            in re.findall(r'^([\w-]+)\s*=\s*"([\w.]+):(\w+)"', section, re.M)}


def _console_script(name: str, tmp_path: Path) -> list[str]:
    """The installed console script when it is current (a venv built by ``make test``), else
    an equivalent of what pip generates from pyproject.toml, run by this interpreter."""
    module, func = _entry_points()[name]
    installed = Path(sys.executable).parent / name
    if installed.is_file() and f"from {module} import {func}" in installed.read_text():
        return [str(installed)]
    script = tmp_path / name
    script.write_text(f"import sys\nfrom {module} import {func}\n"
                      f"if __name__ == '__main__':\n    sys.exit({func}())\n")
    return [sys.executable, str(script)]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_tome_train_console_script_exits_0_after_training(tmp_path: Path) -> None:
    cmd = _console_script("tome-train", tmp_path)
    done = _run([*cmd, *TINY, "--epochs", "1", "--output-dir", str(tmp_path / "run")])
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "summary.json").is_file()
    assert "top1=" in done.stdout
    assert "'world_size'" not in done.stderr  # the summary is not dumped by sys.exit
    assert "FutureWarning" not in done.stderr
    usage = _run([*cmd, "--help"])
    assert usage.returncode == 0 and usage.stdout.startswith("usage: tome-train")


def test_tome_flops_console_script(tmp_path: Path) -> None:
    done = _run([*_console_script("tome-flops", tmp_path), "--model", "deit_micro_patch2_16",
                 "--keep-rate", "0.7", "--json"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["tokens_per_block"][4] == 46


def test_model_is_checked_before_the_data_loads(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    def no_data(*args, **kwargs):
        raise AssertionError("the data set was loaded before the model was checked")

    monkeypatch.setattr(train_job, "build_dataset", no_data)
    for model, needle in (("vit_medium_patch16_gap_256", "class token"), ("no_such_vit", "unknown model"),
                          ("convnet3", "VisionTransformer")):
        with pytest.raises(SystemExit) as info:
            train_cli([*TINY, "--model", model, "--keep-rate", "0.7"])
        assert info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err and err.startswith("error: --model")


def test_attention_level_notice_summary_and_flops_agree(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """deit_micro_patch2_16 keeps 46/33/24 tokens at keep 0.7: auto runs dense attention
    there. Training says so once, records it, and tools/flops.py counts what it ran."""
    summary = train_job.main([*TINY, "--epochs", "2", "--warmup-epochs", "0", "--keep-rate", "0.7",
                              "--attn-keep", "0.3", "--output-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    notices = [line for line in err.splitlines() if "attention level runs dense" in line]
    assert len(notices) == 1 and "46/33/24" in notices[0] and "--attn-impl" in notices[0]
    assert "lr=1e-05" in out  # the last epoch's LR (min_lr), not rounded to 0.0
    level = json.loads((tmp_path / "summary.json").read_text())["attention_level"]
    assert level["requested"] == 0.3 and level["active"] is False and "64 tokens" in level["reason"]
    assert summary["attention_level"] == level

    assert flops_cli.main(["--model", "deit_micro_patch2_16", "--keep-rate", "0.7",
                           "--attn-keep", "0.3", "--json"]) == 0
    counted = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counted["attn_impl"] == "auto" and counted["attn_active"] is False
    assert counted["sparse_gflops"] == summary["ledger"][0]["forward_gflops_per_sample"]
    # A pinned sparse kernel counts (and would run) the kept blocks only.
    assert flops_cli.main(["--model", "deit_micro_patch2_16", "--keep-rate", "0.7",
                           "--attn-keep", "0.3", "--attn-impl", "block_sparse", "--json"]) == 0
    pinned = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert pinned["attn_active"] is True and pinned["sparse_gflops"] < counted["sparse_gflops"]


def test_help_states_each_default_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/somewhere/train.py"])
    parser = build_parser()
    assert parser.prog == "train.py"
    text = parser.format_help()
    assert "(default: None)" not in text and "(default: False)" not in text
    assert re.search(r"--img-size IMG_SIZE\s+input size \(default: the model's", text)
    assert re.search(r"--epochs EPOCHS\s+\(default: 30\)", text)
    assert "--attn-impl" in text


def test_benchmark_names_a_token_baseline_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--model", "deit_micro_patch4_32", "--keep-rate", "0.7", "--attn-keep", "0.3",
              "--batch-size", "2", "--iters", "1", "--warmup", "0", "--json"]
    assert benchmark_cli.main([*common, "--baseline", "tokens"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["baseline"] == "tokens"
    assert {"baseline_gflops", "baseline_step_s", "baseline_images_per_s"} <= set(out)
    assert not [key for key in out if key.startswith("dense_")]
    assert set(out["step_s_all"]) == {"baseline", "sparse"}
    assert benchmark_cli.main(common) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["baseline"] == "dense" and "dense_step_s" in out and "baseline_step_s" not in out


def test_tracker_reports_the_iterations_that_ran() -> None:
    from tome_train.selection.bench import tracker_overhead

    out = tracker_overhead(num_samples=500, batch=16, iters=3, reference_model="deit_micro_patch2_16",
                           reference_iters=1)
    assert out["update_iters"] == 3 and out["step_iters"] == 1 and "iters" not in out


def test_compare_reports_whether_the_attention_level_ran() -> None:
    from tome_train.cli.compare_report import aggregate, format_table

    def run(seed: int, level: dict) -> dict:
        return {"top1": 50.0, "train_gflops": 1.0, "wall_s": 1.0, "args": {"seed": seed},
                "attention_level": level}

    unset = {"requested": None, "active": False, "reason": "--attn-keep not set"}
    dense = {"requested": 0.3, "active": False, "reason": "the auto kernel choice runs dense attention below 64 tokens"}
    table = aggregate({"dense": [run(0, unset)], "all": [run(0, dense)], "old": [{**run(0, {}), "attention_level": None}]})
    assert table["dense"]["attn_active"] is None and table["old"]["attn_active"] is None
    assert table["all"]["attn_active"] is False and "64 tokens" in table["all"]["attn_dense_reason"]
    lines = format_table(table).splitlines()
    assert "attention dense" in lines[2] and "attention dense" not in lines[1]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_is_bad_input() -> None:
    from tome_train.engine.runtime import resolve_device

    with pytest.raises(ValueError, match="--device"):
        resolve_device("cuda")


def test_tools_run_the_library_of_their_own_checkout(tmp_path: Path) -> None:
    """An environment that has another checkout installed (or on PYTHONPATH) does not shadow this one."""
    shadow = tmp_path / "tome_train"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('the library of another checkout')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for tool in ("condense.py", "select.py"):
        done = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / tool), "--help"], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (tool, done.stderr[-500:])
    for tool in sorted((REPO_ROOT / "tools").glob("*.py")):
        assert "sys.path.insert(0" in tool.read_text(), tool.name
