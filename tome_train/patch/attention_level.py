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

from typing import Any

import torch

from ..attention import (
    BlockLayout,
    choose_block_size,
    estimate_block_scores,
    explain_impl,
    layout_from_block_scores,
)


def layout_decision(num_tokens: int, attn_keep: float, num_prefix_tokens: int, impl: str = "auto",
                    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                    ) -> tuple[int, str | None]:
    """``(block_size, why_dense)`` for a stage of ``num_tokens`` tokens: ``why_dense`` is None
    when a layout is planned (attention runs sparse), else the rule that keeps it dense."""
    device = torch.device(device)
    # CUDA runs FlexAttention, whose Triton tiles need power-of-two block sizes.
    block = choose_block_size(num_tokens, attn_keep, num_prefix_tokens,
                              power_of_two=device.type == "cuda")
    if impl == "dense":
        return block, "attn_impl is 'dense'"
    if impl == "auto":
        chosen, why = explain_impl(num_tokens, attn_keep, device, block, num_prefix_tokens,
                                   dtype=dtype)
        if chosen == "dense":
            return block, why
    if -(-num_tokens // block) < 2:
        return block, f"{num_tokens} tokens fit in one block of {block}: nothing to skip"
    return block, None


def plan_layout(
    q: torch.Tensor, k: torch.Tensor, attn_keep: float, num_prefix_tokens: int, impl: str = "auto"
) -> BlockLayout | None:
    """Block layout for ``q``/``k`` ``[B, H, N, D]`` of the remaining tokens, or None (dense)."""
    num_tokens = int(q.shape[2])
    block, why_dense = layout_decision(num_tokens, attn_keep, num_prefix_tokens, impl, q.device,
                                       q.dtype)
    if why_dense is not None:
        return None
    scores = estimate_block_scores(q, k, block, num_prefix_tokens)
    return layout_from_block_scores(scores, attn_keep, num_tokens, num_prefix_tokens, block)


def attention_level_status(model: torch.nn.Module, input_size: tuple[int, int, int]) -> dict[str, Any]:
    """Whether a patched model's attention level runs sparse at its current knobs, and why not.

    One forward of a zero input (eval mode, no grad: no random numbers drawn) gives the
    token count of every stage; each stage (the blocks after a pruning block) is then
    judged by the rule ``plan_layout`` applies. Returns ``{"requested", "impl", "active",
    "stages": [{"after_block", "tokens", "sparse", "why_dense"}], "reason"}``; ``reason``
    says why the dense stages run dense (None when every stage runs sparse).
    """
    attn_keep = getattr(model, "attn_keep", None)
    impl = getattr(model, "attn_impl", "auto")
    status: dict[str, Any] = {"requested": attn_keep, "impl": impl, "active": False,
                              "stages": [], "reason": None}
    if attn_keep is None or attn_keep >= 1.0:
        status["reason"] = "no attention-level keep fraction below 1 is set"
        return status
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
    counts = model._tome_info["token_counts"]
    prefix = int(model.num_prefix_tokens)
    for layer in sorted(model.prune_layers):
        if layer + 1 >= len(counts):
            continue  # the last block: no later block to serve
        _, why = layout_decision(counts[layer + 1], attn_keep, prefix, impl, param.device,
                                 param.dtype)
        status["stages"].append({"after_block": layer, "tokens": counts[layer + 1],
                                 "sparse": why is None, "why_dense": why})
    status["active"] = any(stage["sparse"] for stage in status["stages"])
    reasons = list(dict.fromkeys(st["why_dense"] for st in status["stages"] if not st["sparse"]))
    if not status["stages"]:
        reasons = ["no block follows a pruning block"]
    status["reason"] = "; ".join(reasons) or None
    return status


def attention_level_notice(status: dict[str, Any]) -> str | None:
    """One sentence on where and why the attention level runs dense (None: it runs sparse)."""
    if status["requested"] is None or status["reason"] is None:
        return None
    dense = [st for st in status["stages"] if not st["sparse"]]
    tokens = "/".join(str(st["tokens"]) for st in dense)
    if not status["active"]:
        held = f"after token pruning the blocks hold {tokens} tokens and " if dense else ""
        return f"the attention level runs dense here: {held}{status['reason']}"
    after = ", ".join(str(st["after_block"]) for st in dense)
    return (f"the attention level runs dense after pruning block(s) {after} ({tokens} tokens): "
            f"{status['reason']}")
