"""The model of ``tools/train.py``: building it, its loss and its dense FLOPs baseline."""

from __future__ import annotations

import argparse
from typing import Any

import torch
from torch import nn

from tome_train.engine import PerSampleCrossEntropy
from tome_train.engine.checkpoint import preserve_rng_state
from tome_train.models import create_model


def build_model(args: argparse.Namespace, num_classes: int, img_size: int) -> nn.Module:
    """``--model`` with the run's classes, channels, input size (where the model takes one) and drop path."""
    extra = {"drop_path_rate": args.drop_path} if args.drop_path else {}  # not every model has one
    return create_model(args.model, img_size=img_size, arg="--model", num_classes=num_classes,
                        in_chans=args.in_chans, **extra)


def build_criterion(args: argparse.Namespace, num_classes: int) -> tuple[Any, Any]:
    """Loss and optional ``timm.data.Mixup`` (which then applies the label smoothing)."""
    if args.mixup > 0 or args.cutmix > 0:
        from timm.data import Mixup

        mixup = Mixup(
            mixup_alpha=args.mixup,
            cutmix_alpha=args.cutmix,
            label_smoothing=args.smoothing,
            num_classes=num_classes,
        )
        return PerSampleCrossEntropy(), mixup
    return PerSampleCrossEntropy(args.smoothing), None


def dense_forward_gflops(args: argparse.Namespace, num_classes: int, img_size: int) -> float:
    """Forward GFLOPs/sample of a fresh *unpatched* model: the dense baseline of the ledger."""
    from tome_train.flops import forward_gflops

    with preserve_rng_state():
        model = build_model(args, num_classes, img_size).eval()
        with torch.no_grad():
            return float(forward_gflops(model, (args.in_chans, img_size, img_size)))
