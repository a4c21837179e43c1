"""Bad input that used to surface only after the work, or as a traceback: refused up front."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tome_train.cli import benchmark as benchmark_cli
from tome_train.cli import compare as compare_cli
from tome_train.cli import condense as condense_cli
from tome_train.cli import coreset as coreset_cli
from tome_train.cli.train import cli as train_cli
from tome_train.condense import SyntheticSet, get_method
from tome_train.job.train import main as train_main
from tome_train.validation import writable_output_dir

TINY = ["--dataset", "digits", "--limit-train", "64", "--limit-test", "32", "--seed", "0",
        "--device", "cpu", "--no-progress", "--epochs", "1"]


def test_output_dir_that_is_a_file_is_refused_before_work(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="--output-dir: cannot write"):
        writable_output_dir(blocker / "run")
    assert writable_output_dir(tmp_path / "a" / "b").is_dir()


@pytest.mark.parametrize("tool, argv", [
    (train_cli, TINY),
    (condense_cli.main, ["--dataset", "digits", "--iterations", "1", "--eval-models", "1", "--eval-epochs", "1"]),
    (compare_cli.main, ["--dataset", "digits", "--epochs", "1", "--variants", "dense"]),
    (coreset_cli.main, ["--dataset", "digits", "--methods", "random"]),
])
def test_tools_check_the_output_dir_first(tool, argv, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        tool([*argv, "--output-dir", str(blocker / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--output-dir" in err[0]


@pytest.mark.parametrize("options, message", [
    ({"lr_img": "abc"}, "lr_img: expected a finite number"),
    ({"lr_img": float("nan")}, "lr_img: expected a finite number"),
    ({"lr_img": 0}, "lr_img: expected a number > 0"),
    ({"batch_real": 0}, "batch_real: expected an integer >= 1"),
    ({"iterations": 2.5}, "iterations: expected an integer"),
    ({"iterations": True}, "iterations: expected an integer"),
])
def test_method_options_are_type_checked(options, message) -> None:
    config = get_method("cafe").config_class()
    with pytest.raises(ValueError, match=message):
        config.replace(options)


def test_method_options_keep_their_types() -> None:
    config = get_method("cafe").config_class().replace(
        {"lr_img": 1, "iterations": 5.0, "block_weights": (1, 0.5), "augment": None})
    assert config.lr_img == 1.0 and isinstance(config.lr_img, float)
    assert config.iterations == 5 and isinstance(config.iterations, int)
    assert config.block_weights == (1.0, 0.5)
    defaults = get_method("idm").config_class()
    assert defaults.replace({f.name: getattr(defaults, f.name) for f in dataclasses.fields(defaults)}) == defaults


@pytest.mark.parametrize("extra, message", [
    (["--eval-model", ","], "--eval-model"),
    (["--eval-model", "nosuchmodel"], "--eval-model nosuchmodel"),
    (["--img-size", "0"], "--img-size"),
    (["--device", "nosuchdevice"], "--device"),
])
def test_condense_checks_evaluation_and_sizes_before_condensing(extra, message, tmp_path: Path, capsys) -> None:
    argv = ["--dataset", "digits", "--iterations", "1", "--eval-models", "1", "--eval-epochs", "1",
            "--no-random-real", "--no-progress", "--output-dir", str(tmp_path / "out"), *extra]
    with pytest.raises(SystemExit) as exit_info:
        condense_cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "synthetic.pt").exists()


def test_synthetic_set_that_is_not_one_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.pt"
    path.write_text("not a torch file")
    with pytest.raises(ValueError, match="not a readable synthetic set"):
        SyntheticSet.load(path)


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0,0"], "--seeds"),
    (["--train-args", "--output-dir /tmp/elsewhere"], "--output-dir is set by compare.py"),
    (["--variant-args", "infobatch=--seed 3"], "--seed is set by compare.py"),
    (["--dataset", "bogus"], "argument --dataset: invalid choice"),
])
def test_compare_refuses_repeated_seeds_and_its_own_flags(argv, message, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        compare_cli.main(["--dataset", "digits", "--epochs", "1", "--output-dir", str(tmp_path), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--attn-only", "--tokens", "0"], ["--attn-only", "--head-dim", "0"],
                                  ["--device", "nosuchdevice"]])
def test_benchmark_sizes_and_device_are_checked(argv, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        benchmark_cli.main(argv)
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_resume_with_another_optimizer_names_it(tmp_path: Path) -> None:
    train_main([*TINY, "--output-dir", str(tmp_path / "first")])
    with pytest.raises(ValueError, match="resume with the same --opt"):
        train_main([*TINY, "--epochs", "2", "--opt", "sgd", "--resume", str(tmp_path / "first" / "checkpoint.pt"),
                        "--output-dir", str(tmp_path / "second")])


def test_index_files_hold_integers_only(tmp_path: Path) -> None:
    import numpy as np

    from tome_train.data import load_indices, save_indices

    np.save(tmp_path / "names.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match="expected an array of integers"):
        load_indices(tmp_path / "names.npy", 5)
    for bad, message in (([1.7, 2.2], "integers"), ([-1, 2], "non-negative"), ([1, 1], "at most once")):
        with pytest.raises(ValueError, match=message):
            save_indices(bad, tmp_path / "i.pt")
    save_indices([4.0, 0.0], tmp_path / "i.pt")
    assert load_indices(tmp_path / "i.pt", 5).tolist() == [0, 4]


def test_reference_snapshot_of_another_version_is_named(tmp_path: Path) -> None:
    from tome_train.equivalence.reference import load_evit, load_toneva

    for name in ("evit.py", "helpers.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "order_examples_by_forgetting.py").write_text("raise ImportError('old torch')\n")
    with pytest.raises(ValueError, match="evit.py: defines no EViT"):
        load_evit(tmp_path)
    with pytest.raises(ValueError, match="order_examples_by_forgetting.py: importing it failed"):
        load_toneva(tmp_path)


def test_library_checks_labels_and_split_arguments() -> None:
    import torch

    from tome_train.coreset import select
    from tome_train.coreset.select import proportional_split
    from tome_train.scoring import el2n

    with pytest.raises(ValueError, match="class indices"):
        el2n(torch.randn(3, 4), torch.tensor([0, 5, 1]))
    with pytest.raises(ValueError, match="labels must be class indices"):
        select("random", 2, labels=torch.tensor([0, -1, 1]))
    with pytest.raises(ValueError, match="budget must be >= 0"):
        proportional_split(-1, [5, 5], torch.Generator())


def test_an_unreadable_cache_is_recomputed_not_fatal(tmp_path: Path, capsys) -> None:
    from tome_train.atomic import atomic_save, load_cache

    assert load_cache(tmp_path / "missing.pt") is None
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04truncated")
    assert load_cache(tmp_path / "broken.pt") is None
    assert "ignoring unreadable cache" in capsys.readouterr().err
    atomic_save({"key": 1}, tmp_path / "good.pt")
    assert load_cache(tmp_path / "good.pt") == {"key": 1}
