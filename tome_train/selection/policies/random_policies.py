"""Dynamic random pruning: a fresh random subset of a fixed fraction every epoch.

(The static baseline, one fixed random subset, is a fixed index set for the sampler:
``tome_train.engine.samplers.random_subset``.)"""

from __future__ import annotations

from typing import Any

import torch

from .base import DataPolicy, check_fraction


def subset_size(num_samples: int, fraction: float) -> int:
    return min(num_samples, max(1, int(round(fraction * num_samples))))


class DynamicRandomPolicy(DataPolicy):
    """A fresh random ``keep`` fraction every epoch: the baseline a dynamic policy must beat."""

    name = "dynamic-random"

    def __init__(self, num_samples: int, keep: float, seed: int = 0) -> None:
        super().__init__(num_samples, seed)
        self.keep = check_fraction("keep", keep)

    def _choose(self, epoch: int, epochs: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        count = subset_size(self.num_samples, self.keep)
        return torch.randperm(self.num_samples, generator=self.generator(epoch))[:count], None

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "keep": self.keep}
