"""The reference-speed benchmark's cheap parts: bad input, patching a copy, reading the timeline."""

from __future__ import annotations

import pytest

from tome_train.cli import condense_reference as cli
from tome_train.cli.condense_reference_theirs import iteration_seconds


def test_missing_reference_dir_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--reference-dir", str(tmp_path / "absent"), "--data-path", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--reference-dir" in err[0] and "main_DM.py" in err[0]


def test_bad_methods_is_exit_2(tmp_path, capsys) -> None:
    for name in cli.REFERENCE_FILES:
        (tmp_path / name).write_text("")
    with pytest.raises(SystemExit) as exc:
        cli.main(["--reference-dir", str(tmp_path), "--data-path", str(tmp_path), "--methods", "dm,kip"])
    assert exc.value.code == 2
    assert "--methods" in capsys.readouterr().err


def test_prepare_reference_patches_a_copy_not_the_original(tmp_path) -> None:
    source = tmp_path / "ref"
    source.mkdir()
    (source / "networks.py").write_bytes(b"def f(out):\r\n    out = out.view(out.size(0), -1)\r\n")
    (source / "utils.py").write_bytes(b"def g(a, b):\r\n    a[:] = a[0]\r\n    b[:] = a[0]\r\n")
    copy, applied = cli.prepare_reference(source, tmp_path / "work")
    assert list(applied.values()) == [1, 1]
    assert b"out.reshape(out.size(0), -1)\r\n" in (copy / "networks.py").read_bytes()
    text = (copy / "utils.py").read_bytes()
    assert b"a[:] = a[0].clone()\r\n" in text and b"b[:] = a[0]\r\n" in text  # only self-overlapping copies
    assert b"view" in (source / "networks.py").read_bytes()


def test_iteration_seconds_skips_evaluation_networks() -> None:
    events = [("network", 0.0), ("eval", 1.0), ("network", 5.0), ("network", 7.0), ("network", 10.0),
              ("network", 11.0), ("eval", 12.0), ("network", 20.0), ("network", 21.5)]
    assert iteration_seconds(events) == [2.0, 3.0, 1.5]


def test_summarise_medians_and_paired_ratios() -> None:
    runs = {"ours": [{"seconds": [1.0, 2.0, 9.0], "torch_threads": 1}, {"seconds": [4.0, 4.0], "torch_threads": 1}],
            "reference": [{"seconds": [4.0], "torch_threads": 1}, {"seconds": [2.0, 2.0], "torch_threads": 1}]}
    out = cli.summarise(runs)
    assert out["ours_run_medians"] == [2.0, 4.0] and out["ours_sec_per_iteration"] == 3.0
    assert out["ratio_ours_over_reference"] == 1.0
    assert out["paired_ratios"] == [0.5, 2.0] and out["paired_ratio_median"] == 1.25
