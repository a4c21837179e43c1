"""``tools/condense_reference.py``: seconds per condensation iteration, ours vs the reference code.

Times DM (Fashion-MNIST, 10 images per class), DC and DSA (1 image per class), ConvNet,
in our implementation (``tome_train.condense``) and in the public reference code
(VICO-UoE DatasetCondensation: ``main_DM.py``, ``main.py --method DC|DSA``), alternating
ours / reference / reference / ours ... so that background load weighs on both alike.
Every run is a fresh process with the same thread count; only the condensation loop is
timed (data loading, set-up and evaluation are not).

The reference is never copied into this repository and never downloaded: ``--reference-dir``
is an unpacked copy of it. Its ``.py`` files are copied into a temporary folder and two
compatibility fixes are applied there (the JSON lists how often each matched), because
the code dates from older torch:

* ``networks.py``: ``out.view(out.size(0), -1)`` -> ``out.reshape(...)``; DSA's crop
  returns channels-last tensors, and ``view`` of them fails on current torch;
* ``utils.py``: ``t[:] = t[0]`` -> ``t[:] = t[0].clone()`` in the Siamese augmentation;
  current torch refuses an in-place copy from an overlapping view (a batch of one image).

Fashion-MNIST is unpacked from ``--data-path`` (the idx ``.gz`` files) into the layout
torchvision's ``FashionMNIST(root)`` reads (``root/FashionMNIST/raw/``) in the same folder.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tome_train.argtypes import DefaultsHelpFormatter, one_line_errors

from ..atomic import atomic_write_text
from .common import exits_on_bad_input

REFERENCE_FILES = ("main.py", "main_DM.py", "utils.py", "networks.py")
#: (file, pattern, replacement) applied to the temporary copy of the reference
COMPAT_PATCHES = (
    ("networks.py", r"out\.view\(out\.size\(0\), -1\)", "out.reshape(out.size(0), -1)"),
    ("utils.py", r"\b(\w+)\[:\] = \1\[0\]", r"\1[:] = \1[0].clone()"),
)
FMNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte")
#: method -> (reference script, its method arguments, default ipc, default iterations)
METHODS = {
    "dm": ("main_DM.py", [], 10, 10),
    "dc": ("main.py", ["--method", "DC"], 1, 5),
    "dsa": ("main.py", ["--method", "DSA", "--dsa_strategy", "color_crop_cutout_flip_scale_rotate"], 1, 5),
}
REPO_ROOT = Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    p.add_argument("--reference-dir", required=True,
                   help="unpacked VICO-UoE DatasetCondensation checkout (main.py, main_DM.py, utils.py, networks.py)")
    p.add_argument("--data-path", required=True, help="folder with the Fashion-MNIST idx files (.gz or not)")
    p.add_argument("--methods", default="dm,dc,dsa", help="comma-separated subset of dm,dc,dsa")
    p.add_argument("--repeats", type=int, default=3, help="runs of each implementation per method")
    for name, (_, _, ipc, iterations) in METHODS.items():
        p.add_argument(f"--{name}-ipc", type=int, default=ipc)
        p.add_argument(f"--{name}-iterations", type=int, default=iterations, help="timed iterations per run")
    p.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads in every run")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per run")
    p.add_argument("--work-dir", default=None, help="scratch folder (default: a temporary one, removed)")
    p.add_argument("--output", default=None, help="also write the JSON here")
    return one_line_errors(p)


def check_reference_dir(path: str | Path) -> Path:
    folder = Path(path)
    missing = [name for name in REFERENCE_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"--reference-dir {folder}: not an unpacked DatasetCondensation checkout "
                                f"(missing {', '.join(missing)}); nothing is downloaded")
    return folder


def prepare_reference(reference_dir: Path, work_dir: Path) -> tuple[Path, dict[str, int]]:
    """Copy the reference's ``.py`` files to ``work_dir/reference`` and apply :data:`COMPAT_PATCHES`."""
    copy = work_dir / "reference"
    copy.mkdir(parents=True, exist_ok=True)
    for source in reference_dir.glob("*.py"):
        shutil.copy2(source, copy / source.name)
    applied = {}
    for name, pattern, replacement in COMPAT_PATCHES:
        text = (copy / name).read_bytes().decode("utf-8")
        text, count = re.subn(pattern, replacement, text)
        (copy / name).write_bytes(text.encode("utf-8"))
        applied[f"{name}: {pattern} -> {replacement}"] = count
    return copy, applied


