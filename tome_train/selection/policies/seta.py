"""SeTa (Zhou et al., CVPR 2025, "Scale Efficient Training for Large Datasets").

Each epoch: keep a random ``1 - prune_ratio`` of the data; group the kept samples by their
latest loss into ``num_groups`` clusters (1-D k-means, scikit-learn), ordered from easy
(low loss) to hard; train on a window of ``round(window_scale * num_groups)`` consecutive
groups that slides one group towards the hard end per epoch and wraps around (the first
epoch trains on all groups of its random subset). From ``delta * epochs`` on, partial
annealing: a random ``1 - prune_ratio`` of the data. No loss rescaling.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .base import LossScoredPolicy, check_fraction
from .infobatch import annealing
from .random_policies import subset_size


def loss_groups(scores: torch.Tensor, num_groups: int, seed: int) -> list[torch.Tensor]:
    """Positions into ``scores`` grouped by 1-D k-means, groups ordered by mean score."""
    n = scores.numel()
    if num_groups <= 1 or n <= num_groups or float(scores.max()) == float(scores.min()):
        return list(torch.arange(n).chunk(max(1, min(num_groups, n))))
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=num_groups, n_init=3, random_state=seed).fit_predict(
        scores.numpy().reshape(-1, 1))
    labels = torch.from_numpy(labels.astype(np.int64))
    groups = [torch.nonzero(labels == k).squeeze(1) for k in range(num_groups)]
    groups = [g for g in groups if g.numel()]
    return sorted(groups, key=lambda g: float(scores[g].mean()))


class SeTaPolicy(LossScoredPolicy):
    name = "seta"

    def __init__(
        self,
        num_samples: int,
        prune_ratio: float = 0.3,
        num_groups: int = 5,
        window_scale: float = 0.9,
        delta: float = 0.875,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(num_samples, seed, device)
        self.prune_ratio = check_fraction("prune_ratio", prune_ratio, allow_zero=True, allow_one=False)
        if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
            raise ValueError(f"num_groups must be an int >= 1, got {num_groups!r}")
        self.num_groups = num_groups
        self.window_scale = check_fraction("window_scale", window_scale)
        self.delta = check_fraction("delta", delta)

    def _choose(self, epoch: int, epochs: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        count = subset_size(self.num_samples, 1.0 - self.prune_ratio)
        subset = torch.randperm(self.num_samples, generator=self.generator(epoch))[:count]
        if annealing(epoch, epochs, self.delta) or epoch == 0:
            return subset, None
        scores = self.losses.scores[subset]
        unseen = torch.isnan(scores)
        if unseen.all():
            return subset, None
        # Never-seen samples count as hard (the reference starts every score high).
        scores = torch.where(unseen, scores[~unseen].max(), scores)
        groups = loss_groups(scores, self.num_groups, self.seed + epoch)
        window = max(1, round(len(groups) * self.window_scale))
        start = epoch % (len(groups) - window + 1)
        return subset[torch.cat(groups[start : start + window])], None

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "prune_ratio": self.prune_ratio, "num_groups": self.num_groups,
                "window_scale": self.window_scale, "delta": self.delta}
