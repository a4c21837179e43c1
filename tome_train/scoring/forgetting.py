"""Forgetting scores (Toneva et al., "An Empirical Study of Example Forgetting during Deep
Neural Network Learning", ICLR 2019): forgetting events counted over a training run.

The counting is :class:`tome_train.selection.ForgettingTracker`, the same object the
example-level selector uses online; this module only runs it through a whole scoring run
and reads the totals out. A sample never predicted correctly counts as forgotten
infinitely often (``+inf``): it ranks as the most forgotten, as in the paper.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..engine.hooks import BatchResult, Hook, TrainState
from ..selection.forgetting import ForgettingTracker

__all__ = ["ForgettingScoreHook", "forgetting_scores"]


def forgetting_scores(tracker: ForgettingTracker) -> torch.Tensor:
    """Float64 ``[N]`` on the CPU: forgetting events since the start of training, ``+inf``
    for samples never predicted correctly (including never presented ones)."""
    events = tracker.total_forgetting_events.detach().to(torch.float64).cpu()
    return events.masked_fill(~tracker.ever_correct.cpu(), math.inf)


class ForgettingScoreHook(Hook):
    """Count forgetting events of every training sample through a run; :meth:`scores`
    reads them out (on every rank alike: the tracker merges ranks each epoch)."""

    name = "forgetting_scores"

    def __init__(self) -> None:
        self.tracker: ForgettingTracker | None = None
        self._restored: dict[str, Any] | None = None

    def on_train_start(self, state: TrainState) -> None:
        if self.tracker is None:
            self.tracker = ForgettingTracker(state.num_samples, state.device)
        if self._restored is not None:  # a resumed run: continue the counts
            self.tracker.load_state_dict(self._restored["tracker"])
            self._restored = None

    def on_batch_end(self, state: TrainState, batch: BatchResult) -> None:
        assert self.tracker is not None
        self.tracker.observe(batch)

    def on_epoch_end(self, state: TrainState) -> None:
        assert self.tracker is not None
        self.tracker.end_epoch()  # merges ranks under DDP

    def scores(self) -> torch.Tensor:
        if self.tracker is None:
            raise ValueError("forgetting scores are read after a training run")
        return forgetting_scores(self.tracker)

    def state_dict(self) -> dict[str, Any]:
        if self.tracker is None:
            return {}
        return {"tracker": self.tracker.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restored = dict(state) if state else None
