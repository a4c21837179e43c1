"""Randomly initialised networks for matching and evaluation, seeded from a generator.

Condensation samples many fresh networks. Each one is initialised under its own seed,
drawn from the run's generator, inside ``torch.random.fork_rng`` so that building a
network neither depends on nor disturbs the global random state.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def next_seed(generator: torch.Generator) -> int:
    """A fresh 62-bit seed from ``generator``."""
    return int(torch.randint(0, 2**62, (1,), generator=generator))


def build_network(
    name: str, num_classes: int, image_shape: tuple[int, int, int], seed: int,
    device: torch.device | str = "cpu", need_features: bool = True, **model_kwargs: Any,
) -> nn.Module:
    """``timm.create_model(name, **model_kwargs)`` for ``image_shape`` (C, H, W), initialised under ``seed``."""
    from tome_train.models import create_model

    chans, height, _ = image_shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(name, img_size=height, num_classes=num_classes, in_chans=chans, **model_kwargs)
    if need_features:
        require_features(model, name)
    return model.to(device)


def require_features(model: nn.Module, name: str) -> None:
    """Matching needs the embedding before the classifier: ``forward_features`` + ``forward_head``."""
    for method in ("forward_features", "forward_head"):
        if not callable(getattr(model, method, None)):
            raise ValueError(f"model {name!r} has no {method}(): condensation matches its embedding")


def embed(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The flattened embedding the classifier sees (``forward_head(..., pre_logits=True)``)."""
    return model.forward_head(model.forward_features(images), pre_logits=True).flatten(1)


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def freeze_batch_norm(model: nn.Module) -> None:
    """Put batch-norm layers in eval mode (their running statistics stay fixed)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
