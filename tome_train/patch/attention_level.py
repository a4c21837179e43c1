"""Attention level inside the timm patch: plan block layouts at the pruning blocks.

Rule (Tri-Level E-ViT's, at a granularity kernels can exploit): at each token-pruning
block, after pruning, the head-averaged attention among the remaining tokens is
estimated per block of tokens (mean-pooled queries and keys: O((N/b)^2 d), never the
N x N matrix); every query block keeps the ``ceil(attn_keep * n_blocks)`` key blocks
with the most mass, key block 0 (the prefix tokens) always among them, and the prefix
tokens' rows stay dense. The layout serves every block up to the next pruning block
(the token set does not change in between). Cost of planning: two gathers of q and k
of the kept tokens, one pooled (N/b x N/b) product per head, a top-k.

When the dispatcher would run dense attention anyway (``choose_impl`` says sparsity
does not pay at this size on this device), no layout is planned.
"""

from __future__ import annotations

import torch

from ..attention import (
    BlockLayout,
    choose_block_size,
    choose_impl,
    estimate_block_scores,
    layout_from_block_scores,
)


def plan_layout(
    q: torch.Tensor, k: torch.Tensor, attn_keep: float, num_prefix_tokens: int, impl: str = "auto"
) -> BlockLayout | None:
    """Block layout for ``q``/``k`` ``[B, H, N, D]`` of the remaining tokens, or None (dense)."""
    num_tokens = int(q.shape[2])
    # CUDA runs FlexAttention, whose Triton tiles need power-of-two block sizes.
    block = choose_block_size(num_tokens, attn_keep, num_prefix_tokens,
                              power_of_two=q.device.type == "cuda")
    if impl == "dense":
        return None
    if impl == "auto" and choose_impl(num_tokens, attn_keep, q.device, block, num_prefix_tokens,
                                      dtype=q.dtype) == "dense":
        return None
    if -(-num_tokens // block) < 2:  # a single block: nothing to skip
        return None
    scores = estimate_block_scores(q, k, block, num_prefix_tokens)
    return layout_from_block_scores(scores, attn_keep, num_tokens, num_prefix_tokens, block)
