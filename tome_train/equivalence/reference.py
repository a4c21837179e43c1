"""Import the authors' reference code from a directory the user points at.

The reference repositories are never vendored: the checks import them from an unpacked
snapshot at run time, with the few shims the old code needs on the current stack.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

EVIT_FILES = ("evit.py", "helpers.py")
TONEVA_FILE = "order_examples_by_forgetting.py"


def reference_dir(path: str | Path, files: tuple[str, ...], name: str) -> Path:
    """``path`` as a directory holding ``files``, else a ValueError naming ``name``."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{name}: {str(path)!r} is not a directory")
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        raise ValueError(f"{name}: {str(path)!r} has no {', '.join(missing)} "
                         "(expected an unpacked snapshot of the reference repository)")
    return root


def _exec_module(name: str, path: Path, needs: tuple[str, ...] = ()) -> types.ModuleType:
    """Run ``path`` as module ``name``; ValueError naming the file when it fails or lacks ``needs``."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise ValueError(f"{path}: importing it failed ({type(err).__name__}: {err}); expected the "
                         "reference snapshot named in the README") from None
    missing = [attr for attr in needs if not hasattr(module, attr)]
    if missing:
        raise ValueError(f"{path}: defines no {', '.join(missing)} (another version of the file? "
                         "expected the reference snapshot named in the README)")
    return module


@contextlib.contextmanager
def _temporary_modules(modules: dict[str, Any]) -> Iterator[None]:
    """Make ``modules`` importable by name for the duration, then restore ``sys.modules``."""
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def load_evit(path: str | Path) -> tuple[types.ModuleType, types.ModuleType]:
    """EViT's ``evit.py`` and ``helpers.py`` (youweiliang/evit) as modules.

    Shims: ``helpers.py`` imports ``torchprofile`` (only for MAC counting, unused here), so a
    stand-in is provided; ``evit.py`` registers its models under timm's own DeiT names,
    which would replace timm's registry entries for the rest of the process, so
    registration is a no-op while it is imported. The deprecated ``timm.models.helpers`` /
    ``layers`` / ``registry`` paths it imports still exist in timm 1.0.
    """
    root = reference_dir(path, EVIT_FILES, "--evit-dir")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm's deprecation notices for the old import paths
        import timm.models.registry as registry
        stub = types.ModuleType("torchprofile")
        stub.profile_macs = None  # type: ignore[attr-defined]
        with _temporary_modules({"torchprofile": stub}):
            helpers = _exec_module("evit_reference_helpers", root / "helpers.py")
            with _temporary_modules({"helpers": helpers}), \
                    mock.patch.object(registry, "register_model", lambda fn: fn):
                return _exec_module("evit_reference", root / "evit.py", needs=("EViT",)), helpers


def load_toneva(path: str | Path) -> types.ModuleType:
    """``order_examples_by_forgetting.py`` of mtoneva/example_forgetting as a module."""
    root = reference_dir(path, (TONEVA_FILE,), "--forgetting-dir")
    return _exec_module("toneva_reference", root / TONEVA_FILE,
                        needs=("compute_forgetting_statistics", "sort_examples_by_forgetting"))


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Swallow the reference code's prints, so the tool's stdout stays one JSON document."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield
