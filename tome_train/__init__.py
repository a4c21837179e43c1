"""tome_train: train Vision Transformers faster by removing redundancy at three levels.

Importing the package registers the project's timm models (``tome_train.models``),
so ``timm.create_model("deit_tiny_patch4_32")`` works after ``import tome_train``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"


def _import_models() -> None:
    # Installed (wheel or editable), the top-level models/ folder is the package
    # tome_train.models. Run from a source checkout (cwd on sys.path shadows the
    # editable finder), load that folder under the same name explicitly.
    try:
        importlib.import_module(f"{__name__}.models")
        return
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.models":
            raise
    folder = Path(__file__).resolve().parent.parent / "models"
    spec = importlib.util.spec_from_file_location(
        f"{__name__}.models", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"tome_train.models not found (looked in {folder})")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


_import_models()
# models: in sys.modules either way now; patch: tome_train.patch.timm(model, ...)
from . import models, patch  # noqa: E402,F401
