"""Token pruning by CLS attention (EViT-style keep / drop / fuse).

Kept tokens stay in their original order: the order of patch tokens carries no
meaning to a ViT after the position embedding, but keeping spatial neighbours
adjacent makes block-level structure (used by the attention level) meaningful.
"""

from __future__ import annotations

import math

import torch


def validate_keep_rate(keep_rate: float, name: str = "keep_rate") -> float:
    """Return ``keep_rate`` as a float, or raise a ValueError naming the argument."""
    if isinstance(keep_rate, bool) or not isinstance(keep_rate, (int, float)):
        raise TypeError(f"{name} must be a number in (0, 1], got {type(keep_rate).__name__}")
    keep_rate = float(keep_rate)
    if not (0.0 < keep_rate <= 1.0) or math.isnan(keep_rate):
        raise ValueError(f"{name} must be in (0, 1], got {keep_rate}")
    return keep_rate


def kept_token_count(num_tokens: int, keep_rate: float) -> int:
    """``ceil(keep_rate * num_tokens)``, robust to float noise (0.7 * 100 -> 70, not 71)."""
    return max(1, min(num_tokens, math.ceil(round(keep_rate * num_tokens, 6))))


def prune_tokens(
    x: torch.Tensor,
    cls_attn: torch.Tensor,
    keep_rate: float,
    num_prefix_tokens: int,
    fuse: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Keep the patch tokens that the CLS token attends to most.

    Args:
        x: tokens ``[B, N, C]``, prefix tokens (CLS, distillation, registers) first.
        cls_attn: CLS attention ``[B, N]`` (softmax row of the CLS query, averaged over heads).
        keep_rate: fraction of the non-prefix tokens to keep (``ceil`` of it).
        num_prefix_tokens: leading tokens that are always kept, never scored.
        fuse: merge the pruned tokens into one extra token, weighted by their CLS
            attention (EViT's "inattentive token fusion"); the weights are normalised to
            sum to one, so the fused token lives at the scale of the tokens it summarises.

    Returns:
        ``(tokens, kept_index)``: the reduced tokens ``[B, P + k (+1), C]`` and the indices
        of the kept patch tokens within the input's patch tokens ``[B, k]`` (None if nothing
        was pruned).
    """
    # int(): under JIT tracing (fvcore) sizes are tensors; the token count is static anyway.
    dim = int(x.shape[2])
    num_patches = int(x.shape[1]) - num_prefix_tokens
    keep = kept_token_count(num_patches, keep_rate)
    if keep >= num_patches:
        return x, None
    scores = cls_attn[:, num_prefix_tokens:]
    patches = x[:, num_prefix_tokens:]
    if not fuse:
        kept_index = scores.detach().topk(keep, dim=1, sorted=False).indices.sort(dim=1).values
        kept = patches.gather(1, kept_index.unsqueeze(-1).expand(-1, -1, dim))
        return torch.cat([x[:, :num_prefix_tokens], kept], dim=1), kept_index
    order = scores.detach().argsort(dim=1, descending=True)
    kept_index = order[:, :keep].sort(dim=1).values
    pruned_index = order[:, keep:]
    kept = patches.gather(1, kept_index.unsqueeze(-1).expand(-1, -1, dim))
    pruned = patches.gather(1, pruned_index.unsqueeze(-1).expand(-1, -1, dim))
    weights = scores.gather(1, pruned_index)
    weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(torch.finfo(weights.dtype).tiny)
    fused = (pruned * weights.unsqueeze(-1)).sum(dim=1, keepdim=True)
    return torch.cat([x[:, :num_prefix_tokens], kept, fused], dim=1), kept_index
