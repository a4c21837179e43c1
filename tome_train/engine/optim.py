"""Optimizers (timm's factory and weight-decay groups) and a per-step warm-up + cosine LR schedule.

``adamw`` is DeiT's recipe (betas 0.9/0.999, eps 1e-8); ``sgd`` is classical momentum
SGD (no Nesterov), the ConvNet protocol of the dataset-condensation papers (momentum
0.9, weight decay 5e-4). Both take timm's parameter groups: biases, norms and the
model's ``no_weight_decay()`` names (position embedding, class token) get no decay.

The schedule is a function of *fractional epochs* (``epoch + i / steps_in_epoch``),
not of a global step count. With example-level pruning the number of steps per
epoch changes as the active set changes, and a warm-up measured in epochs stays
the same whatever the active-set size. Linear warm-up comes first and does not
depend on the total number of epochs, so a run with ``--epochs 2`` and one with
``--epochs 4`` take identical steps while both are still inside the warm-up:
a resume that extends a run continues exactly only under that condition.
"""

from __future__ import annotations

import math

import torch
from timm.optim import create_optimizer_v2
from torch import nn

#: ``--opt`` name -> timm optimizer name (timm's "sgd" is Nesterov; "momentum" is classical)
OPTIMIZERS = {"adamw": "adamw", "sgd": "momentum"}


def build_optimizer(
    model: nn.Module, lr: float, weight_decay: float, opt: str = "adamw", momentum: float = 0.9
) -> torch.optim.Optimizer:
    """``opt`` (``adamw`` or ``sgd``) over timm's weight-decay parameter groups of ``model``."""
    if opt not in OPTIMIZERS:
        raise ValueError(f"opt must be one of {sorted(OPTIMIZERS)}, got {opt!r}")
    if opt == "adamw":
        return create_optimizer_v2(model, "adamw", lr=lr, weight_decay=weight_decay,
                                   betas=(0.9, 0.999), eps=1e-8)
    return create_optimizer_v2(model, OPTIMIZERS[opt], lr=lr, weight_decay=weight_decay, momentum=momentum)


class WarmupCosineSchedule:
    """LR = ``lr * t / warmup`` for ``t < warmup``, then cosine from ``lr`` to ``min_lr`` at ``epochs``.

    ``t`` is the fractional epoch at which the next update happens, measured at its
    end so that the first update already uses a non-zero LR. Rebuild it with the
    new ``epochs`` when resuming and load the state: only progress is stored.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        lr: float,
        epochs: int,
        warmup_epochs: float = 5.0,
        min_lr: float = 1e-5,
    ) -> None:
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.warmup_epochs = warmup_epochs
        self.min_lr = min(min_lr, lr)
        self.num_updates = 0
        self.last_t = 0.0

    def lr_at(self, t: float) -> float:
        """Learning rate at fractional epoch ``t``."""
        if t < self.warmup_epochs:
            return self.lr * t / self.warmup_epochs
        span = max(self.epochs - self.warmup_epochs, 1e-12)
        progress = min(max((t - self.warmup_epochs) / span, 0.0), 1.0)
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def step(self, epoch: int, index: int, steps_in_epoch: int) -> float:
        """Set the LR for update ``index`` (0-based) of ``epoch`` and return it."""
        t = epoch + (index + 1) / max(steps_in_epoch, 1)
        value = self.lr_at(t)
        for group in self.optimizer.param_groups:
            group["lr"] = value
        self.num_updates += 1
        self.last_t = t
        return value

    def state_dict(self) -> dict[str, float]:
        return {"num_updates": self.num_updates, "last_t": self.last_t}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.num_updates = int(state["num_updates"])
        self.last_t = float(state["last_t"])
