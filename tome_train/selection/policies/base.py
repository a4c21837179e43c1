"""Per-epoch data policies: which training samples go through backward this epoch, and with
what loss weight.

A policy decides its epoch's subset in :meth:`DataPolicy.plan` from ``(seed, epoch)`` and the
statistics merged over all ranks, so every rank decides the same subset without talking; the
sampler then presents each kept sample exactly once across ranks. Per-sample losses come in
through :meth:`DataPolicy.observe` (the engine's per-sample batch results) and are merged at
the epoch end with one all-reduce. Everything a resume needs is in ``state_dict``; the random
draws depend only on ``(seed, epoch)``, so a resumed run repeats the same decisions.
"""

from __future__ import annotations

from typing import Any

import torch

from ... import distributed as tdist
from ...distributed import epoch_seed


def check_fraction(name: str, value: Any, *, allow_zero: bool = False, allow_one: bool = True) -> float:
    low_ok = (lambda v: v >= 0.0) if allow_zero else (lambda v: v > 0.0)
    high_ok = (lambda v: v <= 1.0) if allow_one else (lambda v: v < 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low_ok(value) and high_ok(value)):
        lo, hi = ("[0" if allow_zero else "(0"), ("1]" if allow_one else "1)")
        raise ValueError(f"{name} must be a number in {lo}, {hi}, got {value!r}")
    return float(value)


class DataPolicy:
    """Base class. Subclasses implement :meth:`_choose` (and may override :meth:`weights`).

    ``active_indices`` (sorted CPU LongTensor) is this epoch's subset after :meth:`plan`.
    """

    name = "policy"

    def __init__(self, num_samples: int, seed: int = 0) -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an int >= 1, got {num_samples!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        self.num_samples = num_samples
        self.seed = seed
        self.active_indices = torch.arange(num_samples)
        self._weights: torch.Tensor | None = None  # per sample, None = all 1

    @property
    def active_count(self) -> int:
        return int(self.active_indices.numel())

    def generator(self, epoch: int, salt: int = 0) -> torch.Generator:
        """The CPU generator of ``(seed, epoch)``: the same draw on every rank and on resume."""
        return torch.Generator().manual_seed(epoch_seed(self.seed * 7 + salt, epoch))

    def plan(self, epoch: int, epochs: int) -> None:
        """Decide epoch ``epoch``'s subset (of a run of ``epochs``) and the loss weights."""
        indices, weights = self._choose(epoch, epochs)
        self.active_indices = indices.sort().values
        self._weights = weights

    def _choose(self, epoch: int, epochs: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def weights(self, indices: torch.Tensor) -> torch.Tensor | None:
        """Loss weights of the samples ``indices`` this epoch (``None``: all 1)."""
        if self._weights is None:
            return None
        return self._weights.to(indices.device)[indices]

    def observe(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        """Per-sample losses of a training batch (after the step). Default: unused."""

    def end_epoch(self) -> None:
        """Merge this epoch's statistics across ranks (collective: every rank calls)."""

    def summary(self) -> dict[str, Any]:
        return {"policy": self.name, "active_count": self.active_count}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


class LatestLossScores:
    """Each sample's most recent training loss (NaN until first seen), merged across ranks.

    A sample is presented at most once per epoch across all ranks, so summing the ranks'
    per-epoch buffers reconstructs every loss of the epoch exactly.
    """

    def __init__(self, num_samples: int, device: torch.device | str = "cpu") -> None:
        self.scores = torch.full((num_samples,), float("nan"), dtype=torch.float64)
        self.device = torch.device(device)
        self._values = torch.zeros(num_samples, dtype=torch.float64, device=self.device)
        self._seen = torch.zeros(num_samples, dtype=torch.float64, device=self.device)

    def observe(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        indices = indices.to(self.device)
        self._values.index_copy_(0, indices, losses.detach().to(self.device, torch.float64))
        self._seen.index_fill_(0, indices, 1.0)

    def end_epoch(self) -> None:
        buffer = torch.stack([self._values, self._seen])
        if tdist.is_dist():
            buffer = buffer.cpu() if torch.distributed.get_backend() == "gloo" else buffer
            tdist.all_reduce_sum_(buffer)
        values, seen = buffer[0].cpu(), buffer[1].cpu() > 0
        self.scores[seen] = values[seen]
        self._values.zero_()
        self._seen.zero_()

    def state_dict(self) -> dict[str, Any]:
        return {"scores": self.scores.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        scores = state["scores"]
        if scores.shape != self.scores.shape:
            raise ValueError(f"loss scores hold {tuple(scores.shape)} samples, expected {tuple(self.scores.shape)}")
        self.scores = scores.to(torch.float64).clone()


class LossScoredPolicy(DataPolicy):
    """A policy that decides from each sample's latest training loss (InfoBatch, SeTa)."""

    def __init__(self, num_samples: int, seed: int = 0, device: torch.device | str = "cpu") -> None:
        super().__init__(num_samples, seed)
        self.losses = LatestLossScores(num_samples, device)

    def observe(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        self.losses.observe(indices, losses)

    def end_epoch(self) -> None:
        self.losses.end_epoch()

    def state_dict(self) -> dict[str, Any]:
        return {"losses": self.losses.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.losses.load_state_dict(state["losses"])
