"""``Scores``: the result of scoring a training set with one method."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .methods import importance

__all__ = ["Scores"]


@dataclass
class Scores:
    """One method's per-sample scores over the whole training set, in data-set order.

    * ``values``: float64 ``[N]``, the mean over ``seeds`` of ``per_seed`` (may hold
      ``+inf``: forgetting's never-learned samples; never NaN);
    * ``labels``: int64 ``[N]``, each sample's class;
    * ``higher_is_important``: which end matters (see :mod:`.methods`);
    * ``epochs``: length of each scoring run (0: no training, e.g. ``random``);
    * ``seconds``: wall time of the scoring runs and passes, all seeds together;
    * ``cost``: ``train_gflops`` (the scoring runs' training), ``score_gflops`` (the extra
      passes after training), ``score_forward_equivalents`` (those passes counted in
      forward passes of one sample) and their wall times;
    * ``recipe`` / ``train_argv``: the scoring runs' recipe and full ``tools/train.py``
      arguments (empty for methods without a run).
    """

    method: str
    values: torch.Tensor
    labels: torch.Tensor
    higher_is_important: bool
    seeds: tuple[int, ...] = ()
    per_seed: dict[int, torch.Tensor] = field(default_factory=dict)
    epochs: int = 0
    seconds: float = 0.0
    cost: dict[str, float] = field(default_factory=dict)
    recipe: str = ""
    train_argv: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.values.dim() != 1 or self.labels.shape != self.values.shape:
            raise ValueError(
                f"values and labels must be 1-D of the same length, got {tuple(self.values.shape)} "
                f"and {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return int(self.values.numel())

    @property
    def more_important(self) -> str:
        return "higher" if self.higher_is_important else "lower"

    def importance(self) -> torch.Tensor:
        """Finite float64 scores where higher = more important (see :func:`.methods.importance`)."""
        return importance(self.values, self.higher_is_important)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: method, direction, run settings, cost and per-class statistics."""
        return {
            "method": self.method,
            "higher_is_important": self.higher_is_important,
            "more_important": self.more_important,
            "num_samples": len(self),
            "epochs": self.epochs,
            "seeds": list(self.seeds),
            "seconds": self.seconds,
            "cost": dict(self.cost),
            "recipe": self.recipe,
            "train_argv": list(self.train_argv),
            "overall": _stats(self.values),
            "per_class": {
                str(int(c)): _stats(self.values[self.labels == c]) for c in torch.unique(self.labels)
            },
        }


def _stats(values: torch.Tensor) -> dict[str, float | int]:
    """Count, infinite count, and mean / std / quantiles of the finite values."""
    finite = values[torch.isfinite(values)].to(torch.float64)
    out: dict[str, float | int] = {"count": int(values.numel()), "inf_count": int(values.numel() - finite.numel())}
    if finite.numel():
        q = torch.quantile(finite, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64))
        out.update(
            mean=float(finite.mean()),
            std=float(finite.std(unbiased=False)),
            min=float(q[0]), q25=float(q[1]), median=float(q[2]), q75=float(q[3]), max=float(q[4]),
        )
    return out
