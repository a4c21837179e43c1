"""ResNet-18 for small inputs (CIFAR-style: 3x3 stride-1 stem, no max-pool), registered with timm.

timm's ``resnet18`` is the ImageNet network (7x7 stride-2 stem and a max-pool), which
shrinks a 32x32 image to 8x8 before the first block. The small-input variant keeps
the full resolution in the first stage, as the data-pruning and condensation papers'
ResNet-18 does. ``norm`` is ``"batch"`` (default) or ``"instance"``.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    raise ValueError(f"norm must be 'batch' or 'instance', got {kind!r}")


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = _norm(norm, planes)
        self.act = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          _norm(norm, planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ResNetSmall(nn.Module):
    """ResNet with BasicBlocks; ``forward_features`` returns the pooled embedding (B x 512)."""

    def __init__(
        self,
        layers: tuple[int, ...] = (2, 2, 2, 2),
        num_classes: int = 10,
        in_chans: int = 3,
        norm: str = "batch",
        img_size: Any = None,  # accepted for a uniform interface: the network is size agnostic
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        _norm(norm, 1)  # validate before building
        self.conv1 = nn.Conv2d(in_chans, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = _norm(norm, 64)
        self.act = nn.ReLU(inplace=True)
        stages, in_planes = [], 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            stage = []
            for j in range(blocks):
                stage.append(BasicBlock(in_planes, planes, stride if j == 0 else 1, norm))
                in_planes = planes
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.num_classes = num_classes
        self.num_features = in_planes
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_planes, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: Any = None) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


default_cfgs = generate_default_cfgs({
    name: {"url": "", "num_classes": 10, "input_size": (3, 32, 32), "pool_size": None, "crop_pct": 1.0,
           "interpolation": "bilinear", "mean": (0.4914, 0.4822, 0.4465), "std": (0.2470, 0.2435, 0.2616),
           "first_conv": "conv1", "classifier": "fc"}
    for name in ("resnet18_small", "resnet18_small_in")
})


def _create(variant: str, pretrained: bool, **kwargs: Any) -> ResNetSmall:
    if pretrained:
        raise ValueError(f"pretrained=True: no pretrained weights exist for {variant!r}")
    kwargs.pop("drop_path_rate", None)
    return build_model_with_cfg(ResNetSmall, variant, pretrained=False, **kwargs)


@register_model
def resnet18_small(pretrained: bool = False, **kwargs: Any) -> ResNetSmall:
    """ResNet-18, 3x3 stem, no max-pool, batch norm."""
    return _create("resnet18_small", pretrained, **kwargs)


@register_model
def resnet18_small_in(pretrained: bool = False, **kwargs: Any) -> ResNetSmall:
    """ResNet-18, 3x3 stem, no max-pool, instance norm (the condensation papers' ResNet18)."""
    return _create("resnet18_small_in", pretrained, **dict(dict(norm="instance"), **kwargs))
