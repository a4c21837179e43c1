"""``tools/compare.py`` on a slice of digits: every variant runs, the table adds up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tome_train.cli.compare import (
    VARIANTS,
    _parse_lists,
    main,
    parse_args,
    schedule_args,
    train_argv,
    variant_args,
)
from tome_train.cli.compare_report import aggregate, format_table
from tome_train.data import fixed_subset

TRAIN_ARGS = "--limit-train 128 --limit-test 64 --batch-size 32"


def test_compare_runs_all_variants(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp"
    assert main(["--dataset", "digits", "--epochs", "3", "--seeds", "0", "--output-dir", str(out),
                 "--train-args", TRAIN_ARGS]) == 0
    report = json.loads((out / "compare.json").read_text())
    table = report["variants"]
    assert list(table) == list(VARIANTS)
    assert table["dense"]["gflops_ratio"] == pytest.approx(1.0)
    # The --data-keep policies train on the same number of presentations.
    for name in ("dynamic-random", "forgetting-swap"):
        assert table[name]["train_gflops"] == pytest.approx(table["static-random"]["train_gflops"])
    assert table["static-random"]["backward_fraction"] == pytest.approx(0.8, abs=0.01)
    assert table["infobatch"]["backward_fraction"] < 1.0
    assert table["tokens"]["gflops_ratio"] < 0.8
    assert table["all"]["train_gflops"] < min(table["tokens"]["train_gflops"], table["forgetting-swap"]["train_gflops"])
    assert (out / "compare.png").stat().st_size > 1000
    assert "forgetting-swap" in capsys.readouterr().out
    # Finished runs are reused: a second call trains nothing and gives the same table.
    mtime = (out / "dense" / "seed0" / "summary.json").stat().st_mtime
    assert main(["--dataset", "digits", "--epochs", "3", "--seeds", "0", "--output-dir", str(out),
                 "--train-args", TRAIN_ARGS, "--variants", "dense,random"]) == 0
    assert (out / "dense" / "seed0" / "summary.json").stat().st_mtime == mtime
    assert list(json.loads((out / "compare.json").read_text())["variants"]) == ["dense", "static-random"]
    # ... but not when the arguments changed.
    assert main(["--dataset", "digits", "--epochs", "1", "--seeds", "0", "--output-dir", str(out),
                 "--train-args", TRAIN_ARGS, "--variants", "dense"]) == 0
    assert json.loads((out / "dense" / "seed0" / "summary.json").read_text())["epochs"] == 1


def test_match_budget_and_parallel_jobs(tmp_path: Path) -> None:
    """Random baselines run at InfoBatch's achieved fraction; --jobs 2 gives the same runs."""
    common = ["--dataset", "digits", "--epochs", "3", "--seeds", "0,1",
              "--train-args", "--limit-train 64 --limit-test 32 --batch-size 32",
              "--variants", "dense,dynamic-random", "--match-budget", "infobatch"]
    assert main([*common, "--output-dir", str(tmp_path / "seq")]) == 0
    assert main([*common, "--output-dir", str(tmp_path / "par"), "--jobs", "2"]) == 0
    seq = json.loads((tmp_path / "seq" / "compare.json").read_text())
    par = json.loads((tmp_path / "par" / "compare.json").read_text())
    assert list(seq["variants"]) == ["infobatch", "dense", "dynamic-random"]
    for seed, fraction in zip((0, 1), seq["variants"]["infobatch"]["backward_fractions"]):
        assert seq["matched_data_keep"][str(seed)] == pytest.approx(fraction)
    assert seq["variants"]["dynamic-random"]["backward_fraction"] == pytest.approx(
        seq["variants"]["infobatch"]["backward_fraction"], abs=0.01)
    for name, row in seq["variants"].items():
        assert par["variants"][name]["top1"] == row["top1"]
    delta = seq["variants"]["infobatch"]["vs_dense"]
    assert len(delta["values"]) == 2 and delta["ci95"] is not None


def test_pool_runs_independent_variants_while_the_budget_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """With --jobs 2 a budget-free run starts before the matched run ends; a dependent run
    starts only after its seed's matched run, with that run's summary; order is kept."""
    import argparse
    import threading
    import time

    from tome_train.cli import compare_runs

    events: list[str] = []
    lock = threading.Lock()

    def fake_run_one(argv: list[str], rerun: bool, in_process: bool) -> dict:
        name = argv[0]
        with lock:
            events.append(f"start {name}")
        time.sleep(0.3 if name.startswith("matched") else 0.05)
        with lock:
            events.append(f"end {name}")
        return {"name": name}

    monkeypatch.setattr(compare_runs, "run_one", fake_run_one)
    seen: list[tuple[int, str]] = []

    def dependent(i: int, run: dict) -> list[list[str]]:
        seen.append((i, run["name"]))
        return [[f"after-{run['name']}"]]

    for jobs in (1, 2):
        events.clear()
        seen.clear()
        args = argparse.Namespace(jobs=jobs, rerun=False)
        head, middle, tail = compare_runs.run_all([["matched0"], ["matched1"]], [["free"]], dependent, args)
        assert [r["name"] for r in head] == ["matched0", "matched1"]
        assert [r["name"] for r in middle] == ["free"]
        assert [[r["name"] for r in rs] for rs in tail] == [["after-matched0"], ["after-matched1"]]
        assert sorted(seen) == [(0, "matched0"), (1, "matched1")]
        for i in (0, 1):
            assert events.index(f"end matched{i}") < events.index(f"start after-matched{i}")
    # One seed, two workers: the budget-free run trains beside the matched one.
    events.clear()
    compare_runs.run_all([["matched0"]], [["free"]], dependent, argparse.Namespace(jobs=2, rerun=False))
    assert events.index("start free") < events.index("end matched0")


