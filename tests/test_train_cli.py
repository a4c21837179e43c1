"""``tools/train.py`` end to end on (a slice of) digits: summary, resume exactness, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tome_train.engine import load_checkpoint
from tome_train.job.train import main

REPO_ROOT = Path(__file__).resolve().parent.parent
# A slice of digits keeps every run to a few seconds on 2 CPU cores.
TINY = [
    "--dataset", "digits", "--limit-train", "192", "--limit-test", "96", "--batch-size", "32",
    "--keep-rate", "0.7", "--data-keep", "0.8", "--seed", "0", "--device", "cpu", "--no-progress",
]


def _run(out: Path, *extra: str) -> dict:
    main([*TINY, "--output-dir", str(out), *extra])
    return json.loads((out / "summary.json").read_text())


def test_summary_fields_and_files(tmp_path: Path) -> None:
    summary = _run(tmp_path, "--epochs", "1")
    for key in ("top1", "train_gflops", "dense_train_gflops", "wall_s", "epochs", "ledger", "args"):
        assert key in summary, key
    assert set(summary["selector"]) >= {"active_count", "removed_count", "swaps", "active_digest"}
    assert summary["epochs"] == 1 and len(summary["ledger"]) == 1
    assert 0 < summary["train_gflops"] < summary["dense_train_gflops"]
    assert summary["dense_train_gflops"] == pytest.approx(
        summary["dense_forward_gflops"] * 3 * 192 * 1
    )
    assert summary["args"]["keep_rate"] == 0.7 and summary["args"]["model"] == "deit_micro_patch2_16"
    for name in ("checkpoint.pt", "log.csv", "log.jsonl"):
        assert (tmp_path / name).is_file(), name
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_selector_off_reports_all_active(tmp_path: Path) -> None:
    summary = _run(tmp_path, "--epochs", "1", "--data-keep", "1.0", "--keep-rate", "1.0")
    assert summary["selector"]["active_count"] == 192
    assert summary["selector"]["removed_count"] == 0 and summary["selector"]["swaps"] == 0
    assert summary["train_gflops"] == pytest.approx(summary["dense_train_gflops"])


def test_random_subset_baseline(tmp_path: Path) -> None:
    summary = _run(tmp_path, "--epochs", "1", "--random-subset", "--keep-rate", "1.0")
    assert summary["selector"]["active_count"] == round(0.8 * 192)
    assert summary["samples"] == summary["selector"]["active_count"]


def test_resume_is_exact(tmp_path: Path) -> None:
    """Interrupted (2 epochs, then resumed to 3) == uninterrupted (3 epochs), inside warm-up."""
    full = _run(tmp_path / "a", "--epochs", "3")
    _run(tmp_path / "b", "--epochs", "2")
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 2
    resumed = _run(tmp_path / "c", "--epochs", "3", "--resume", str(tmp_path / "b" / "checkpoint.pt"))
    assert resumed["top1"] == full["top1"]
    assert resumed["test_loss"] == full["test_loss"]
    assert resumed["selector"] == full["selector"]
    assert resumed["train_gflops"] == pytest.approx(full["train_gflops"])
    assert [r["samples"] for r in resumed["ledger"]] == [r["samples"] for r in full["ledger"]]
    assert [r["train_loss"] for r in resumed["history"]] == [r["train_loss"] for r in full["history"]]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--keep-rate", "1.5"], "--keep-rate"),
        (["--data-keep", "0"], "--data-keep"),
        (["--epochs", "0"], "--epochs"),
        (["--dataset", "mnist"], "--dataset"),
        (["--dataset", "cifar10"], "--data-path"),
        (["--prune-layers", "a,b"], "--prune-layers"),
        (["--random-subset"], "--random-subset"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_argument_errors(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert needle in capsys.readouterr().err


def test_missing_data_path_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--dataset", "cifar10", "--data-path", str(tmp_path / "nowhere"), "--device", "cpu"])
    assert info.value.code == 2
    assert "--data-path" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_ranks(tmp_path: Path) -> None:
    """DDP with gloo: rank 0 alone writes the summary; evaluation covers the whole test slice."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(REPO_ROOT / "tools" / "train.py"), *TINY, "--epochs", "1", "--output-dir", str(tmp_path),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["history"][-1]["test_count"] == 96
    assert summary["ledger"][0]["samples"] == summary["history"][0]["samples"]
