"""FlexAttention backend: ``flex_attention`` with a ``BlockMask`` built from a layout.

Why: on CUDA, ``torch.compile``-d FlexAttention generates a fused Triton kernel that
skips the masked blocks (forward and backward). On CPU, PyTorch 2.14 compiles the
forward only (about 18 s the first time) and raises on backward, so the dispatcher
never picks it for training on CPU. The ``BlockMask`` is built directly from
``kv_num_blocks``/``kv_indices`` (no N x N mask evaluation); a ``mask_mod`` adds the
token-level rules inside blocks: prefix rows are dense and padded keys are excluded.
Prefix rows attend to every key block, so the BlockMask lists all blocks for query
block 0 and the ``mask_mod`` keeps non-prefix rows of that block to their own layout.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from .layout import BlockLayout

__all__ = ["flex_attention_sparse", "is_available"]

try:  # guarded: older torch builds have no FlexAttention
    from torch.nn.attention.flex_attention import BlockMask, flex_attention
except Exception:  # pragma: no cover - depends on the torch build
    BlockMask = None  # type: ignore[assignment,misc]
    flex_attention = None  # type: ignore[assignment]


def is_available(device: torch.device | str = "cpu", requires_grad: bool = False) -> bool:
    """True when FlexAttention can run here (CPU: forward only)."""
    if flex_attention is None:
        return False
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available()
    return dev.type == "cpu" and not requires_grad


@functools.lru_cache(maxsize=8)
def _compiled() -> Any:
    return torch.compile(flex_attention, dynamic=False)


def build_block_mask(layout: BlockLayout, heads: int = 1) -> Any:
    """``BlockMask`` with the layout's key blocks (all key blocks for query block 0)."""
    if BlockMask is None:
        raise RuntimeError("FlexAttention is not available in this torch build")
    kv = layout.kv_blocks
    bsz, nb, kk = kv.shape
    b, n, p = layout.block_size, layout.num_tokens, layout.num_prefix_tokens
    dev = kv.device
    keep = torch.zeros(bsz, nb, nb, dtype=torch.bool, device=dev)
    keep.scatter_(2, kv, True)
    block_keep = keep.clone()
    if p:
        block_keep[:, 0, :] = True  # prefix rows live in query block 0
    counts = block_keep.sum(-1).to(torch.int32)
    # Kept block indices first (stable sort puts True before False).
    order = torch.argsort((~block_keep).to(torch.int8), dim=-1, stable=True).to(torch.int32)
    tok_block = torch.arange(n, device=dev) // b

    def mask_mod(bi, hi, qi, ki):
        in_layout = keep[bi, tok_block[qi], tok_block[ki]]
        return in_layout | (qi < p) | (ki < p)

    return BlockMask.from_kv_blocks(
        counts[:, None], order[:, None], BLOCK_SIZE=(b, b), mask_mod=mask_mod,
        seq_lengths=(n, n))


def flex_attention_sparse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                          layout: BlockLayout, scale: float | None = None) -> torch.Tensor:
    """Block-sparse attention through compiled FlexAttention; q, k, v ``[B, H, N, D]``."""
    if not is_available(q.device, torch.is_grad_enabled() and q.requires_grad):
        raise RuntimeError(
            f"FlexAttention is unavailable for device={q.device} "
            f"(CPU supports the forward only; torch {torch.__version__})")
    if q.device.type == "cpu":  # forward only: flex rejects inputs that require grad
        q, k, v = q.detach(), k.detach(), v.detach()
    mask = build_block_mask(layout.to(q.device))
    return _compiled()(q, k, v, block_mask=mask, scale=scale)
