"""DeiT variants for small images (CIFAR-sized 32x32 and the 8x8 digits upsampled to 16x16).

They are plain timm ``VisionTransformer`` instances (class token, 12 blocks), so the
token-level patch, FLOP counting and every timm utility apply unchanged; only the
input size, patch size and widths are chosen for CPU-sized experiments. Twelve blocks
are kept on purpose: the default pruning layers (3, 6, 9) of EViT / Tri-Level E-ViT
then mean the same thing as on DeiT-S/ImageNet.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.vision_transformer import VisionTransformer


def _cfg(input_size: int, in_chans: int = 3, **kwargs: Any) -> dict[str, Any]:
    # CIFAR-10 channel statistics; no pretrained weights exist for these variants.
    return {
        "url": "",
        "num_classes": 10,
        "input_size": (in_chans, input_size, input_size),
        "pool_size": None,
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": (0.4914, 0.4822, 0.4465),
        "std": (0.2470, 0.2435, 0.2616),
        "first_conv": "patch_embed.proj",
        "classifier": "head",
        **kwargs,
    }


POS_EMBED_STD = 1.0  # sigma before truncation at +-2 sigma: the values have std 0.88 (see init_pos_embed)

default_cfgs = generate_default_cfgs(
    {
        # Grey-scale by default: made for the digits (8x8, upsampled to 16x16), so that
        # counting FLOPs of the bare name (tools/flops.py) counts the model digits trains.
        "deit_micro_patch2_16": _cfg(16, in_chans=1, mean=(0.5,), std=(0.5,)),
        "deit_micro_patch4_32": _cfg(32),
        "deit_tiny_patch4_32": _cfg(32),
        "deit_small_patch4_32": _cfg(32),
    }
)


def init_pos_embed(model: VisionTransformer, std: float = POS_EMBED_STD) -> None:
    """Start the learnable position embedding at a scale the patch embeddings can feel.

    timm's default (truncated normal, std 0.02) is tiny next to the patch embeddings of
    these narrow models: trained from scratch on small data sets they see a bag of
    pixels for several epochs (digits, 4 epochs: 27-29% top-1 with the default or a 2-D
    sin-cos start, about 60% with std 1.0). The values stay trainable.
    """
    with torch.no_grad():
        torch.nn.init.trunc_normal_(model.pos_embed, std=std, a=-2 * std, b=2 * std)


def _create(variant: str, pretrained: bool, **kwargs: Any) -> VisionTransformer:
    if pretrained:
        raise ValueError(f"pretrained=True: no pretrained weights exist for {variant!r}")
    model = build_model_with_cfg(VisionTransformer, variant, pretrained=False, **kwargs)
    init_pos_embed(model)
    return model


@register_model
def deit_micro_patch2_16(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """Micro DeiT for 16x16 grey-scale inputs (8x8 patch grid + CLS = 65 tokens), width 64, 2 heads."""
    args = dict(img_size=16, patch_size=2, in_chans=1, embed_dim=64, depth=12, num_heads=2,
                num_classes=10)
    return _create("deit_micro_patch2_16", pretrained, **dict(args, **kwargs))


@register_model
def deit_micro_patch4_32(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """Micro DeiT for 32x32 inputs with 4x4 patches (65 tokens), width 64, 2 heads: CPU-sized CIFAR runs."""
    args = dict(img_size=32, patch_size=4, embed_dim=64, depth=12, num_heads=2, num_classes=10)
    return _create("deit_micro_patch4_32", pretrained, **dict(args, **kwargs))


@register_model
def deit_tiny_patch4_32(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """DeiT-Tiny widths (192, 3 heads) on 32x32 inputs with 4x4 patches (65 tokens)."""
    args = dict(img_size=32, patch_size=4, embed_dim=192, depth=12, num_heads=3, num_classes=10)
    return _create("deit_tiny_patch4_32", pretrained, **dict(args, **kwargs))


@register_model
def deit_small_patch4_32(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """DeiT-Small widths (384, 6 heads) on 32x32 inputs with 4x4 patches (65 tokens)."""
    args = dict(img_size=32, patch_size=4, embed_dim=384, depth=12, num_heads=6, num_classes=10)
    return _create("deit_small_patch4_32", pretrained, **dict(args, **kwargs))
