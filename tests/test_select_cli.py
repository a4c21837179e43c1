"""tools/select.py: budget parsing, one-line bad-input errors, and (slow) the learned
selector end to end on digits, feeding tools/train.py --subset and tools/coreset.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tome_train.cli import coreset as coreset_cli
from tome_train.cli import select as select_cli
from tome_train.data import build_dataset
from tome_train.job.train import main as train_main

REPO = Path(__file__).resolve().parent.parent
TINY = ["--img-size", "8", "--embed-epochs", "1", "--vit-epochs", "1", "--probe-epochs", "1",
        "--probe-clusters", "3"]


def test_parse_budget_counts_and_fractions() -> None:
    assert select_cli.parse_budget("431", 1437) == 431
    assert select_cli.parse_budget("0.3", 1437) == 431
    assert select_cli.parse_budget("1.0", 1437) == 1437
    assert select_cli.parse_budget("1", 1437) == 1
    for bad in ("2000", "0", "1.5", "-3", "abc"):
        with pytest.raises(ValueError, match="--budget"):
            select_cli.parse_budget(bad, 1437)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--budget", "2000"], "--budget"),
        (["--budget", "0.3", "--clusters", "1000"], "--clusters"),
        (["--budget", "0.3", "--validation-fraction", "0.001"], "validation_fraction"),
        (["--budget", "0.3", "--validation-fraction", "1"], "--validation-fraction"),
        (["--budget", "0.3", "--probe-clusters", "0"], "--probe-clusters"),
        (["--budget", "0.3", "--method", "nosuch"], "--method"),
        (["--budget", "0.3", "--dataset", "cifar10"], "--data-path"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], needle: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        select_cli.main([*argv, "--output-dir", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "work").exists()  # nothing trained


@pytest.mark.parametrize("tool", ["select", "coreset"])
def test_tools_still_get_the_standard_library_select_module(tool: str) -> None:
    # tools/ is first on a tool's sys.path, where select.py would shadow the standard library's select.
    done = subprocess.run([sys.executable, str(REPO / "tools" / f"{tool}.py"), "--help"], capture_output=True,
                          text=True, env={"PYTHONPATH": str(REPO), "PATH": ""}, timeout=120)
    assert done.returncode == 0 and "--output-dir" in done.stdout, done.stderr[-500:]


@pytest.mark.slow
def test_learned_end_to_end_feeds_train_and_coreset(tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert select_cli.main(["--budget", "0.1", "--seed", "1", *TINY, "--output-dir", str(out)]) == 0
    indices = torch.load(out / "indices.pt", weights_only=True)["indices"]
    assert indices.numel() == 144 and indices.unique().numel() == 144
    scores = torch.load(out / "scores.pt", weights_only=True)["scores"]
    clusters = torch.load(out / "clusters.pt", weights_only=True)
    assert scores.shape == clusters["spectral"].shape == clusters["probe"].shape == (1437,)
    assert bool(torch.isfinite(scores).all()) and int((clusters["probe"] == -1).sum()) > 0
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["indicators"] == ["loss", "el2n", "forgetting", "curvature", "margin", "cls_entropy",
                                    "cls_kept_share", "pca"]
    assert {"indicators_s", "probes_s", "regressor_s", "selection_s"} <= set(recipe["timings"])
    assert {row["kind"] for row in recipe["ledger"]} == {"select"} and recipe["select_gflops"] > 0
    assert {"whole_data", "vit", "probe0", "probe2_validation"} <= {row["stage"] for row in recipe["ledger"]}
    assert len(json.loads((out / "regressor_curve.json").read_text())) == 300
    summary = train_main(["--dataset", "digits", "--model", "convnet3", "--img-size", "8", "--epochs", "1",
                          "--limit-test", "20", "--subset", str(out / "indices.pt"), "--output-dir",
                          str(tmp_path / "t"), "--no-progress", "--device", "cpu"])
    assert summary["num_train"] == 144
    again = tmp_path / "s2"
    assert select_cli.main(["--budget", "0.1", "--seed", "1", *TINY, "--output-dir", str(again)]) == 0
    assert torch.equal(torch.load(again / "indices.pt", weights_only=True)["indices"], indices)
    probe = clusters["probe"]
    train, _ = build_dataset("digits", None, "train", 8, 1, augment=False)
    labels = torch.as_tensor(train.targets)
    assert all(labels[probe == k].unique().numel() == 10 for k in range(3))  # each probe cluster spans all classes
    # Other probe clusters reuse the indicators: the ViT does not train again, its cost is still counted.
    cached = (out / "work" / "learned" / "indicators.pt").stat().st_mtime_ns
    assert select_cli.main(["--budget", "0.1", "--seed", "1", *TINY, "--probe-grouping", "global",
                            "--output-dir", str(out)]) == 0
    assert (out / "work" / "learned" / "indicators.pt").stat().st_mtime_ns == cached
    recipe = json.loads((out / "recipe.json").read_text())
    assert "vit" in {row["stage"] for row in recipe["ledger"]} and recipe["config"]["probe_grouping"] == "global"

    report_dir = tmp_path / "c"
    argv = ["--dataset", "digits", "--img-size", "8", "--embed-epochs", "1", "--eval-epochs", "1", "--models", "1",
            "--vit-epochs", "1", "--probe-epochs", "1", "--probe-clusters", "3", "--train-args", "--limit-test 20",
            "--methods", "random,learned", "--fractions", "0.2", "--output-dir", str(report_dir)]
    assert coreset_cli.main(argv) == 0
    row = json.loads((report_dir / "coreset.json").read_text())["results"]["learned"]["frac0.2"]
    assert row["budget"] == 287 and row["select_gflops"] > 0 and row["score_s"] > 0
