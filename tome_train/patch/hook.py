"""Token-level knob: set ``model.keep_rate`` (and ``model.attn_keep``) at each epoch start.

The schedule (1.0 during warm-up, then cosine to the target) is
``tome_train.schedule.keep_rate_at``; it depends only on the epoch, never on the
total number of epochs, which keeps resumed runs identical to uninterrupted ones.
"""

from __future__ import annotations

from ..engine.hooks import Hook, TrainState
from ..schedule import keep_rate_at


class KeepRateHook(Hook):
    """Drive the patched model's knobs from the epoch counter (stateless: a pure schedule)."""

    name = "keep_rate"

    def __init__(
        self,
        target: float,
        warmup_epochs: int = 0,
        decay_epochs: int = 0,
        attn_keep: float | None = None,
    ) -> None:
        self.target = target
        self.warmup_epochs = warmup_epochs
        self.decay_epochs = decay_epochs
        self.attn_keep = attn_keep

    def keep_rate_at(self, epoch: int) -> float:
        return float(keep_rate_at(float(epoch), self.target, self.warmup_epochs, self.decay_epochs))

    def on_epoch_start(self, state: TrainState) -> None:
        model = state.model
        model.keep_rate = self.keep_rate_at(state.epoch)
        if self.attn_keep is not None and hasattr(model, "attn_keep"):
            model.attn_keep = self.attn_keep
        state.metrics["keep_rate"] = model.keep_rate
        state.metrics["attn_keep"] = getattr(model, "attn_keep", None)
