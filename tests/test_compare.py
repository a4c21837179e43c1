"""``tools/compare.py`` on a slice of digits: every variant runs, the table adds up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tome_train.cli.compare import aggregate, main, variant_args
from tome_train.cli.train import fixed_subset

TRAIN_ARGS = "--limit-train 128 --limit-test 64 --batch-size 32"


def test_compare_runs_all_variants(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp"
    assert main(["--dataset", "digits", "--epochs", "1", "--seeds", "0", "--output-dir", str(out),
                 "--train-args", TRAIN_ARGS]) == 0
    report = json.loads((out / "compare.json").read_text())
    table = report["variants"]
    assert list(table) == ["dense", "random", "selector", "tokens", "all"]
    assert table["dense"]["gflops_ratio"] == pytest.approx(1.0)
    # Random pruning and the selector train on the same number of presentations.
    assert table["random"]["train_gflops"] == pytest.approx(table["selector"]["train_gflops"])
    assert table["random"]["gflops_ratio"] < 0.85
    assert table["tokens"]["gflops_ratio"] < 0.8
    assert table["all"]["train_gflops"] < min(table["tokens"]["train_gflops"], table["selector"]["train_gflops"])
    assert (out / "compare.png").stat().st_size > 1000
    assert "selector" in capsys.readouterr().out
    # Finished runs are reused: a second call trains nothing and gives the same table.
    mtime = (out / "dense" / "seed0" / "summary.json").stat().st_mtime
    assert main(["--dataset", "digits", "--epochs", "1", "--seeds", "0", "--output-dir", str(out),
                 "--train-args", TRAIN_ARGS, "--variants", "dense"]) == 0
    assert (out / "dense" / "seed0" / "summary.json").stat().st_mtime == mtime
    # ... but not when the arguments changed.
    assert main(["--dataset", "digits", "--epochs", "2", "--seeds", "0", "--output-dir", str(out),
                 "--train-args", TRAIN_ARGS, "--variants", "dense"]) == 0
    assert json.loads((out / "compare.json").read_text())["variants"]["dense"]["seeds"] == 1
    assert json.loads((out / "dense" / "seed0" / "summary.json").read_text())["epochs"] == 2


def test_variant_arguments_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    class Args:
        keep_rate, data_keep, attn_keep = 0.7, 0.8, 0.3

    assert "--random-subset" in variant_args("random", Args)
    assert variant_args("all", Args)[-2:] == ["--attn-keep", "0.3"]
    with pytest.raises(ValueError, match="variants"):
        variant_args("nope", Args)
    with pytest.raises(SystemExit):
        main(["--variants", "dense,nope"])
    assert "--variants" in capsys.readouterr().err


def test_aggregate_mean_std() -> None:
    runs = {"dense": [{"top1": 90.0, "train_gflops": 10.0, "wall_s": 2.0},
                      {"top1": 92.0, "train_gflops": 10.0, "wall_s": 2.0}],
            "all": [{"top1": 89.0, "train_gflops": 5.0, "wall_s": 1.0},
                    {"top1": 91.0, "train_gflops": 5.0, "wall_s": 1.0}]}
    table = aggregate(runs)
    assert table["dense"]["top1_mean"] == 91.0 and table["dense"]["top1_std"] == pytest.approx(2 ** 0.5)
    assert table["all"]["gflops_ratio"] == 0.5 and table["all"]["top1_delta"] == -1.0


def test_fixed_subset_is_random_but_fixed() -> None:
    a, b = fixed_subset(1000, 100), fixed_subset(1000, 100)
    assert a == b and a == sorted(a) and len(set(a)) == 100
    assert a != list(range(100))  # not the first N: sorted-by-class data would lose classes
