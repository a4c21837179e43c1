"""Scoring runs through the engine on digits (tiny: 64 samples at 8 px, 1-3 epochs)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from tome_train.engine.hooks import Hook
from tome_train.scoring import (
    ForgettingScoreHook,
    score_training_set,
    score_training_set_many,
    scoring_dataset,
)

ARGV = ["--dataset", "digits", "--model", "convnet3", "--img-size", "8", "--limit-train", "64",
        "--limit-test", "40", "--batch-size", "16", "--no-progress"]


class RecordCorrect(Hook):
    """Keeps every batch's (indices, correct) in order: an independent record to count from."""

    name = "record_correct"

    def __init__(self) -> None:
        self.batches: list[tuple[list[int], list[bool]]] = []

    def on_batch_end(self, state, batch) -> None:
        correct = (batch.logits.argmax(-1) == batch.targets).tolist()
        self.batches.append((batch.indices.tolist(), correct))


def test_forgetting_scores_equal_counts_of_the_training_batches(tmp_path) -> None:
    from tome_train.job.train import main as train_main

    forgetting, record = ForgettingScoreHook(), RecordCorrect()
    train_main([*ARGV, "--epochs", "3", "--output-dir", str(tmp_path)], extra_hooks=[forgetting, record])
    history: dict[int, list[bool]] = {}
    for indices, correct in record.batches:
        for i, ok in zip(indices, correct):
            history.setdefault(i, []).append(ok)
    want = []
    for i in range(64):
        seq = history.get(i, [])
        events = sum(1 for a, b in zip(seq, seq[1:]) if a and not b)
        want.append(events if any(seq) else math.inf)
    assert forgetting.scores().tolist() == want
    assert all(len(history[i]) == 3 for i in range(64))


def test_scores_cover_the_training_set_in_order_and_are_seeded(tmp_path) -> None:
    methods = ["el2n", "grand", "curvature", "forgetting", "margin", "loss", "random"]
    first = score_training_set_many(methods, [*ARGV, "--epochs", "1"], seeds=[0, 1], work_dir=tmp_path / "a",
                                    curvature_probes=2)
    again = score_training_set_many(methods, [*ARGV, "--epochs", "1"], seeds=[0, 1], work_dir=tmp_path / "b",
                                    curvature_probes=2)
    _, dataset = scoring_dataset([*ARGV, "--epochs", "1"])
    labels = torch.tensor([int(dataset[i][1]) for i in range(len(dataset))])
    for name in methods:
        s = first[name]
        assert s.values.shape == (64,) and s.values.dtype == torch.float64
        assert torch.equal(s.labels, labels)
        assert not torch.isnan(s.values).any()
        assert torch.equal(s.values, again[name].values), name  # same seeds, same scores
        assert set(s.per_seed) == {0, 1}
        assert torch.allclose(s.values, (s.per_seed[0] + s.per_seed[1]) / 2)
        assert torch.isfinite(s.importance()).all()
    assert not torch.equal(first["el2n"].per_seed[0], first["el2n"].per_seed[1])
    assert first["curvature"].higher_is_important is False
    assert first["el2n"].epochs == 1 and first["random"].epochs == 0
    cost = first["el2n"].cost
    assert cost["train_gflops"] > 0 and cost["score_forward_equivalents"] == 2 * 64 * (1 + 3 * 3)


def test_finished_runs_are_reused(tmp_path) -> None:
    argv = [*ARGV, "--epochs", "1"]
    a = score_training_set("el2n", argv, seeds=[0], work_dir=tmp_path)
    summary = tmp_path / "seed0" / "summary.json"
    stamp = summary.stat().st_mtime_ns
    b = score_training_set("loss", argv, seeds=[0], work_dir=tmp_path)  # same run, another method
    assert summary.stat().st_mtime_ns != stamp
    stamp = summary.stat().st_mtime_ns
    c = score_training_set("el2n", argv, seeds=[0], work_dir=tmp_path)
    d = score_training_set("loss", argv, seeds=[0], work_dir=tmp_path)
    assert summary.stat().st_mtime_ns == stamp  # both cached now
    assert torch.equal(a.values, c.values) and torch.equal(b.values, d.values)