def test_variant_arguments_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    class Args:
        keep_rate, data_keep, attn_keep, all_policy = 0.7, 0.8, 0.3, "forgetting-swap"

    assert variant_args("random", Args)[-4:] == ["--data-policy", "static-random", "--data-keep", "0.8"]
    assert variant_args("all", Args)[-2:] == ["--attn-keep", "0.3"]
    assert variant_args("dynamic-random", Args, keep=0.61)[-1] == "0.61"
    with pytest.raises(ValueError, match="variants"):
        variant_args("nope", Args)
    with pytest.raises(SystemExit):
        main(["--variants", "dense,nope"])
    assert "--variants" in capsys.readouterr().err


def test_variant_args_reach_their_variant_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser, args = parse_args(["--variant-args", "infobatch=--prune-ratio 0.7", "--train-args", "--lr 1e-3"])
    _parse_lists(parser, args)
    assert train_argv("infobatch", 0, args, tmp_path, None)[-4:] == ["--lr", "1e-3", "--prune-ratio", "0.7"]
    assert "--prune-ratio" not in train_argv("dense", 0, args, tmp_path, None)
    with pytest.raises(SystemExit):
        main(["--variant-args", "nope=--lr 1"])
    assert "--variant-args" in capsys.readouterr().err


def test_schedules_scale_with_the_run() -> None:
    """EViT's 10 and 100 of 300 epochs at the same fractions of --epochs, for the token
    variants; a flag in --train-args wins; ``fixed`` leaves tools/train.py's defaults."""
    class Args:
        epochs, keep_rate, schedules = 6, 0.7, "scaled"

    assert schedule_args("dense", Args, []) == []
    assert schedule_args("tokens", Args, []) == ["--keep-rate-warmup", "0.2", "--keep-rate-decay", "2"]
    assert schedule_args("all", Args, ["--keep-rate-decay=3"]) == ["--keep-rate-warmup", "0.2"]
    Args.schedules = "fixed"
    assert schedule_args("tokens", Args, []) == []


def test_gpu_preset_fills_defaults_and_flags_win() -> None:
    _, args = parse_args(["--preset", "cifar10-gpu", "--epochs", "3"])
    assert (args.dataset, args.model, args.device, args.seeds) == ("cifar10", "deit_tiny_patch4_32", "cuda", "0,1,2")
    assert args.epochs == 3 and args.match_budget == "infobatch"
    assert args.variants.split(",") == list(VARIANTS)
    _, plain = parse_args([])
    assert (plain.dataset, plain.device) == ("digits", "cpu")


def _run(seed: int, top1: float, gflops: float, wall: float) -> dict:
    return {"top1": top1, "train_gflops": gflops, "wall_s": wall, "args": {"seed": seed},
            "backward_samples": 8, "dense_backward_samples": 10}


def test_aggregate_paired_differences() -> None:
    runs = {"dense": [_run(0, 90.0, 10.0, 2.0), _run(1, 92.0, 10.0, 2.0)],
            "dynamic-random": [_run(0, 88.0, 8.0, 1.6), _run(1, 91.0, 8.0, 1.6)],
            "all": [_run(0, 89.0, 5.0, 1.0), _run(1, 91.0, 5.0, 1.0)]}
    table = aggregate(runs)
    assert table["dense"]["top1_mean"] == 91.0 and table["dense"]["top1_std"] == pytest.approx(2 ** 0.5)
    assert table["all"]["gflops_ratio"] == 0.5 and table["all"]["top1_delta"] == -1.0
    assert table["all"]["vs_dense"]["values"] == [-1.0, -1.0] and table["all"]["vs_dense"]["ci95"] == 0.0
    vs_random = table["all"]["vs_dynamic_random"]
    assert vs_random["values"] == [1.0, 0.0]
    assert vs_random["ci95"] == pytest.approx(12.706 * 0.5 ** 0.5 / 2 ** 0.5, rel=1e-3)  # t(0.975, 1 dof)
    assert table["all"]["backward_fraction"] == 0.8
    assert "±" in format_table(table)


def test_fixed_subset_is_random_but_fixed() -> None:
    a, b = fixed_subset(1000, 100), fixed_subset(1000, 100)
    assert a == b and a == sorted(a) and len(set(a)) == 100
    assert a != list(range(100))  # not the first N: sorted-by-class data would lose classes
