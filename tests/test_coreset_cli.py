"""tools/coreset.py end to end on digits (tiny epochs), its bad-input errors, the embedding
hook and the engine's --eval-every that the protocol relies on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import timm
import torch

from tome_train.cli import coreset as coreset_cli
from tome_train.coreset import select
from tome_train.coreset.embed import EmbeddingHook, embed
from tome_train.data import build_dataset
from tome_train.engine.hooks import TrainState
from tome_train.job.train import main as train_main

FAST = ["--dataset", "digits", "--img-size", "8", "--embed-epochs", "1", "--eval-epochs", "2",
        "--models", "1", "--train-args", "--limit-test 60"]


def test_tool_writes_json_and_png_and_reuses_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c"
    argv = [*FAST, "--methods", "random,herding,kcenter", "--ipc", "1,2", "--output-dir", str(out)]
    assert coreset_cli.main(argv) == 0
    report = json.loads((out / "coreset.json").read_text())
    assert (out / "coreset.png").stat().st_size > 0
    assert 0 <= report["whole_data"]["top1"] <= 100
    for method in ("random", "herding", "kcenter"):
        for ipc in (1, 2):
            row = report["results"][method][f"ipc{ipc}"]
            assert row["method"] == method and row["budget"] == 10 * ipc and len(row["top1"]) == 1
            assert {"top1_mean", "top1_std", "select_s", "score_s"} <= set(row)
            indices = torch.load(out / method / f"ipc{ipc}" / "seed0" / "indices.pt", weights_only=True)["indices"]
            summary = json.loads((out / method / f"ipc{ipc}" / "seed0" / "model0" / "summary.json").read_text())
            assert summary["num_train"] == 10 * ipc == indices.numel()
            # one seed: the paired difference to random has no interval
            paired = row.get("paired", {})
            assert ("random" in paired) == (method != "random")
            if method != "random":
                assert paired["random"]["ci95"] is None and len(paired["random"]["values"]) == 1
    assert "row minus random" in capsys.readouterr().out
    assert coreset_cli.main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("(reused)") == 6
    # the selections too, reporting the seconds they took when made
    assert err.count("selection reused") == 6
    again = json.loads((out / "coreset.json").read_text())
    assert again["results"]["kcenter"]["ipc2"]["select_s"] == report["results"]["kcenter"]["ipc2"]["select_s"]
    # a record whose inputs differ (here: edited) is not trusted: the subset is selected again
    record = out / "kcenter" / "ipc2" / "seed0" / "selection.json"
    record.write_text(record.read_text().replace('"inputs": "', '"inputs": "0'))
    assert coreset_cli.main(argv) == 0
    assert capsys.readouterr().err.count("selection reused") == 5
    # A moved output directory is still reused: the subset's digest decides, not its path.
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    assert coreset_cli.main([*argv[:-1], str(moved)]) == 0
    assert capsys.readouterr().err.count("(reused)") == 6


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--methods", "random", "--ipc", "0"], "--ipc"),
        (["--methods", "nosuch"], "--methods"),
        (["--methods", "ccs:"], "--methods"),
        (["--ipc", "1", "--fractions", "0.5"], "--fractions"),
        (["--fractions", "1.5"], "--fractions"),
        (["--seeds", "a"], "--seeds"),
        (["--models", "0"], "--models"),
        (["--ipc", "1000"], "--ipc"),
        (["--dataset", "fashion-mnist"], "--data-path"),
        (["--paired-with", "nosuch"], "--paired-with"),
        (["--limit-train", "0"], "--limit-train"),
        (["--methods", "learned", "--limit-train", "500"], "--limit-train"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], needle: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        coreset_cli.main([*argv, "--output-dir", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_limit_train_selects_within_the_fixed_pool_and_saves_whole_set_indices(tmp_path: Path) -> None:
    from tome_train.data import fixed_subset

    out = tmp_path / "c"
    argv = [*FAST, "--methods", "random,forgetting", "--fractions", "0.5", "--limit-train", "400",
            "--output-dir", str(out)]
    assert coreset_cli.main(argv) == 0
    report = json.loads((out / "coreset.json").read_text())
    assert report["limit_train"] == 400 and report["whole_data"]["num_train"] == 400
    pool = set(fixed_subset(1437, 400))  # digits: 1,437 training images
    for method in ("random", "forgetting"):
        indices = torch.load(out / method / "frac0.5" / "seed0" / "indices.pt", weights_only=True)["indices"]
        assert indices.numel() == 200 and set(indices.tolist()) <= pool
        assert any(i >= 400 for i in indices.tolist())  # whole-set indices, not positions in the pool
        summary = json.loads((out / method / "frac0.5" / "seed0" / "model0" / "summary.json").read_text())
        assert summary["num_train"] == 200


def test_method_specs() -> None:
    assert coreset_cli.parse_method("kcenter") == ("kcenter", None)
    assert coreset_cli.parse_method("kcenter-mean") == ("kcenter-mean", None)
    assert coreset_cli.parse_method("forgetting") == ("hard", "forgetting")
    assert coreset_cli.parse_method("ccs:el2n") == ("ccs", "el2n")
    with pytest.raises(ValueError, match="--methods"):
        coreset_cli.parse_method("middle:el2n")


def test_embedding_hook_embeds_unaugmented_set_in_order() -> None:
    data, _ = build_dataset("digits", None, "train", 8, 1, augment=False)
    model = timm.create_model("convnet3", num_classes=10, in_chans=1, img_size=8)
    model.train()
    hook = EmbeddingHook(data, batch_size=100)
    hook.on_train_end(TrainState(model=model, device=torch.device("cpu")))
    assert hook.features.shape == (len(data), model.num_features) and model.training
    assert torch.equal(hook.labels, torch.as_tensor(data.targets))
    model.eval()
    with torch.no_grad():
        expected = model.forward_features(torch.stack([data[i][0] for i in (0, 500)]))
    torch.testing.assert_close(hook.features[[0, 500]], expected)
    with pytest.raises(ValueError, match="forward_features"):
        embed(torch.nn.Linear(2, 2), data)


def test_eval_every_tests_only_every_n_epochs_and_last(tmp_path: Path) -> None:
    summary = train_main(["--dataset", "digits", "--model", "convnet3", "--img-size", "8", "--limit-train", "64",
                          "--limit-test", "32", "--epochs", "3", "--eval-every", "2", "--no-progress",
                          "--output-dir", str(tmp_path)])
    assert ["top1" in row for row in summary["history"]] == [False, True, True]
    assert summary["top1"] == summary["history"][-1]["top1"]


def test_coreset_benchmark_reports_seconds_and_memory_per_method() -> None:
    from tome_train.coreset.bench import coreset_benchmark

    before = torch.get_num_threads()
    out = coreset_benchmark(("herding", "kcenter", "random"), num=300, dim=8, budget=30, repeats=2,
                            threads=1, fresh_process=False)
    torch.set_num_threads(before)
    assert set(out["methods"]) == {"herding", "kcenter", "random"} and out["budget"] == 30
    assert all(len(r["seconds"]) == 2 and r["extra_peak_mb"] >= 0 for r in out["methods"].values())
    with pytest.raises(ValueError, match="methods"):
        coreset_benchmark(("nosuch",))


def test_kcenter_mean_picks_the_point_nearest_each_class_mean() -> None:
    g = torch.Generator().manual_seed(0)
    feats, labels = torch.randn(60, 4, generator=g), torch.arange(60) % 3
    picked = coreset_cli.choose("kcenter-mean", "ipc", 1, 7, feats, labels, None)
    for c in range(3):
        rows = (labels == c).nonzero().squeeze(1)
        assert int(rows[((feats[rows] - feats[rows].mean(0)) ** 2).sum(1).argmin()]) in picked.tolist()


def test_spectral_random_uses_learned_clusters_with_uniform_scores(tmp_path: Path) -> None:
    features, labels = torch.randn(90, 5, generator=torch.Generator().manual_seed(0)), torch.arange(3).repeat(30)
    picked = coreset_cli.choose("spectral-random", "fraction", 0.2, 4, features, labels, None)
    uniform = torch.rand(90, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    same = select("learned", 18, features=features, scores=uniform, labels=labels, seed=4, cluster_seed=4)
    assert torch.equal(picked, same) and torch.bincount(labels[picked]).tolist() == [6, 6, 6]
    argv = [*FAST, "--methods", "spectral-random", "--fractions", "0.1", "--output-dir", str(tmp_path / "c")]
    assert coreset_cli.main(argv) == 0
    assert json.loads((tmp_path / "c" / "coreset.json").read_text())["results"]["spectral-random"]["frac0.1"]["budget"] == 144


def test_paired_differences_follow_selection_seeds() -> None:
    from tome_train.cli.coreset_report import add_paired, aggregate, format_table

    # two seeds x two models: seed means random 50, 60 and learned 52, 63 -> +2, +3
    rows = [{"method": "random", "fraction": 0.1, "top1": [49.0, 51.0, 60.0, 60.0]},
            {"method": "learned", "fraction": 0.1, "top1": [52.0, 52.0, 62.0, 64.0]}]
    table = aggregate(rows)
    add_paired(table, 2, ["random", "learned", "herding"])
    learned = table["learned"]["frac0.1"]["paired"]["random"]
    assert learned["values"] == [2.0, 3.0] and learned["mean"] == 2.5
    assert learned["ci95"] == pytest.approx(12.706 * 0.5, rel=1e-3)  # t(1) x stdev / sqrt(2)
    assert table["random"]["frac0.1"]["paired"]["learned"]["values"] == [-2.0, -3.0]
    text = format_table({"results": table, "whole_data": {"top1": 80.0}})
    assert "row minus random" in text and "+2.50 [" in text and "row minus herding" not in text
    with pytest.raises(ValueError, match="seeds"):
        add_paired(aggregate([{"method": "a", "fraction": 0.1, "top1": [1.0, 2.0, 3.0]},
                              {"method": "random", "fraction": 0.1, "top1": [1.0, 2.0, 3.0]}]), 2, ["random"])


def test_selection_digest_follows_every_input() -> None:
    from tome_train.cli.coreset_selection import inputs_digest, tensor_digest

    feats, labels, scores = torch.randn(20, 4), torch.arange(20) % 2, torch.rand(20)

    def digest(rule="learned", kind="frac", value=0.3, seed=0, f=feats, y=labels, s=scores):
        return inputs_digest(rule, kind, value, seed, tensor_digest(f, y), s)

    base = digest()
    assert base == digest(f=feats.clone(), y=labels.clone(), s=scores.clone())
    changed = [digest(rule="kcenter"), digest(value=0.1), digest(seed=1), digest(f=feats + 1e-6),
               digest(y=1 - labels), digest(s=None), digest(f=feats.double())]
    assert len({base, *changed}) == len(changed) + 1