def test_random_needs_no_training(tmp_path) -> None:
    s = score_training_set("random", [*ARGV, "--epochs", "1"], seeds=[3], work_dir=tmp_path)
    assert not any(tmp_path.iterdir()) and s.cost == {} and s.values.shape == (64,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "nosuchscore"}, "method must be one of"),
        ({"train_argv": [*ARGV, "--seed", "1"]}, "--seed"),
        ({"train_argv": [*ARGV, "--output-dir=x"]}, "--output-dir"),
        ({"seeds": []}, "seeds"),
        ({"seeds": [0, 0]}, "distinct"),
        ({"train_argv": [*ARGV, "--data-keep", "0.5"]}, "whole set"),
    ],
)
def test_bad_input(tmp_path, kwargs, match) -> None:
    call = {"method": "el2n", "train_argv": [*ARGV, "--epochs", "1"], "seeds": [0], "work_dir": tmp_path, **kwargs}
    with pytest.raises(ValueError, match=match):
        score_training_set(**call)


def test_tool_writes_npz_json_png_and_rejects_unknown_methods(tmp_path, capsys) -> None:
    from tome_train.cli.score import main

    out = tmp_path / "out"
    main(["--method", "least_confidence", "--epochs", "1", "--output-dir", str(out), *ARGV[2:]])
    data = np.load(out / "scores.npz")
    assert data["scores"].shape == (64,) and data["labels"].shape == (64,)
    report = json.loads((out / "scores.json").read_text())
    assert report["method"] == "least_confidence" and report["more_important"] == "higher"
    assert report["epochs"] == 1 and report["seeds"] == [0] and report["seconds"] > 0
    assert report["recipe"] == "deepcore" and report["train_argv"][-3:] == ["--batch-size", "16", "--no-progress"]
    assert sum(c["count"] for c in report["per_class"].values()) == 64
    assert (out / "scores.png").stat().st_size > 1000
    capsys.readouterr()
    with pytest.raises(SystemExit) as err:
        main(["--method", "nosuchscore", "--output-dir", str(tmp_path / "bad")])
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "nosuchscore" in lines[0]


def test_scoring_recipe_follows_the_model_family_and_yields_to_the_command_line() -> None:
    from tome_train.scoring.recipe import apply_recipe, recipe_argv, resolve_recipe

    assert resolve_recipe("auto", "convnet3") == "deepcore"
    assert resolve_recipe("auto", "resnet18_small") == "deepcore"
    assert resolve_recipe("auto", "deit_micro_patch4_32") == "train"
    assert resolve_recipe("train", "convnet3") == "train"
    sgd = recipe_argv("deepcore")
    assert sgd[sgd.index("--opt") + 1] == "sgd" and sgd[sgd.index("--warmup-epochs") + 1] == "0"
    own_opt = recipe_argv("deepcore", ["--opt", "adamw"])
    assert "--opt" not in own_opt and "--momentum" not in own_opt and "--lr" not in own_opt
    assert "--warmup-epochs" in own_opt and recipe_argv("train") == []
    name, argv = apply_recipe(ARGV)  # the library applies it too: flags of the caller come last and win
    assert name == "deepcore" and argv[:2] == ["--opt", "sgd"] and argv[-len(ARGV):] == ARGV
    assert apply_recipe(["--model", "deit_micro_patch4_32"]) == ("train", ["--model", "deit_micro_patch4_32"])
    with pytest.raises(ValueError, match="recipe"):
        resolve_recipe("fast", "convnet3")
    with pytest.raises(ValueError, match="--model"):
        resolve_recipe("auto", "nosuchmodel")
