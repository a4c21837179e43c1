"""Micro-benchmark: dense SDPA vs sparse attention, forward + backward.

Both run in the same process, interleaved (dense, sparse, dense, sparse, ...) after a
warm-up, so machine load affects them alike; medians are reported. Inputs are random
fp32 ``[B, H, N, D]`` tensors and the layout comes from ``estimate_block_scores`` of
the random q, k, as the timm patch builds it.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from ..timing import synchronize
from .dispatch import choose_impl, sparse_attention
from .layout import (
    check_attn_keep,
    choose_block_size,
    estimate_block_scores,
    layout_from_block_scores,
)
from .reference import reference_attention

__all__ = ["benchmark_attention"]


def _fwd_bwd(fn, q, k, v, grad) -> None:
    q.grad = k.grad = v.grad = None
    fn(q, k, v).backward(grad)


def benchmark_attention(tokens: int, attn_keep: float, batch: int = 16, heads: int = 6,
                        head_dim: int = 64, impl: str = "auto", warmup: int = 2,
                        iters: int = 7, prefix: int = 1, block_size: int | None = None,
                        device: str = "cpu", seed: int = 0) -> dict[str, Any]:
    """Time dense SDPA vs ``sparse_attention`` (fwd+bwd); return a JSON-able dict.

    Keys: ``dense_ms``, ``sparse_ms``, ``speedup`` (dense/sparse), ``max_err`` (max abs
    difference of the output and of the q/k/v gradients vs the masked-dense reference,
    fp32), ``impl`` (actually used), ``block_size``, ``kept_fraction`` (fraction of the
    N x N pairs computed; 1.0 when the dense fallback runs), plus the inputs.
    """
    keep = check_attn_keep(attn_keep)
    dev = torch.device(device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    shape = (batch, heads, tokens, head_dim)
    q, k, v, grad = (torch.randn(shape, generator=gen).to(dev) for _ in range(4))
    for t in (q, k, v):
        t.requires_grad_(True)
    b = block_size or choose_block_size(tokens, keep, prefix)
    layout = layout_from_block_scores(estimate_block_scores(q.detach(), k.detach(), b, prefix),
                                      keep, tokens, prefix, b)
    used = (choose_impl(tokens, keep, dev, block_size=b, num_prefix_tokens=prefix)
            if impl == "auto" else impl)

    def sparse(q_, k_, v_):
        return sparse_attention(q_, k_, v_, layout, impl=used)

    def dense(q_, k_, v_):
        return F.scaled_dot_product_attention(q_, k_, v_)

    # Correctness vs the masked-dense reference (the dense fallback is checked against
    # plain dense attention, which is what it computes).
    ref_fn = dense if used == "dense" else (lambda a, b_, c: reference_attention(a, b_, c,
                                                                                 layout))
    outs = []
    for fn in (sparse, ref_fn):
        o = fn(q, k, v)
        outs.append([o.detach(), *torch.autograd.grad(o, (q, k, v), grad)])
    max_err = max(float((a.float() - r.float()).abs().max()) for a, r in zip(*outs))

    for _ in range(warmup):
        _fwd_bwd(dense, q, k, v, grad)
        _fwd_bwd(sparse, q, k, v, grad)
    times: dict[str, list[float]] = {"dense": [], "sparse": []}
    for _ in range(iters):
        for name, fn in (("dense", dense), ("sparse", sparse)):
            synchronize(dev)
            t0 = time.perf_counter()
            _fwd_bwd(fn, q, k, v, grad)
            synchronize(dev)
            times[name].append((time.perf_counter() - t0) * 1e3)
    dense_ms = statistics.median(times["dense"])
    sparse_ms = statistics.median(times["sparse"])
    kept = 1.0 if used == "dense" else layout.kept_fraction()
    return {
        "tokens": tokens, "attn_keep": keep, "batch": batch, "heads": heads,
        "head_dim": head_dim, "prefix": prefix, "device": str(dev),
        "dense_ms": round(dense_ms, 3), "sparse_ms": round(sparse_ms, 3),
        "speedup": round(dense_ms / sparse_ms, 3) if sparse_ms > 0 else math.inf,
        "max_err": max_err, "impl": used, "block_size": b,
        "kept_fraction": round(kept, 4),
        "blocks_per_row": layout.blocks_per_row, "num_blocks": layout.num_blocks,
        "threads": torch.get_num_threads(), "iters": iters,
    }
