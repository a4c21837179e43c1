"""Per-sample scores for the score-based methods of ``tools/coreset.py``.

The scores come from :mod:`tome_train.scoring`'s hooks attached to the whole-data run
(the run that also gives the embedding): ``forgetting`` counts events during its
training, the post-training methods (``el2n``, ``curvature``, ...) score the unaugmented
training set with its final model. One training run thus serves every method; a
score's extra cost is the post-training pass alone.
"""

from __future__ import annotations

import time

import torch
from torch.utils.data import Dataset

from .. import scoring
from ..engine.hooks import Hook, TrainState
from .coreset_args import FEATURE_METHODS


def check_scores(names: list[str]) -> None:
    """Raise ``ValueError`` naming ``--methods`` when a score is not one of tome_train.scoring's."""
    unknown = [n for n in names if n not in scoring.METHODS]
    if unknown:
        raise ValueError(f"--methods: unknown method or score {', '.join(unknown)} (methods: "
                         f"{', '.join(FEATURE_METHODS)}; scores of tome_train.scoring: {', '.join(scoring.METHODS)})")


class _Timed(Hook):
    """Times another hook's ``on_train_end`` (the post-training scoring pass)."""

    def __init__(self, inner: Hook) -> None:
        self.inner = inner
        self.name = inner.name
        self.seconds = 0.0

    def on_train_end(self, state: TrainState) -> None:
        start = time.perf_counter()
        self.inner.on_train_end(state)
        self.seconds = time.perf_counter() - start


class ScoreHooks:
    """The scoring hooks for ``names`` on one run, and their results once it has ended."""

    def __init__(self, names: list[str], dataset: Dataset, seed: int) -> None:
        self.names = list(names)
        self.seed = seed
        self.hooks: list[Hook] = []
        self.forgetting = None
        self.post = None
        self.num = len(dataset)  # type: ignore[arg-type]
        if not names:
            return
        if "forgetting" in names:
            self.forgetting = scoring.ForgettingScoreHook()
            self.hooks.append(self.forgetting)
        post = [n for n in names if scoring.get_method(n).stage == "post"]
        if post:
            self.post = _Timed(scoring.PostTrainingScoreHook(post, dataset, seed=seed))
            self.hooks.append(self.post)

    def results(self) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """``({name: raw values, float64 [N]}, {name: extra seconds})`` after the run."""
        values: dict[str, torch.Tensor] = {}
        seconds: dict[str, float] = {}
        for name in self.names:
            if name == "forgetting":
                values[name], seconds[name] = self.forgetting.scores(), 0.0  # counted while training
            elif self.post is not None and name in self.post.inner.values:
                values[name], seconds[name] = self.post.inner.values[name], self.post.seconds
            else:  # a score that needs no model ("random")
                generator = torch.Generator().manual_seed(self.seed)
                values[name], seconds[name] = torch.rand(self.num, generator=generator, dtype=torch.float64), 0.0
        return values, seconds


def importance(name: str, values: torch.Tensor) -> torch.Tensor:
    """Finite scores oriented so that higher = more important (what ``select`` takes)."""
    return scoring.importance(values, scoring.get_method(name).higher_is_important)
