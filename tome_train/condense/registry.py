"""Method names -> condenser classes."""

from __future__ import annotations

from .base import Condenser
from .dm import DistributionMatching

METHODS: dict[str, type[Condenser]] = {
    "dm": DistributionMatching,
}


def get_method(name: str) -> type[Condenser]:
    """The condenser class of ``name``; ``ValueError`` naming the choices otherwise."""
    if name not in METHODS:
        raise ValueError(f"--method: unknown method {name!r}; choose from {sorted(METHODS)}")
    return METHODS[name]
