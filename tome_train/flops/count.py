"""FLOP counting that counts what runs.

fvcore's ``FlopCountAnalysis`` traces the model with the JIT and counts each aten op
through a handle. It has no handle for ``aten::scaled_dot_product_attention``, so
every timm ViT with fused attention loses its attention matmuls (DeiT-S: 4.251
instead of 4.608 GFLOPs). We register handles for the SDPA ops. The project's
block-sparse attention needs none: traced, it runs as ``aten::bmm`` of the kept blocks,
which fvcore counts (``tome_train.attention.flops``). ``register_flop_handle`` is there
for an op that would need one. Convention: fvcore's, one multiply-add = one flop.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

Handle = Callable[[list[Any], list[Any]], int]


def _shape(value: Any) -> list[int] | None:
    # fvcore hands JIT values; their type carries the traced shape.
    try:
        return value.type().sizes()
    except (AttributeError, RuntimeError):
        return None


def sdpa_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::scaled_dot_product_attention``: Q K^T (Nq Nk D) plus P V (Nq Nk Dv) per head."""
    q, k, v = (_shape(t) for t in inputs[:3])
    if q is None or k is None or v is None:
        return 0
    batch = math.prod(q[:-2])
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


EXTRA_HANDLES: dict[str, Handle] = {
    "aten::scaled_dot_product_attention": sdpa_flop_jit,
    "aten::_scaled_dot_product_flash_attention_for_cpu": sdpa_flop_jit,
    "aten::_scaled_dot_product_efficient_attention": sdpa_flop_jit,
    "aten::_scaled_dot_product_flash_attention": sdpa_flop_jit,
}


def register_flop_handle(op_name: str, handle: Handle) -> None:
    """Register a handle for an op that fvcore does not count (a custom kernel, ...)."""
    EXTRA_HANDLES[op_name] = handle


@dataclass
class FlopReport:
    """Forward FLOPs of one sample at the model's current knobs."""

    gflops: float
    by_operator: dict[str, float]
    token_counts: list[int] = field(default_factory=list)
    uncounted_ops: dict[str, int] = field(default_factory=dict)


def default_input_size(model: nn.Module) -> tuple[int, int, int]:
    """``(C, H, W)`` from a timm model's pretrained config or patch embedding."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    patch_embed = getattr(model, "patch_embed", None)
    if patch_embed is not None and getattr(patch_embed, "img_size", None):
        chans = patch_embed.proj.in_channels
        return (chans, *patch_embed.img_size)
    if "input_size" in cfg:
        return tuple(cfg["input_size"])  # type: ignore[return-value]
    raise ValueError("input_size is required: the model has no pretrained_cfg['input_size']")


def _flop_count_analysis() -> type:
    """fvcore's ``FlopCountAnalysis``, imported without the one warning its import raises.

    ``fvcore.nn`` scripts its focal losses with ``torch.jit.script`` at import time, which
    recent torch deprecates with a ``FutureWarning`` on every run; nothing of ours uses them.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated",
                                category=FutureWarning)
        from fvcore.nn import FlopCountAnalysis
    return FlopCountAnalysis


def count_flops(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> FlopReport:
    """Count forward FLOPs for one sample with fvcore plus the project's handles.

    The model is traced in eval mode on a zero input (so counting never consumes the
    global RNG: a resumed run stays bit-identical) and its train/eval mode is restored.
    """
    analysis_class = _flop_count_analysis()
    size = tuple(input_size) if input_size is not None else default_input_size(model)
    if len(size) != 3 or any((not isinstance(s, int)) or s <= 0 for s in size):
        raise ValueError(f"input_size must be (C, H, W) positive ints, got {input_size!r}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.zeros(1, *size, device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = analysis_class(model, x)
            analysis.set_op_handle(**EXTRA_HANDLES)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            total = analysis.total()
            by_op = {k: v / 1e9 for k, v in analysis.by_operator().items()}
            uncounted = dict(analysis.unsupported_ops())
    finally:
        model.train(was_training)
    info = getattr(model, "_tome_info", None)
    tokens = list(info["token_counts"]) if info else []
    return FlopReport(total / 1e9, by_op, tokens, uncounted)


def forward_gflops(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> float:
    """Forward GFLOPs per sample at the model's current knobs (keep rate, ...)."""
    return count_flops(model, input_size).gflops
