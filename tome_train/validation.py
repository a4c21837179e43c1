"""Argument checks shared by every layer, so the same mistake gets the same error everywhere."""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any

__all__ = ["check_fraction", "flags_given", "writable_output_dir"]


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


def writable_output_dir(path: str | Path, name: str = "--output-dir") -> Path:
    """Create ``path`` (parents too) and check that files can be written in it, before any
    work starts, so that a bad ``--output-dir`` fails in the first second, not after training."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"{name}: cannot write to {str(out)!r} ({err.strerror or err})") from None
    return out
