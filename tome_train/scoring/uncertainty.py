"""Uncertainty scores from the trained model's softmax (label-free): least confidence, margin,
entropy.

These are the classic uncertainty-sampling criteria that DeepCore (Guo et al., 2022) also
benchmarks as coreset methods: the uncertain samples are the important ones, i.e. a *high*
least-confidence, a *low* margin and a *high* entropy.
"""

from __future__ import annotations

import torch

from .error_norms import as_float

__all__ = ["entropy", "least_confidence", "margin"]


def _probs(logits: torch.Tensor) -> torch.Tensor:
    if logits.dim() != 2 or logits.shape[-1] < 2:
        raise ValueError(f"logits must be [B, C] with C >= 2, got shape {tuple(logits.shape)}")
    return as_float(logits).softmax(dim=-1)


def least_confidence(logits: torch.Tensor) -> torch.Tensor:
    """``1 - max_c p_c``, ``[B]``."""
    return 1.0 - _probs(logits).amax(dim=-1)


def margin(logits: torch.Tensor) -> torch.Tensor:
    """Top-1 minus top-2 softmax probability, ``[B]``."""
    top = _probs(logits).topk(2, dim=-1).values
    return top[:, 0] - top[:, 1]


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """``-sum_c p_c log p_c`` (nats), ``[B]``; exact 0 for a one-hot softmax."""
    log_probs = as_float(logits).log_softmax(dim=-1)
    probs = _probs(logits)
    return -(probs * log_probs).sum(dim=-1)
