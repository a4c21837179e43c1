"""Per-sample scores for the score-based methods of ``tools/coreset.py`` (``tome_train.scoring``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch


def _scoring() -> Any:
    try:
        import tome_train.scoring as scoring
    except ImportError:
        return None
    return scoring


def check_scores(names: list[str]) -> None:
    """Raise ``ValueError`` naming ``--methods`` when a score cannot be computed here."""
    scoring = _scoring()
    if scoring is None:
        raise ValueError(f"--methods {','.join(names)}: not random, herding or kcenter, and the score-based "
                         "methods need tome_train.scoring, which this checkout lacks")
    known = set(getattr(scoring, "METHODS", ()))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"--methods: unknown score(s) {', '.join(unknown)} (tome_train.scoring has "
                         f"{', '.join(sorted(known))})")


def compute_scores(names: list[str], args: argparse.Namespace, out: Path
                   ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """``({name: scores oriented so that higher = more important}, {name: seconds})``."""
    raise ValueError(f"--methods {','.join(names)}: tome_train.scoring's interface is not wired in yet")
