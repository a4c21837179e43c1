"""``tools/train.py`` as a new user meets it: bad input, CNNs, optimizers, index subsets, ledger kinds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tome_train.cli.train import cli
from tome_train.data import load_indices, save_indices
from tome_train.engine import Hook, TrainState
from tome_train.flops.hook import LEDGER_KEY
from tome_train.job import train as train_job
from tome_train.job.train import main

TINY = ["--dataset", "digits", "--limit-test", "64", "--batch-size", "32", "--seed", "0",
        "--device", "cpu", "--no-progress", "--epochs", "1"]


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        cli(argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(("argv", "needle"), [
    (["--model", "nosuchmodel"], "--model"),
    (["--model", "resnet18", "--keep-rate", "0.7"], "--keep-rate"),
    (["--model", "convnet3", "--keep-rate", "0.7"], "--keep-rate"),
    (["--model", "convnet3", "--attn-keep", "0.5"], "--attn-keep"),
    (["--dataset", "imagefolder", "--data-path", "/nonexistent/dir"], "--data-path"),
    (["--resume", "/nonexistent/ckpt.pt"], "--resume"),
    (["--subset", "/nonexistent/indices.pt"], "--subset"),
    (["--momentum", "0.5"], "--momentum"),
    (["--opt", "lion"], "--opt"),
])
def test_bad_input_is_one_line_before_any_data_loads(argv, needle, capsys, monkeypatch, tmp_path) -> None:
    def no_data(*args, **kwargs):
        raise AssertionError("the data loaded before the arguments were checked")

    monkeypatch.setattr(train_job, "build_dataset", no_data)
    assert needle in _one_line_exit_2([*argv, "--output-dir", str(tmp_path)], capsys)


def test_foreign_checkpoint_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save({"foo": 1}, tmp_path / "foreign.pt")
    err = _one_line_exit_2([*TINY, "--resume", str(tmp_path / "foreign.pt"), "--output-dir", str(tmp_path)], capsys)
    assert "foreign.pt" in err and "not a training checkpoint" in err


@pytest.mark.parametrize("suffix", [".pt", ".npy", ".txt", "dict.pt"])
def test_index_files(tmp_path: Path, suffix: str) -> None:
    wanted = [7, 3, 11]
    path = tmp_path / f"idx{suffix}"
    if suffix == ".npy":
        np.save(path, np.array(wanted))
    elif suffix == ".txt":
        path.write_text("7, 3\n11\n")
    elif suffix == "dict.pt":
        save_indices(wanted, path)
    else:
        torch.save(torch.tensor(wanted), path)
    assert load_indices(path, 12).tolist() == [3, 7, 11]


@pytest.mark.parametrize(("content", "match"), [
    (torch.tensor([1, 12]), r"in \[0, 11\]"), (torch.tensor([-1]), r"in \[0, 11\]"),
    (torch.tensor([1, 1, 2]), "1 repeated"), (torch.tensor([0.5]), "integers"),
    (torch.tensor([], dtype=torch.long), "no index"), ({"idx": torch.tensor([1])}, "no 'indices' key"),
    ([1, 2], "expected a tensor"),
])
def test_bad_index_files_name_the_option(tmp_path: Path, content, match: str) -> None:
    torch.save(content, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=rf"--subset .*bad\.pt: .*{match}"):
        load_indices(tmp_path / "bad.pt", 12, arg="--subset")


class _ScoringPass(Hook):
    """Pretend to score every training sample with one forward pass at each epoch end."""

    name = "scoring_pass"

    def on_epoch_end(self, state: TrainState) -> None:
        state.shared[LEDGER_KEY].record_pass(state, "score", samples=state.num_samples, wall_s=0.0)


def test_cnn_with_sgd_on_a_subset_records_score_passes(tmp_path: Path) -> None:
    """convnet3 (takes img_size), SGD defaults, a 96-example subset, and a hook's scoring pass."""
    subset = torch.randperm(1437, generator=torch.Generator().manual_seed(1))[:96]
    save_indices(subset, tmp_path / "indices.pt")
    main([*TINY, "--model", "convnet3", "--opt", "sgd", "--subset", str(tmp_path / "indices.pt"),
          "--output-dir", str(tmp_path / "run")], extra_hooks=[_ScoringPass()])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    args = summary["args"]
    assert (args["opt"], args["lr"], args["weight_decay"], args["momentum"]) == ("sgd", 0.01, 5e-4, 0.9)
    assert summary["num_train"] == 96 and summary["subset"]["count"] == 96
    assert summary["samples"] == 96 and summary["selector"]["active_count"] == 96
    train_row, score_row = summary["ledger"]
    assert (train_row["kind"], score_row["kind"]) == ("train", "score")
    assert score_row["gflops"] == pytest.approx(96 * train_row["forward_gflops_per_sample"])
    assert summary["gflops_by_kind"] == pytest.approx({"train": 3 * score_row["gflops"], "score": score_row["gflops"]})
    assert summary["total_gflops"] == pytest.approx(summary["train_gflops"] + score_row["gflops"])
    assert summary["train_gflops"] == pytest.approx(summary["dense_train_gflops"])


def test_subset_with_the_random_baseline_and_a_timm_cnn(tmp_path: Path) -> None:
    """resnet18 refuses img_size: built without it, trained at the data's size."""
    (tmp_path / "idx.txt").write_text(" ".join(str(i) for i in range(0, 1437, 15)))  # 96 indices
    main([*TINY, "--model", "resnet18", "--img-size", "16", "--subset", str(tmp_path / "idx.txt"),
          "--data-keep", "0.5", "--random-subset", "--output-dir", str(tmp_path)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["selector"]["active_count"] == 48 and summary["samples"] == 48
    assert summary["dense_forward_gflops"] > 0 and os.path.isfile(tmp_path / "checkpoint.pt")
