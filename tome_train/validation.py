"""Argument checks shared by every layer, so the same mistake gets the same error everywhere."""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["check_fraction", "flags_given"]


def flags_given(argv: list[str] | tuple[str, ...]) -> set[str]:
    """The ``--flags`` an argument list sets, in either form (``--lr 0.1`` or ``--lr=0.1``)."""
    return {a.split("=", 1)[0] for a in argv if a.startswith("--")}


def check_fraction(value: Any, name: str) -> float:
    """Return ``value`` as a float in (0, 1], or raise a ValueError naming ``name``.

    Booleans, strings and other non-numbers are refused (``True`` is not a keep rate).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value) or not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return value
