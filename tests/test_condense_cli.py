"""tools/condense.py end to end on the bundled digits, and its one-line errors."""

from __future__ import annotations

import json

import pytest

from tome_train.cli.condense import main

BASE = ["--dataset", "digits", "--img-size", "8", "--eval-models", "1", "--eval-epochs", "2", "--no-progress"]


def test_condense_writes_set_grid_and_summary(tmp_path, capsys) -> None:
    out = tmp_path / "dm"
    assert main(["--method", "dm", "--ipc", "1", "--iterations", "2", "--output-dir", str(out),
                 "--option", "batch_real=16", *BASE]) == 0
    summary = json.loads((out / "condense.json").read_text())
    for key in ("method", "ipc", "iterations", "top1_mean", "top1_std", "top1", "random_real_top1_mean",
                "random_real_top1_std", "sec_per_iteration", "condense_s", "eval_s", "peak_rss_mb", "cost"):
        assert key in summary, key
    assert summary["method"] == "dm" and summary["iterations"] == 2 and summary["config"]["batch_real"] == 16
    assert len(summary["top1"]) == 1 and summary["cost"]["gflops"] > 0
    kinds = summary["ledger_totals"]
    assert kinds["condense"]["gflops"] == pytest.approx(summary["cost"]["gflops"]) and kinds["train"]["gflops"] > 0
    assert (out / "synthetic.pt").is_file() and (out / "synthetic.png").is_file()
    # Re-evaluating the saved set on another network needs no condensation.
    again = tmp_path / "again"
    assert main(["--synthetic", str(out / "synthetic.pt"), "--output-dir", str(again), "--no-random-real",
                 "--eval-model", "resnet18_small", *BASE]) == 0
    assert json.loads((again / "condense.json").read_text())["by_model"]["resnet18_small"]["synthetic"]["top1"]


@pytest.mark.parametrize("argv, message", [
    (["--method", "dm", "--ipc", "100000", "--iterations", "1"], "exceeds the size of class"),
    (["--method", "dm", "--iterations", "0"], "--iterations must be >= 1"),
    (["--method", "kip", "--iterations", "1"], "unknown method"),
    (["--method", "dm", "--iterations", "1", "--model", "condense_missing_model"], "unknown model"),
    (["--method", "dm", "--iterations", "1", "--option", "lr_image=1"], "unknown option"),
    (["--method", "dm", "--iterations", "1", "--resume"], "condense_state.pt does not exist"),
    (["--synthetic", "x.pt", "--resume"], "--resume continues a condensing run"),
    (["--method", "dm", "--iterations", "1", "--checkpoint-interval", "-1"], "--checkpoint-interval must be >= 0"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--output-dir", str(tmp_path), *BASE])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def test_resume_continues_to_the_same_set(tmp_path) -> None:
    import torch

    args = ["--method", "dm", "--ipc", "1", "--option", "batch_real=16", "--no-random-real", *BASE]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main([*args, "--iterations", "3", "--output-dir", str(whole)]) == 0
    assert main([*args, "--iterations", "2", "--output-dir", str(parts)]) == 0
    assert main([*args, "--iterations", "3", "--output-dir", str(parts), "--resume"]) == 0
    summary = json.loads((parts / "condense.json").read_text())
    assert summary["iterations"] == 3 and summary["resumed_at"] == 2 and len(summary["losses"]) == 3
    a = torch.load(whole / "synthetic.pt", weights_only=True)["images"]
    b = torch.load(parts / "synthetic.pt", weights_only=True)["images"]
    assert torch.equal(a, b)
    assert summary["losses"] == json.loads((whole / "condense.json").read_text())["losses"]
