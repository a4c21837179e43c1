"""AdamW with DeiT's weight-decay exclusions and a per-step warm-up + cosine LR schedule.

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
from typing import Any

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: decayed weights, and biases/norms/position & class tokens without decay."""
    skip = set()
    if hasattr(model, "no_weight_decay"):
        skip = set(model.no_weight_decay())
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name in skip or name.endswith(".bias"):
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW as in DeiT (betas 0.9/0.999, eps 1e-8)."""
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.999), eps=1e-8)


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
