"""Distances the methods minimise between real and synthetic data.

* :func:`gradient_distance` (DC, DSA): for each weight tensor, reshape the gradients to
  one row per output channel and sum ``1 - cosine`` over the rows; sum over layers.
  One-dimensional parameters (biases, the scales and shifts of norm layers) are not
  matched, as in the DC paper.
* :func:`mean_embedding_distance` (DM, IDM): squared distance of the batch means.
"""

from __future__ import annotations

import torch
from torch import nn

#: keeps the cosine finite for an all-zero gradient row
COSINE_EPS = 1e-6


def matched_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters whose gradients are matched: every trainable tensor with >= 2 dims."""
    return [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]


def layer_gradient_distance(g_syn: torch.Tensor, g_real: torch.Tensor) -> torch.Tensor:
    """``sum over output channels of 1 - cos(g_syn[o], g_real[o])`` for one weight tensor."""
    if g_syn.shape != g_real.shape:
        raise ValueError(f"gradient shapes differ: {tuple(g_syn.shape)} vs {tuple(g_real.shape)}")
    if g_syn.ndim < 2:
        return g_syn.new_zeros(())
    s = g_syn.reshape(g_syn.shape[0], -1)
    r = g_real.reshape(g_real.shape[0], -1)
    cosine = (s * r).sum(-1) / (s.norm(dim=-1) * r.norm(dim=-1) + COSINE_EPS)
    return (1.0 - cosine).sum()


def gradient_distance(g_syn: list[torch.Tensor] | tuple[torch.Tensor, ...],
                      g_real: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Layer-wise sum of :func:`layer_gradient_distance` (1-D tensors contribute 0)."""
    if len(g_syn) != len(g_real):
        raise ValueError(f"{len(g_syn)} synthetic but {len(g_real)} real gradient tensors")
    total = g_syn[0].new_zeros(()) if g_syn else torch.zeros(())
    for s, r in zip(g_syn, g_real):
        total = total + layer_gradient_distance(s, r)
    return total


def mean_embedding_distance(real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
    """``|| mean(real) - mean(syn) ||^2`` over the batch dimension of two ``B x D`` embeddings."""
    return ((real.mean(dim=0) - syn.mean(dim=0)) ** 2).sum()
