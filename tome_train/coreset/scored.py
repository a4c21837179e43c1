"""Score-based coreset methods over per-sample importance scores (higher = more important).

* ``easy``: the lowest scores; ``hard``: the highest scores. Ties (forgetting counts
  are integers, so there are many) are broken at random with the given generator, not
  by index: data sets stored sorted by class would otherwise lose whole classes.
* ``ccs``: coverage-centric coreset selection (Zheng et al., ICLR 2023). The hardest
  ``beta`` fraction is cut (mislabelled and ambiguous samples sit there), the score
  range of the rest is split into ``strata`` equal-width strata, and the budget is
  spread evenly across strata, visiting them from the smallest up so that a stratum
  too small for its share passes the remainder on to the larger ones.
"""

from __future__ import annotations

import torch


def _ranked(scores: torch.Tensor, generator: torch.Generator, descending: bool) -> torch.Tensor:
    shuffle = torch.randperm(scores.numel(), generator=generator)
    order = torch.sort(scores[shuffle], descending=descending, stable=True).indices
    return shuffle[order]


def easy(scores: torch.Tensor, budget: int, generator: torch.Generator) -> torch.Tensor:
    """The ``budget`` least important samples."""
    return _ranked(scores, generator, descending=False)[:budget]


def hard(scores: torch.Tensor, budget: int, generator: torch.Generator) -> torch.Tensor:
    """The ``budget`` most important samples."""
    return _ranked(scores, generator, descending=True)[:budget]


def ccs(
    scores: torch.Tensor, budget: int, generator: torch.Generator, beta: float = 0.1, strata: int = 50
) -> torch.Tensor:
    """Coverage-centric selection: cut the hardest ``beta`` fraction, then sample evenly
    across ``strata`` equal-width score strata, smallest stratum first.

    The cut never leaves fewer than ``budget`` samples (it shrinks instead).
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    if isinstance(strata, bool) or not isinstance(strata, int) or strata < 1:
        raise ValueError(f"strata must be an int >= 1, got {strata!r}")
    n = scores.numel()
    cut = min(int(beta * n), n - budget)
    kept = _ranked(scores, generator, descending=True)[cut:]
    kept_scores = scores[kept].double()
    low, high = float(kept_scores.min()), float(kept_scores.max())
    width = (high - low) / strata
    if width > 0:
        stratum = ((kept_scores - low) / width).floor().long().clamp_(0, strata - 1)
    else:
        stratum = torch.zeros_like(kept)
    members = [kept[stratum == s] for s in range(strata)]
    chosen = []
    remaining = budget
    # Smallest first; equal sizes in stratum order, so the visit order is deterministic.
    order = sorted(range(strata), key=lambda s: (members[s].numel(), s))
    for position, s in enumerate(order):
        share = min(members[s].numel(), remaining // (strata - position))
        if share > 0:
            pick = torch.randperm(members[s].numel(), generator=generator)[:share]
            chosen.append(members[s][pick])
            remaining -= share
    return torch.cat(chosen) if chosen else torch.empty(0, dtype=torch.long)
