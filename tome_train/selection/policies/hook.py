"""Engine hook of the data policies: plan at epoch start, re-weight before backward, observe
per-sample losses after the step, merge statistics at epoch end."""

from __future__ import annotations

from typing import Any

import torch

from ...engine.hooks import BatchResult, Hook, TrainState
from .base import DataPolicy


class DataPolicyHook(Hook):
    name = "data_policy"

    def __init__(self, policy: DataPolicy) -> None:
        if not isinstance(policy, DataPolicy):
            raise ValueError(f"policy must be a DataPolicy, got {type(policy).__name__}")
        self.policy = policy

    def on_epoch_start(self, state: TrainState) -> None:
        self.policy.plan(state.epoch, state.epochs)
        state.metrics["active_count"] = self.policy.active_count

    def reweight(self, state: TrainState, batch: BatchResult) -> torch.Tensor | None:
        return self.policy.weights(batch.indices)

    def on_batch_end(self, state: TrainState, batch: BatchResult) -> None:
        self.policy.observe(batch.indices, batch.losses)

    def on_epoch_end(self, state: TrainState) -> None:
        self.policy.end_epoch()

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
