"""One way to build a model by name: ``timm.create_model`` with the project's models
registered, ``img_size`` passed only to the models that take it, and a clear error.

ViTs need ``img_size`` (position embedding), and so do the project's CNNs
(``convnet3``'s classifier size follows the input); timm's ImageNet CNNs
(``resnet18``, ...) pool globally and refuse the keyword.
"""

from __future__ import annotations

from typing import Any

import timm
from torch import nn

__all__ = ["check_model_name", "create_model", "default_img_size"]


def check_model_name(name: str, arg: str = "model") -> str:
    """Return ``name`` if timm knows it (the project's models included), else a ValueError naming ``arg``."""
    if not isinstance(name, str) or not timm.is_model(name):
        close = timm.list_models(f"*{name}*")[:5] if isinstance(name, str) and name else []
        hint = f"; similar: {', '.join(close)}" if close else "; see timm.list_models()"
        raise ValueError(f"{arg}: unknown model {name!r}{hint}")
    return name


def default_img_size(name: str) -> int:
    """The model's default input size, from its timm config (no model is built)."""
    cfg = timm.models.get_pretrained_cfg(check_model_name(name))
    size = getattr(cfg, "input_size", None) if cfg is not None else None
    if not size:
        raise ValueError(f"model {name!r} has no default input size: pass img_size")
    return int(size[-1])


def _rejects_img_size(err: TypeError) -> bool:
    return "unexpected keyword argument 'img_size'" in str(err)


def create_model(name: str, img_size: int | None = None, arg: str = "model", **kwargs: Any) -> nn.Module:
    """``timm.create_model(name, pretrained=False, **kwargs)``, plus ``img_size`` if the model takes it.

    Models that refuse ``img_size`` are built without it (they take any input size).
    A refusal happens when the constructor is called, before any weight is drawn, so
    the retry leaves the random stream as one build would.
    """
    check_model_name(name, arg)
    if img_size is None:
        return timm.create_model(name, pretrained=False, **kwargs)
    try:
        return timm.create_model(name, pretrained=False, img_size=img_size, **kwargs)
    except TypeError as err:
        if not _rejects_img_size(err):
            raise
    return timm.create_model(name, pretrained=False, **kwargs)
