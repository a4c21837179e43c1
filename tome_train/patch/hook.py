"""Token-level knob: set ``model.keep_rate`` (and ``model.attn_keep``) before every batch.

The schedule (1.0 during warm-up, then cosine to the target) is
``tome_train.schedule.keep_rate_at`` evaluated at the batch's fractional epoch
(``epoch + step / steps_in_epoch``), as EViT's ``adjust_keep_rate`` steps per
iteration. It depends only on the position in training, never on the total number of
epochs, which keeps resumed runs identical to uninterrupted ones.
"""

from __future__ import annotations

from ..engine.hooks import Hook, TrainState
from ..schedule import keep_rate_at


class KeepRateHook(Hook):
    """Drive the patched model's knobs from the training position (stateless: a pure schedule)."""

    name = "keep_rate"

    def __init__(
        self,
        target: float,
        warmup_epochs: float = 0,
        decay_epochs: float = 0,
        attn_keep: float | None = None,
    ) -> None:
        self.target = target
        self.warmup_epochs = warmup_epochs
        self.decay_epochs = decay_epochs
        self.attn_keep = attn_keep

    def keep_rate_at(self, epoch: float) -> float:
        return float(keep_rate_at(float(epoch), self.target, self.warmup_epochs, self.decay_epochs))

    def _set(self, state: TrainState, epoch: float) -> None:
        model = state.model
        model.keep_rate = self.keep_rate_at(epoch)
        if self.attn_keep is not None and hasattr(model, "attn_keep"):
            model.attn_keep = self.attn_keep

    def on_epoch_start(self, state: TrainState) -> None:
        self._set(state, state.epoch)
        # The logged value is the rate at the epoch's first step.
        state.metrics["keep_rate"] = state.model.keep_rate
        state.metrics["attn_keep"] = getattr(state.model, "attn_keep", None)

    def on_batch_start(self, state: TrainState) -> None:
        self._set(state, state.epoch + state.step_in_epoch / max(state.steps_in_epoch, 1))
