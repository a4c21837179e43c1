"""Hook protocol of the training loop.

One loop serves plain training, scoring runs and condensation evaluation; what
differs between them (keep-rate schedules, forgetting statistics, FLOP ledgers)
plugs in as hooks instead of forks of the loop. Hooks that carry state across
epochs expose it through ``state_dict``/``load_state_dict`` so checkpoints and
resumes include it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class TrainState:
    """What hooks can see: the (unwrapped) model, progress counters and this epoch's metrics."""

    model: nn.Module
    device: torch.device
    epoch: int = 0
    global_step: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


class Hook:
    """Base class: every callback is a no-op, so subclasses override only what they need."""

    #: key of this hook's state in checkpoints; unique per trainer
    name: str = "hook"

    def on_train_start(self, state: TrainState) -> None:
        """Called once before the first epoch of this process (also after a resume)."""

    def on_epoch_start(self, state: TrainState) -> None:
        """Called before the epoch's first batch (``state.epoch`` is set)."""

    def on_batch_end(
        self,
        state: TrainState,
        indices: torch.Tensor,
        logits: torch.Tensor,
        targets: torch.Tensor,
    ) -> None:
        """Called after each optimizer step with the batch's example indices, detached
        logits and *original* integer labels (before any mixup/cutmix)."""

    def on_epoch_end(self, state: TrainState) -> None:
        """Called after the epoch's last batch, before evaluation; runs on every rank."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
