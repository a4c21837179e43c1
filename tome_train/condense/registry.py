"""Method names -> condenser classes."""

from __future__ import annotations

from .base import Condenser
from .cafe import FeatureAlignment
from .dc import GradientMatching
from .dm import DistributionMatching
from .dsa import SiameseGradientMatching
from .idm import ImprovedDistributionMatching

METHODS: dict[str, type[Condenser]] = {
    cls.name: cls
    for cls in (GradientMatching, SiameseGradientMatching, DistributionMatching, FeatureAlignment,
                ImprovedDistributionMatching)
}


def get_method(name: str) -> type[Condenser]:
    """The condenser class of ``name``; ``ValueError`` naming the choices otherwise."""
    if name not in METHODS:
        raise ValueError(f"--method: unknown method {name!r}; choose from {sorted(METHODS)}")
    return METHODS[name]