def prepare_fashion_mnist(data_path: Path, work_dir: Path) -> Path:
    """``work_dir/data/FashionMNIST/raw/<idx files>`` un-gzipped from ``data_path``; returns the root."""
    raw = work_dir / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stem in FMNIST_FILES:
        for folder in (data_path, data_path / "FashionMNIST" / "raw"):
            if (folder / f"{stem}.gz").is_file():
                with gzip.open(folder / f"{stem}.gz", "rb") as src, open(raw / stem, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                break
            if (folder / stem).is_file():
                shutil.copyfile(folder / stem, raw / stem)
                break
        else:
            raise FileNotFoundError(f"--data-path {data_path}: {stem}(.gz) not found")
    return raw.parents[1]


def _environment(threads: int, ours: bool) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.pop("PYTHONPATH", None)
    if ours:
        env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def _run(command: list[str], env: dict[str, str], cwd: Path, timeout: float) -> dict[str, Any]:
    load_before = os.getloadavg()
    try:
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ValueError(f"{' '.join(command[:4])} ... ran past --timeout {timeout:g} s") from None
    if done.returncode != 0:  # a broken or foreign reference checkout: one line, not a traceback
        tail = done.stderr.strip().splitlines()[-3:]
        raise ValueError(f"{' '.join(command[:4])} ... exited {done.returncode}: {' | '.join(tail)}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_avg_1min"] = [load_before[0], os.getloadavg()[0]]
    return result


def run_ours(args: argparse.Namespace, method: str, work_dir: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "tome_train.cli.condense_reference_ours", "--method", method,
               "--ipc", str(getattr(args, f"{method}_ipc")),
               "--iterations", str(getattr(args, f"{method}_iterations")),
               "--data-path", str(Path(args.data_path).resolve()), "--threads", str(args.threads)]
    return _run(command, _environment(args.threads, ours=True), REPO_ROOT, args.timeout)


def run_reference(args: argparse.Namespace, method: str, reference: Path, data_root: Path,
                  work_dir: Path) -> dict[str, Any]:
    script, method_args, _, _ = METHODS[method]
    worker = Path(__file__).with_name("condense_reference_theirs.py")
    # --Iteration N runs N + 1 iterations: the worker times the N intervals between their starts.
    command = [sys.executable, str(worker), str(reference), str(args.threads), script, *method_args,
               "--dataset", "FashionMNIST", "--model", "ConvNet",
               "--ipc", str(getattr(args, f"{method}_ipc")),
               "--Iteration", str(getattr(args, f"{method}_iterations")),
               "--num_exp", "1", "--num_eval", "1", "--init", "real",
               "--data_path", str(data_root), "--save_path", str(work_dir / "result")]
    return _run(command, _environment(args.threads, ours=False), work_dir, args.timeout)


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Median over runs of each run's median seconds per iteration, and ours / reference."""
    out: dict[str, Any] = {}
    for side, side_runs in runs.items():
        medians = [statistics.median(r["seconds"]) for r in side_runs]
        out[f"{side}_sec_per_iteration"] = statistics.median(medians)
        out[f"{side}_run_medians"] = [round(m, 4) for m in medians]
        out[f"{side}_run_means"] = [round(statistics.fmean(r["seconds"]), 4) for r in side_runs]
        out[f"{side}_iterations_timed"] = [len(r["seconds"]) for r in side_runs]
        out[f"{side}_torch_threads"] = sorted({r["torch_threads"] for r in side_runs})
    ours_tuned = {r.get("cpu_allocator_tuned") for r in runs.get("ours", [])}
    out["ours_cpu_allocator_tuned"] = ours_tuned.pop() if len(ours_tuned) == 1 else sorted(ours_tuned, key=str)
    out["ratio_ours_over_reference"] = out["ours_sec_per_iteration"] / out["reference_sec_per_iteration"]
    # Runs of the same repeat are adjacent in time: their ratio sees (nearly) the same background load.
    paired = [o / r for o, r in zip(out["ours_run_medians"], out["reference_run_medians"])]
    out["paired_ratios"] = [round(x, 3) for x in paired]
    out["paired_ratio_median"] = statistics.median(paired)
    return out


def _check(args: argparse.Namespace) -> list[str]:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise ValueError(f"--methods: expected a comma-separated subset of {sorted(METHODS)}, got {args.methods!r}")
    for name in ("repeats", "threads", *(f"{m}_{k}" for m in METHODS for k in ("ipc", "iterations"))):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.timeout > 0:
        raise ValueError(f"--timeout must be > 0 seconds, got {args.timeout}")
    if not Path(args.data_path).exists():
        raise FileNotFoundError(f"--data-path {args.data_path} does not exist")
    return methods


def run(args: argparse.Namespace) -> dict[str, Any]:
    reference_dir = check_reference_dir(args.reference_dir)
    methods = _check(args)
    scratch = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="condense-reference-"))
    try:
        reference, patches = prepare_reference(reference_dir, scratch)
        data_root = prepare_fashion_mnist(Path(args.data_path), scratch)
        load_start = os.getloadavg()
        results: dict[str, Any] = {}
        for method in methods:
            runs: dict[str, list[dict[str, Any]]] = {"ours": [], "reference": []}
            for repeat in range(args.repeats):
                # ours, reference, reference, ours, ...: drift in the background load cancels out
                order = ("ours", "reference") if repeat % 2 == 0 else ("reference", "ours")
                for side in order:
                    if side == "ours":
                        runs[side].append(run_ours(args, method, scratch))
                    else:
                        runs[side].append(run_reference(args, method, reference, data_root, scratch))
            results[method] = {"ipc": getattr(args, f"{method}_ipc"), **summarise(runs),
                               "load_avg_1min_per_run": {s: [r["load_avg_1min"] for r in rs]
                                                         for s, rs in runs.items()}}
        return {"methods": results, "repeats": args.repeats, "threads": args.threads,
                "cpu_count": os.cpu_count(), "load_avg_start": load_start, "load_avg_end": os.getloadavg(),
                "timed": "each iteration alone (ours: Condenser.step; reference: between the starts of two "
                         "iterations); data loading, set-up and evaluation excluded",
                "reference_patches": patches}
    finally:
        if not args.work_dir:
            shutil.rmtree(scratch, ignore_errors=True)


@exits_on_bad_input
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    summary = run(args)
    text = json.dumps(summary, indent=2)
    if args.output:
        atomic_write_text(text + "\n", args.output)
    print(text, flush=True)
    return 0
