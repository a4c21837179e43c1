"""InfoBatch (Qin et al., ICLR 2024): drop part of the well-learned samples, rescale the rest.

A sample's score is its latest training loss. Each epoch, the samples scoring below the
mean are "well learned"; each of them is dropped with probability ``prune_ratio`` (exactly
``floor((1 - prune_ratio) * count)`` of them are kept, drawn at random), and the kept ones
get their loss scaled by ``1 / (1 - prune_ratio)`` so the expected gradient is unchanged.
Samples never seen yet are not well learned (the first epoch trains on everything). From
epoch ``delta * epochs`` on (annealing) the full data set trains with weight 1.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .base import LossScoredPolicy, check_fraction


def annealing(epoch: int, epochs: int, delta: float) -> bool:
    """True in the last epochs, from ``delta * epochs`` on (as the reference: 1-based epoch
    numbers up to ``delta * epochs`` prune)."""
    return epoch + 1 > delta * epochs


class InfoBatchPolicy(LossScoredPolicy):
    name = "infobatch"

    def __init__(
        self,
        num_samples: int,
        prune_ratio: float = 0.5,
        delta: float = 0.875,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(num_samples, seed, device)
        self.prune_ratio = check_fraction("prune_ratio", prune_ratio, allow_zero=True, allow_one=False)
        self.delta = check_fraction("delta", delta)
        self.pruned_last_epoch = 0

    def _choose(self, epoch: int, epochs: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        everything = torch.arange(self.num_samples)
        if annealing(epoch, epochs, self.delta) or self.prune_ratio == 0.0:
            self.pruned_last_epoch = 0
            return everything, None
        scores = self.losses.scores
        seen = ~torch.isnan(scores)
        well_learned = torch.zeros(self.num_samples, dtype=torch.bool)
        if seen.any():
            well_learned = seen & (scores < scores[seen].mean())
        candidates = torch.nonzero(well_learned).squeeze(1)
        keep_ratio = 1.0 - self.prune_ratio
        kept_count = math.floor(keep_ratio * candidates.numel())
        order = torch.randperm(candidates.numel(), generator=self.generator(epoch))
        kept_well_learned = candidates[order[:kept_count]]
        self.pruned_last_epoch = int(candidates.numel() - kept_count)
        weights = torch.ones(self.num_samples)
        weights[kept_well_learned] = 1.0 / keep_ratio
        active = torch.cat([torch.nonzero(~well_learned).squeeze(1), kept_well_learned])
        return active, weights

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "prune_ratio": self.prune_ratio, "delta": self.delta,
                "pruned_last_epoch": self.pruned_last_epoch}
