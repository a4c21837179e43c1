"""Online score sources for the example-level selector (``ExampleSelector(score_source=...)``).

A source sees every training batch and, at each swap, gives per-sample window scores where
higher = more important (the selector drops the lowest; ``+inf`` is never dropped).
``forgetting`` is the :class:`~tome_train.selection.ForgettingTracker` itself (the selector's
default); the methods computable from one batch's logits (``el2n``, ``loss``,
``least_confidence``, ``margin``, ``entropy``) keep each sample's latest value from its
last presentation, oriented by the method's direction. Under mixup/cutmix those logits
answer the mixed image (scored against the sample's own label).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..selection.forgetting import ForgettingTracker
from ..selection.policies.base import LatestLossScores
from .methods import get_method
from .passes import LOGIT_STATISTICS

__all__ = ["ONLINE_METHODS", "LatestValueSource", "online_score_source"]

#: methods a selector can use online
ONLINE_METHODS = ("forgetting", *LOGIT_STATISTICS)


class LatestValueSource:
    """Each sample's latest value of a per-batch statistic, oriented so higher = keep.

    A sample not presented yet scores ``+inf`` (kept). Merged across ranks each epoch.
    """

    def __init__(self, method: str, num_samples: int, device: torch.device | str = "cpu") -> None:
        info = get_method(method)
        if method not in LOGIT_STATISTICS:
            raise ValueError(f"method must be one of {', '.join(LOGIT_STATISTICS)} for an online source, got {method!r}")
        self.method = method
        self.sign = 1.0 if info.higher_is_important else -1.0
        self._statistic = LOGIT_STATISTICS[method]
        self.latest = LatestLossScores(num_samples, device)

    def observe(self, batch: Any) -> None:
        self.latest.observe(batch.indices, self._statistic(batch.logits, batch.targets))

    def end_epoch(self) -> None:
        self.latest.end_epoch()

    def window_scores(self) -> torch.Tensor:
        scores = self.sign * self.latest.scores
        return torch.nan_to_num(scores, nan=math.inf)

    def reset_window(self) -> None:
        """Latest values need no window."""

    def state_dict(self) -> dict[str, Any]:
        return {"method": self.method, **self.latest.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("method") != self.method:
            raise ValueError(f"score source state is for {state.get('method')!r}, this source is {self.method!r}")
        self.latest.load_state_dict(state)


def online_score_source(method: str, num_samples: int, device: torch.device | str = "cpu") -> Any:
    """A selector score source for ``method`` (one of :data:`ONLINE_METHODS`)."""
    if method == "forgetting":
        return ForgettingTracker(num_samples, device)
    if method not in ONLINE_METHODS:
        raise ValueError(f"method must be one of {', '.join(ONLINE_METHODS)} online, got {method!r}")
    return LatestValueSource(method, num_samples, device)
