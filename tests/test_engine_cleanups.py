"""Shared pieces: one validator, one atomic writer, one optimizer factory, hooks beside features."""

from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

from tome_train.atomic import atomic_save, atomic_write_text
from tome_train.attention import check_attn_keep, cpu_fused
from tome_train.engine import build_optimizer
from tome_train.patch import validate_keep_rate
from tome_train.selection import ExampleSelector
from tome_train.validation import check_fraction

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.01, math.nan, math.inf, "0.5", None, True])
def test_one_fraction_validator_everywhere(bad) -> None:
    for check, name in ((lambda v: check_fraction(v, "x"), "x"), (validate_keep_rate, "keep_rate"),
                        (check_attn_keep, "attn_keep"), (lambda v: ExampleSelector(10, data_keep=v), "data_keep")):
        with pytest.raises(ValueError, match=rf"{name} must be (a number )?in \(0, 1\]"):
            check(bad)
    assert check_fraction(1, "x") == 1.0 and check_attn_keep(0.25) == 0.25


def test_atomic_writers_fsync_and_leave_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    atomic_write_text("héllo\n", tmp_path / "a.txt")
    text_syncs = len(synced)
    atomic_save({"x": torch.arange(3)}, tmp_path / "b.pt")
    assert text_syncs >= 1 and len(synced) >= 2 * text_syncs  # file (and folder) each time
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.pt"]


def _old_rule_groups(model: torch.nn.Module) -> tuple[set[str], set[str]]:
    """The hand-written rule the engine used before timm's groups: decay unless 1-D, bias or
    in ``no_weight_decay()``."""
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = set(), set()
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name in skip or name.endswith(".bias") else decay).add(name)
    return decay, no_decay


@pytest.mark.parametrize("model_name", ["deit_micro_patch2_16", "convnet3"])
def test_timm_param_groups_match_the_old_rule(model_name: str) -> None:
    model = timm.create_model(model_name)
    names = {id(p): n for n, p in model.named_parameters()}
    opt = build_optimizer(model, lr=1e-3, weight_decay=0.05)
    assert isinstance(opt, torch.optim.AdamW)
    groups = {g["weight_decay"]: {names[id(p)] for p in g["params"]} for g in opt.param_groups}
    decay, no_decay = _old_rule_groups(model)
    assert groups == {0.05: decay, 0.0: no_decay}
    assert all(g["betas"] == (0.9, 0.999) and g["eps"] == 1e-8 for g in opt.param_groups)
    sgd = build_optimizer(model, lr=0.01, weight_decay=5e-4, opt="sgd", momentum=0.9)
    assert isinstance(sgd, torch.optim.SGD)
    assert all(g["momentum"] == 0.9 and g["nesterov"] is False for g in sgd.param_groups)
    assert {g["weight_decay"] for g in sgd.param_groups} == {0.0, 5e-4}
    with pytest.raises(ValueError, match="opt must be one of"):
        build_optimizer(model, lr=0.01, weight_decay=0.0, opt="lion")


def test_can_build_never_compiles(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_build(*args, **kwargs):
        raise AssertionError("can_build() must not build the kernel")

    monkeypatch.setattr(cpu_fused, "load_extension", no_build)
    monkeypatch.setattr(cpu_fused, "_state", {"ext": None, "error": None})
    monkeypatch.setenv("TOME_TRAIN_NO_CPU_EXT", "1")
    assert cpu_fused.can_build() is False
    monkeypatch.delenv("TOME_TRAIN_NO_CPU_EXT")
    monkeypatch.setattr(cpu_fused, "_state", {"ext": None, "error": "no compiler"})
    assert cpu_fused.can_build() is False
    monkeypatch.setattr(cpu_fused, "_state", {"ext": object(), "error": None})
    assert cpu_fused.can_build() is True
    # The ledger's cache key asks only the cheap question.
    from tome_train.flops.hook import FlopsLedgerHook
    from tome_train.patch import timm as patch_timm

    model = patch_timm(timm.create_model("deit_micro_patch2_16"), keep_rate=0.7, attn_keep=0.5)
    assert FlopsLedgerHook.knob_key(model).endswith(",cpu_fused")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_engine_imports_no_feature_and_names_no_hook() -> None:
    for path in sorted((REPO_ROOT / "tome_train" / "engine").glob("*.py")):
        for module in _imports(path):
            assert not any(part in module for part in ("selection", "patch", "flops")), (path.name, module)
        source = path.read_text()
        for name in ("SelectorHook", "KeepRateHook", "FlopsLedgerHook", '"selector"', '"ledger"'):
            assert name not in source, (path.name, name)


def test_feature_hooks_import_without_cycles() -> None:
    """A fresh interpreter that starts at the deepest chain (flops.hook -> engine) imports them all."""
    modules = ("tome_train.flops.hook", "tome_train.selection.hook", "tome_train.patch.hook",
               "tome_train.engine.hooks")
    done = subprocess.run([sys.executable, "-c", "; ".join(f"import {m}" for m in modules)], cwd=REPO_ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]


def _absolute_imports(path: Path) -> set[str]:
    """Every module ``path`` imports (top level or inside functions), relative ones resolved."""
    package = list(path.relative_to(REPO_ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            found.add(".".join([*base, *([node.module] if node.module else [])]))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_library_never_imports_the_command_line_layer() -> None:
    """tools -> cli -> the library, never back: code that trains as tools/train.py does goes
    through tome_train.job."""
    library = [p for p in sorted((REPO_ROOT / "tome_train").rglob("*.py")) if "cli" not in p.parts]
    assert any(p.parent.name == "job" for p in library) and any(p.parent.name == "scoring" for p in library)
    for path in library:
        for module in _absolute_imports(path):
            assert not module.startswith("tome_train.cli"), (str(path.relative_to(REPO_ROOT)), module)


@pytest.mark.parametrize("text,high_open,ok", [
    ("0", True, True), ("0.999", True, True), ("1", True, False), ("1", False, True),
    ("-0.01", False, False), ("nan", False, False), ("x", False, False),
])
def test_number_in_names_the_option_and_the_interval(text: str, high_open: bool, ok: bool) -> None:
    import argparse

    from tome_train.argtypes import number_in

    parse = number_in("--knob", 0, 1, high_open=high_open)
    if ok:
        assert parse(text) == float(text)
    else:
        with pytest.raises(argparse.ArgumentTypeError, match=r"--knob must be a number in \[0, 1[\)\]], got"):
            parse(text)
