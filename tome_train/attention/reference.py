"""Reference: dense attention with the 0/1 token mask implied by a layout (tests only).

Slow (materialises the N x N mask) but obviously correct, so every fast kernel is
checked against it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .layout import BlockLayout

__all__ = ["reference_attention"]


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        layout: BlockLayout, scale: float | None = None) -> torch.Tensor:
    """Masked dense SDPA; q, k, v ``[B, H, N, D]``, mask shared by all heads."""
    mask = layout.token_mask().to(q.device)[:, None]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
