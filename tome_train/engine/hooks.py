"""Hook protocol of the training loop.

One loop serves plain training, scoring runs, data-pruning policies and condensation
evaluation; what differs between them (keep-rate schedules, forgetting statistics,
loss re-weighting, FLOP ledgers) plugs in as hooks instead of forks of the loop.
Each hook lives beside the feature it serves; the loop knows only this interface.
Hooks that carry state across epochs expose it through ``state_dict`` /
``load_state_dict`` so checkpoints and resumes include it.

Per batch, the loop calls, in hook order:

0. ``on_batch_start(state)`` before the forward pass (``state.step_in_epoch`` is the
   batch's index): per-iteration schedules set the model's knobs here.
1. ``reweight(state, batch)`` after the forward pass and before backward: a hook may
   return per-sample weights (shape ``[B]``); the loss that is back-propagated is
   ``mean(w_1 * w_2 * ... * losses)``. ``batch.losses`` still carries the graph here.
2. ``on_batch_end(state, batch)`` after the optimizer step, with everything detached.
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
    #: size of the training set (the index space of ``BatchResult.indices``)
    num_samples: int = 0
    #: the run's total number of epochs (``Trainer.fit``'s argument)
    epochs: int = 0
    #: batches in the current epoch (the longest rank's count under DDP)
    steps_in_epoch: int = 0
    #: index of the current batch within the epoch
    step_in_epoch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    #: objects hooks offer each other by name, set in ``on_train_start`` (a hook that runs
    #: passes of its own finds the FLOPs ledger's hook here, for example)
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchResult:
    """One training batch as the hooks see it.

    * ``indices``: data-set indices of the samples (``[B]``, on the training device);
    * ``logits``: the model's outputs (``[B, C]``, float);
    * ``targets``: each sample's *own* integer label (before mixup/cutmix);
    * ``loss_targets``: what the loss was computed against (soft targets under
      mixup/cutmix, the labels otherwise);
    * ``losses``: per-sample loss (criterion with ``reduction="none"``), against
      ``loss_targets``, so under mixup/cutmix it is the loss of the *mixed* sample;
    * ``features``: penultimate features (the classifier's input), only when a hook
      sets ``needs_features``, else ``None``;
    * ``weights``: the product of the weights the hooks returned (``None``: all 1).
    """

    indices: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor
    loss_targets: torch.Tensor
    losses: torch.Tensor
    features: torch.Tensor | None = None
    weights: torch.Tensor | None = None

    def detached(self) -> BatchResult:
        return BatchResult(
            indices=self.indices,
            logits=self.logits.detach().float(),
            targets=self.targets,
            loss_targets=self.loss_targets.detach(),
            losses=self.losses.detach().float(),
            features=None if self.features is None else self.features.detach().float(),
            weights=None if self.weights is None else self.weights.detach(),
        )


class Hook:
    """Base class: every callback is a no-op, so subclasses override only what they need."""

    #: key of this hook's state in checkpoints; unique per trainer
    name: str = "hook"
    #: ask the loop to capture the penultimate features of every training batch
    needs_features: bool = False

    def on_train_start(self, state: TrainState) -> None:
        """Called once before the first epoch of this process (also after a resume)."""

    def on_epoch_start(self, state: TrainState) -> None:
        """Called before the epoch's first batch (``state.epoch`` is set)."""

    def on_batch_start(self, state: TrainState) -> None:
        """Before each batch's forward pass (``state.step_in_epoch`` is set)."""

    def reweight(self, state: TrainState, batch: BatchResult) -> torch.Tensor | None:
        """Before backward: per-sample loss weights (``[B]``), or ``None`` to leave them."""
        return None

    def on_batch_end(self, state: TrainState, batch: BatchResult) -> None:
        """After each optimizer step, with the batch's detached results."""

    def on_epoch_end(self, state: TrainState) -> None:
        """Called after the epoch's last batch, before evaluation; runs on every rank."""

    def on_train_end(self, state: TrainState) -> None:
        """Called once after the last epoch, with the trained model in ``state.model``."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
