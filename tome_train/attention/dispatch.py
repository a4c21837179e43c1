"""``sparse_attention``: one entry point that picks a kernel, or dense when it won't pay.

Policy of ``impl="auto"`` (``choose_impl``), fwd+bwd against dense
``F.scaled_dot_product_attention`` (a fused flash kernel on CPU):

* CPU, fp32, fused kernel built (``cpu_fused.py``): ``"cpu_fused"`` when the layout skips
  at least 20% of the query-key pairs (kept fraction <= ``MAX_FUSED_KEPT_FRACTION``)
  and N >= ``MIN_FUSED_TOKENS`` (64), else dense. Below 64 tokens the whole attention
  takes well under a millisecond and a layout has at most 4 coarse blocks (keep 0.3 then
  means attending to the prefix block alone), so sparsity is not worth its
  approximation. Measured on a shared 2-core AVX-512 CPU (``tools/benchmark.py
  --attn-only``, H=6, D=64, B=16, keep 0.3): 2.0x at N=197, 2.5x at N=284, 2.3x at
  N=405, 2.6x at N=577; at keep 0.7 (kept ~0.75) still 1.2-1.5x, and no measured
  configuration with kept fraction <= 0.8 (B=2 and 16, N=50-577) was slower than dense.
* CPU otherwise (bf16/fp16, or no compiler): the PyTorch-ops kernel ``"block_sparse"``
  under its own cost model (``predicted_speedup``), calibrated the same way:

      dense  = 7 * N^2
      sparse = 7.5 * nb * k * b * (b + 40)

  with ``nb = ceil(N / b)`` blocks, ``k = ceil(keep * nb)`` kept per row: 6 batched
  matmuls over ``nb * k`` pairs of ``b x b`` blocks, plus the gathers, one-hot scatter
  and softmax passes (the ``+ 40`` and 7.5 vs 6). It is picked when the predicted
  speed-up is at least ``MIN_PREDICTED_SPEEDUP`` (1.6): measured/predicted at keep 0.3,
  N=577 1.40-1.73/1.95 (B=16), N=405 1.19/1.74 and N=284 0.82/1.49 (B=8).
* CUDA: FlexAttention (compiled Triton) under the same rule if available, else dense
  (not measured here: no GPU on the development machine).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import cpu_fused, flex
from .block_sparse import block_sparse_attention, block_sparse_attention_traceable
from .cpu_fused import cpu_fused_attention
from .layout import BlockLayout, check_attn_keep, choose_block_size, kept_blocks_per_row
from .reference import reference_attention

__all__ = ["IMPLS", "choose_impl", "explain_impl", "layout_kept_fraction", "predicted_speedup",
           "sparse_attention"]

IMPLS = ("auto", "dense", "reference", "block_sparse", "cpu_fused", "flex", "triton")
MIN_PREDICTED_SPEEDUP = 1.6
MAX_FUSED_KEPT_FRACTION = 0.8
MIN_FUSED_TOKENS = 64


def layout_kept_fraction(num_tokens: int, block_size: int, blocks_per_row: int,
                         num_prefix_tokens: int) -> float:
    """Fraction of the N x N pairs a layout of this shape computes (prefix rows dense).

    Approximates every kept key block as full; exact when ``block_size`` divides N.
    """
    n, p = num_tokens, num_prefix_tokens
    keys = min(n, blocks_per_row * block_size)
    return min(1.0, ((n - p) * keys + p * n) / (n * n))


def predicted_speedup(num_tokens: int, attn_keep: float, block_size: int) -> float:
    """Dense / block-sparse cost ratio of the calibrated CPU model (see module doc)."""
    nb = -(-num_tokens // block_size)
    k = kept_blocks_per_row(nb, attn_keep)
    sparse = 7.5 * nb * k * block_size * (block_size + 40)
    return 7.0 * num_tokens * num_tokens / sparse


def explain_impl(num_tokens: int, attn_keep: float, device: torch.device | str = "cpu",
                 block_size: int | None = None, num_prefix_tokens: int = 1,
                 requires_grad: bool = True, dtype: torch.dtype = torch.float32,
                 ) -> tuple[str, str]:
    """``(impl, why)``: what ``choose_impl`` picks and, in words, the rule that decided it."""
    keep = check_attn_keep(attn_keep)
    dev = torch.device(device)
    b = block_size or choose_block_size(num_tokens, keep, num_prefix_tokens)
    nb = -(-num_tokens // b)
    if keep >= 1.0:
        return "dense", "attn_keep 1.0 keeps every key block"
    if nb < 2:
        return "dense", f"{num_tokens} tokens fit in one block of {b}: nothing to skip"
    if dev.type == "cpu" and cpu_fused.is_available(dtype):
        kept = layout_kept_fraction(num_tokens, b, kept_blocks_per_row(nb, keep),
                                    num_prefix_tokens)
        if num_tokens < MIN_FUSED_TOKENS:
            return "dense", f"the auto kernel choice runs dense attention below {MIN_FUSED_TOKENS} tokens"
        if kept > MAX_FUSED_KEPT_FRACTION:
            return "dense", (f"the layout would keep {kept:.0%} of the query-key pairs and the auto "
                             f"kernel choice needs at most {MAX_FUSED_KEPT_FRACTION:.0%}")
        return "cpu_fused", f"the fused CPU kernel computes {kept:.0%} of the query-key pairs"
    speedup = predicted_speedup(num_tokens, keep, b)
    if speedup < MIN_PREDICTED_SPEEDUP:
        return "dense", (f"the block-sparse kernel's predicted speed-up at {num_tokens} tokens "
                         f"is {speedup:.2f}x, below the auto threshold {MIN_PREDICTED_SPEEDUP}x")
    if dev.type == "cuda":
        if flex.is_available(dev, requires_grad):
            return "flex", f"FlexAttention, predicted speed-up {speedup:.2f}x"
        return "dense", "FlexAttention is unavailable on this device"
    return "block_sparse", f"the PyTorch-ops kernel, predicted speed-up {speedup:.2f}x"


def choose_impl(num_tokens: int, attn_keep: float, device: torch.device | str = "cpu",
                block_size: int | None = None, num_prefix_tokens: int = 1,
                requires_grad: bool = True, dtype: torch.dtype = torch.float32) -> str:
    """Fastest correct implementation name for this size, or ``"dense"`` (module doc).

    On CPU with fp32 the first call may build the fused kernel (once, ~45 s).
    """
    return explain_impl(num_tokens, attn_keep, device, block_size, num_prefix_tokens,
                        requires_grad, dtype)[0]


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    if q.dim() != 4 or k.shape[:3] != q.shape[:3] or v.shape[:3] != q.shape[:3]:
        raise ValueError(
            "q, k, v must be [B, H, N, D] with the same B, H, N; got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"q and k head dims differ: {q.shape[-1]} vs {k.shape[-1]}")


def sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     layout: BlockLayout | None, impl: str = "auto", dropout_p: float = 0.0,
                     scale: float | None = None) -> torch.Tensor:
    """Attention restricted to ``layout``; q, k, v ``[B, H, N, D]`` -> ``[B, H, N, Dv]``.

    ``impl``: ``"auto"`` (see module doc), ``"dense"`` (plain SDPA, ignores the layout),
    ``"reference"`` (masked dense, tests), ``"block_sparse"`` (PyTorch ops, CPU/CUDA,
    any float dtype), ``"cpu_fused"`` (C++ kernel, CPU fp32),
    ``"flex"`` (FlexAttention; CPU forward only), ``"triton"`` (FlexAttention's Triton
    backend, CUDA only). Dropout is only supported by the dense paths: ``auto`` falls
    back to dense when ``dropout_p > 0``. ``layout=None`` means dense.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    _check_qkv(q, k, v)
    if layout is not None and (layout.num_tokens != q.shape[2]
                               or layout.batch_size != q.shape[0]):
        raise ValueError(
            f"layout is for B={layout.batch_size}, N={layout.num_tokens} but q is "
            f"{tuple(q.shape)}")
    if impl == "auto":
        if layout is None or dropout_p > 0:  # only the dense paths implement dropout
            impl = "dense"
        else:
            keep = layout.blocks_per_row / layout.num_blocks
            impl = choose_impl(q.shape[2], keep, q.device, layout.block_size,
                               layout.num_prefix_tokens, q.requires_grad, q.dtype)
    if impl == "dense" or layout is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale)
    if impl == "reference":
        mask = layout.token_mask().to(q.device)[:, None]
        if dropout_p:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                  dropout_p=dropout_p, scale=scale)
        return reference_attention(q, k, v, layout, scale)
    if dropout_p:
        raise ValueError(f"dropout_p > 0 is not supported by impl={impl!r}; "
                         "use impl='dense' or 'reference'")
    if torch.jit.is_tracing():
        # FLOP counting (fvcore traces): the same kept blocks as plain matmuls, whichever
        # kernel would run (FlexAttention's compiled kernels cannot be traced).
        return block_sparse_attention_traceable(q, k, v, layout, scale)
    if impl == "block_sparse":
        return block_sparse_attention(q, k, v, layout, scale)
    if impl == "cpu_fused":
        return cpu_fused_attention(q, k, v, layout, scale)
    if impl == "triton" and q.device.type != "cuda":
        raise ValueError("impl='triton' needs a CUDA device (FlexAttention's Triton backend)")
    return flex.flex_attention_sparse(q, k, v, layout, scale)
