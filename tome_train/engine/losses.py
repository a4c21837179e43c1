"""Per-sample classification losses (``reduction="none"``), as the loop needs them.

The loop averages per-sample losses itself, after the hooks' weights, so every
criterion here returns one value per sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class PerSampleCrossEntropy(torch.nn.Module):
    """Cross-entropy per sample against integer labels or soft targets (mixup/cutmix).

    ``smoothing`` applies to integer labels only; timm's ``Mixup`` already smooths the
    soft targets it makes.
    """

    def __init__(self, smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.ndim == logits.ndim:  # soft targets
            return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1)
        return F.cross_entropy(logits, targets, reduction="none", label_smoothing=self.smoothing)
