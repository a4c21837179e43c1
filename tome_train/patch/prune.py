"""Token pruning by CLS attention (EViT-style keep / drop / fuse).

Kept tokens stay in their original order: the order of patch tokens carries no
meaning to a ViT after the position embedding, but keeping spatial neighbours
adjacent makes block-level structure (used by the attention level) meaningful.
"""

from __future__ import annotations

import math

import torch

from ..validation import check_fraction


def validate_keep_rate(keep_rate: float, name: str = "keep_rate") -> float:
    """Return ``keep_rate`` as a float, or raise a ValueError naming the argument."""
    return check_fraction(keep_rate, name)


def kept_token_count(num_tokens: int, keep_rate: float) -> int:
    """``ceil(keep_rate * num_tokens)``, robust to float noise (0.7 * 100 -> 70, not 71)."""
    return max(1, min(num_tokens, math.ceil(round(keep_rate * num_tokens, 6))))


def stage_token_counts(num_patches: int, keep_rate: float, num_prune_layers: int, fuse: bool = False) -> tuple[int, ...]:
    """Patch tokens left after each of ``num_prune_layers`` pruning blocks (a fused token
    counts as one more), computed from the knobs alone: what a forward would produce."""
    counts, n = [], int(num_patches)
    for _ in range(num_prune_layers):
        keep = kept_token_count(n, keep_rate)
        if keep < n:
            n = keep + (1 if fuse else 0)
        counts.append(n)
    return tuple(counts)


def prune_tokens(
    x: torch.Tensor,
    cls_attn: torch.Tensor,
    keep_rate: float,
    num_prefix_tokens: int,
    fuse: bool = False,
    companions: tuple[torch.Tensor, ...] = (),
) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, ...]]:
    """Keep the patch tokens that the CLS token attends to most.

    Args:
        x: tokens ``[B, N, C]``, prefix tokens (CLS, distillation, registers) first.
        cls_attn: CLS attention ``[B, N]`` (softmax row of the CLS query, averaged over heads).
        keep_rate: fraction of the non-prefix tokens to keep (``ceil`` of it).
        num_prefix_tokens: leading tokens that are always kept, never scored.
        fuse: merge the pruned tokens into one extra token, weighted by their CLS
            attention (EViT's "inattentive token fusion"); the weights are normalised to
            sum to one, so the fused token lives at the scale of the tokens it summarises.

        companions: other per-token tensors ``[B, N, *]`` (e.g. the block's keys and
            queries, for the attention level) reduced exactly like ``x``.

    Returns:
        ``(tokens, kept_index, companions)``: the reduced tokens ``[B, P + k (+1), C]``, the
        indices of the kept patch tokens within the input's patch tokens ``[B, k]`` (None if
        nothing was pruned) and the reduced companions.
    """
    # int(): under JIT tracing (fvcore) sizes are tensors; the token count is static anyway.
    num_patches = int(x.shape[1]) - num_prefix_tokens
    keep = kept_token_count(num_patches, keep_rate)
    if keep >= num_patches:
        return x, None, companions
    scores = cls_attn[:, num_prefix_tokens:]
    if not fuse:
        kept_index = scores.detach().topk(keep, dim=1, sorted=False).indices.sort(dim=1).values
        reduce = lambda t: _keep(t, kept_index, num_prefix_tokens)  # noqa: E731
        return reduce(x), kept_index, tuple(reduce(t) for t in companions)
    order = scores.detach().argsort(dim=1, descending=True)
    kept_index = order[:, :keep].sort(dim=1).values
    pruned_index = order[:, keep:]
    weights = scores.gather(1, pruned_index)
    weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(torch.finfo(weights.dtype).tiny)

    def reduce_and_fuse(t: torch.Tensor) -> torch.Tensor:
        pruned = _gather_tokens(t[:, num_prefix_tokens:], pruned_index)
        fused = (pruned * weights.unsqueeze(-1).to(t.dtype)).sum(dim=1, keepdim=True)
        return torch.cat([_keep(t, kept_index, num_prefix_tokens), fused], dim=1)

    return reduce_and_fuse(x), kept_index, tuple(reduce_and_fuse(t) for t in companions)


def _gather_tokens(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return t.gather(1, index.unsqueeze(-1).expand(-1, -1, t.shape[-1]))


def _keep(t: torch.Tensor, kept_index: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
    kept = _gather_tokens(t[:, num_prefix_tokens:], kept_index)
    return torch.cat([t[:, :num_prefix_tokens], kept], dim=1)
