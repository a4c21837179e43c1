"""The ConvNet of the dataset-condensation papers (DC, DSA, DM, CAFE, IDM), registered with timm.

``depth`` blocks of conv3x3 (``width`` channels) -> norm -> ReLU -> 2x2 pooling, then one
linear classifier over the flattened map. The default is the papers' ``ConvNet``:
depth 3, width 128, instance norm (a ``GroupNorm`` with one group per channel, with
affine weights, as their code builds it) and average pooling. The flattened size
depends on the input size, so the constructor takes ``img_size``. For 28x28 grey
images (MNIST, Fashion-MNIST) the papers' code pads the first convolution by 3, so the
maps are 32 -> 16 -> 8 -> 4 rather than 28 -> 14 -> 7 -> 3; ``stem_padding=None`` (the
default) does the same.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

NORMS = ("instance", "batch", "layer", "none")
POOLINGS = ("avg", "max", "none")


def _norm(kind: str, channels: int, size: int) -> nn.Module:
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # over (C, H, W) of each sample, as the papers' "layernorm"
        return nn.LayerNorm([channels, size, size], elementwise_affine=True)
    return nn.Identity()


class ConvNet(nn.Module):
    """Plain ConvNet; ``forward_features`` returns the flattened embedding (B x ``num_features``)."""

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        depth: int = 3,
        width: int = 128,
        norm: str = "instance",
        pooling: str = "avg",
        drop_rate: float = 0.0,
        stem_padding: int | None = None,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if depth < 1 or width < 1 or in_chans < 1 or num_classes < 0:
            raise ValueError(f"depth, width, in_chans must be >= 1 (got {depth}, {width}, {in_chans})")
        size = int(img_size[-1] if isinstance(img_size, (tuple, list)) else img_size)
        if pooling != "none" and size >> depth < 1:
            raise ValueError(f"img_size {size} is too small for depth {depth} (each block halves it)")
        if stem_padding is None:
            stem_padding = 3 if in_chans == 1 and size == 28 else 1
        if stem_padding < 0:
            raise ValueError(f"stem_padding must be >= 0, got {stem_padding}")
        layers: list[nn.Module] = []
        channels = in_chans
        for index in range(depth):
            padding = stem_padding if index == 0 else 1
            size += 2 * padding - 2
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=padding), _norm(norm, width, size),
                       nn.ReLU(inplace=True)]
            if pooling != "none":
                layers.append(nn.AvgPool2d(2) if pooling == "avg" else nn.MaxPool2d(2))
                size //= 2
            channels = width
        self.features = nn.Sequential(*layers)
        self.num_classes = num_classes
        self.num_features = width * size * size
        self.drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Any = None) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {"url": "", "num_classes": 10, "input_size": (3, 32, 32), "pool_size": None, "crop_pct": 1.0,
            "interpolation": "bilinear", "mean": (0.4914, 0.4822, 0.4465), "std": (0.2470, 0.2435, 0.2616),
            "first_conv": "features.0", "classifier": "head", **kwargs}


default_cfgs = generate_default_cfgs({name: _cfg() for name in (
    "convnet3", "convnet3_bn", "convnet3_ln", "convnet3_nonorm", "convnet3_maxpool", "convnet4")})


def _create(variant: str, pretrained: bool, **kwargs: Any) -> ConvNet:
    if pretrained:
        raise ValueError(f"pretrained=True: no pretrained weights exist for {variant!r}")
    kwargs.pop("drop_path_rate", None)  # the ViT knob timm users pass to every model: no paths here
    return build_model_with_cfg(ConvNet, variant, pretrained=False, **kwargs)


@register_model
def convnet3(pretrained: bool = False, **kwargs: Any) -> ConvNet:
    """Depth 3, width 128, instance norm, average pooling: the condensation papers' ConvNet."""
    return _create("convnet3", pretrained, **kwargs)


@register_model
def convnet3_bn(pretrained: bool = False, **kwargs: Any) -> ConvNet:
    """ConvNet with batch norm (the papers' ConvNetBN)."""
    return _create("convnet3_bn", pretrained, **dict(dict(norm="batch"), **kwargs))


@register_model
def convnet3_ln(pretrained: bool = False, **kwargs: Any) -> ConvNet:
    """ConvNet with layer norm (the papers' ConvNetLN)."""
    return _create("convnet3_ln", pretrained, **dict(dict(norm="layer"), **kwargs))


@register_model
def convnet3_nonorm(pretrained: bool = False, **kwargs: Any) -> ConvNet:
    """ConvNet without normalisation (the papers' ConvNetNN)."""
    return _create("convnet3_nonorm", pretrained, **dict(dict(norm="none"), **kwargs))


@register_model
def convnet3_maxpool(pretrained: bool = False, **kwargs: Any) -> ConvNet:
    """ConvNet with max pooling (the papers' ConvNetMP)."""
    return _create("convnet3_maxpool", pretrained, **dict(dict(pooling="max"), **kwargs))


@register_model
def convnet4(pretrained: bool = False, **kwargs: Any) -> ConvNet:
    """Depth 4 (the papers' ConvNetD4, used for 64 px inputs)."""
    return _create("convnet4", pretrained, **dict(dict(depth=4), **kwargs))
