"""DSA: gradient matching with differentiable Siamese augmentation (Zhao & Bilen, ICML 2021).

DC (:mod:`.dc`) where the real and the synthetic batch of each class pass through one
shared random transform before their gradients are compared, and the inner-loop network
updates and the evaluation networks train with per-image DSA.
"""

from __future__ import annotations

from dataclasses import dataclass

from .augment import DEFAULT_STRATEGY
from .dc import DCConfig, GradientMatching


@dataclass
class DSAConfig(DCConfig):
    augment: str | None = DEFAULT_STRATEGY
    eval_augment: str | None = DEFAULT_STRATEGY


class SiameseGradientMatching(GradientMatching):
    name = "dsa"
    config_class = DSAConfig
