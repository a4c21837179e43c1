"""Example-level knob: feed each training batch to the ``ExampleSelector``'s score source.

With the default source (forgetting), a sample counts as correct when
``argmax(logits) == original label``. Under mixup/cutmix the logits answer a mixed
image, yet we still compare with the example's own label: the selector tracks how well
*this* example is learnt, and the dominant component of a mixed image is the original
one for most of the mixing distribution. Runs that need exact forgetting statistics
should disable mixup/cutmix.
"""

from __future__ import annotations

from typing import Any

from ..engine.hooks import BatchResult, Hook, TrainState


class SelectorHook(Hook):
    """Update the selector per batch; let it merge across ranks and swap at epoch end."""

    name = "selector"

    def __init__(self, selector: Any) -> None:
        self.selector = selector

    def on_batch_end(self, state: TrainState, batch: BatchResult) -> None:
        self.selector.observe(batch)

    def on_epoch_end(self, state: TrainState) -> None:
        swapped = self.selector.end_epoch(state.epoch)
        summary = self.selector.summary()
        state.metrics["swapped"] = bool(swapped)
        state.metrics["active_count"] = int(summary["active_count"])
        state.metrics["removed_count"] = int(summary["removed_count"])

    def state_dict(self) -> dict[str, Any]:
        return {"selector": self.selector.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.selector.load_state_dict(state["selector"])
