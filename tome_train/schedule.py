"""Keep-rate schedules: constant, or warm-up at 1.0 then cosine decay to the target.

EViT and Tri-Level E-ViT keep all tokens for the first 10 epochs and reach the target
keep rate after 100 more (of 300): ``keep_rate_at(epoch, 0.7, warmup_epochs=10,
decay_epochs=100)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .validation import check_fraction


def keep_rate_at(
    epoch: float, target: float, warmup_epochs: float = 0, decay_epochs: float = 0
) -> float:
    """The keep rate at ``epoch`` (may be fractional, for per-step schedules).

    1.0 before ``warmup_epochs``; then a half-cosine from 1.0 down to ``target`` over
    ``decay_epochs``; ``target`` afterwards. With both zero the rate is constant.
    """
    target = check_fraction(target, "target")
    if warmup_epochs < 0 or decay_epochs < 0:
        raise ValueError(
            f"warmup_epochs and decay_epochs must be >= 0, got {warmup_epochs}, {decay_epochs}"
        )
    if epoch < warmup_epochs:
        return 1.0
    if decay_epochs == 0:
        return target
    progress = min(1.0, (epoch - warmup_epochs) / decay_epochs)
    return target + (1.0 - target) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class KeepRateSchedule:
    """A keep-rate schedule as a callable of the epoch (see :func:`keep_rate_at`)."""

    target: float = 1.0
    warmup_epochs: float = 0
    decay_epochs: float = 0

    def __post_init__(self) -> None:
        keep_rate_at(0, self.target, self.warmup_epochs, self.decay_epochs)  # validates

    def __call__(self, epoch: float) -> float:
        return keep_rate_at(epoch, self.target, self.warmup_epochs, self.decay_epochs)


# EViT at 300 epochs: all tokens for 10, then cosine decay to the target over 100.
REFERENCE_EPOCHS = 300
REFERENCE_SCHEDULE = {"keep_rate_warmup": 10.0, "keep_rate_decay": 100.0}


def scaled_schedule(epochs: int) -> dict[str, float]:
    """EViT's keep-rate schedule at the same fractions of a run of ``epochs`` epochs.

    ``scaled_schedule(6)`` -> keep rate 1.0 for 0.2 epoch, then decaying to its target over
    2 epochs (the keep rate steps per iteration). The LR warm-up is not scaled: on a ViT
    trained from scratch it is about optimizer steps, not the run's length (see the README).
    """
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    return {name: value * epochs / REFERENCE_EPOCHS for name, value in REFERENCE_SCHEDULE.items()}
