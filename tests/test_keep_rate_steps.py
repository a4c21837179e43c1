"""The keep rate follows its schedule per iteration, and the FLOPs ledger follows it."""

import pytest
import torch

from tome_train.engine.hooks import TrainState
from tome_train.flops import TrainingFlopsLedger
from tome_train.flops.hook import FlopsLedgerHook
from tome_train.patch.hook import KeepRateHook
from tome_train.schedule import keep_rate_at


class _Knobs(torch.nn.Module):
    """Stands in for a patched model: the ledger keys on its stage token counts."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)
        self.keep_rate = 1.0

    def stage_token_counts(self) -> tuple[int, ...]:
        return (round(100 * self.keep_rate),)


def test_keep_rate_steps_within_an_epoch() -> None:
    hook = KeepRateHook(0.5, warmup_epochs=1, decay_epochs=2)
    state = TrainState(model=_Knobs(), device=torch.device("cpu"), epoch=1, steps_in_epoch=4)
    hook.on_epoch_start(state)
    assert state.metrics["keep_rate"] == 1.0
    seen = []
    for step in range(4):
        state.step_in_epoch = step
        hook.on_batch_start(state)
        seen.append(state.model.keep_rate)
    assert seen == pytest.approx([keep_rate_at(1 + s / 4, 0.5, 1, 2) for s in range(4)])
    assert seen[0] == 1.0 and seen[1] < 1.0 and seen == sorted(seen, reverse=True)


def test_ledger_row_is_the_sample_weighted_mean_of_the_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = TrainingFlopsLedger()
    hook = FlopsLedgerHook(ledger, (3, 8, 8))
    model = _Knobs()
    traced = []

    def fake_forward_gflops(m, size):
        traced.append(m.keep_rate)
        return float(m.stage_token_counts()[0])

    monkeypatch.setattr("tome_train.flops.hook.forward_gflops", fake_forward_gflops)
    state = TrainState(model=model, device=torch.device("cpu"), epoch=0, steps_in_epoch=3)
    hook.on_epoch_start(state)
    for keep, n in ((1.0, 10), (0.5, 10), (0.5, 20)):
        model.keep_rate = keep
        hook.on_batch_end(state, type("B", (), {"indices": torch.arange(n)})())
    hook.on_epoch_end(state)
    assert state.metrics["forward_gflops"] == pytest.approx((10 * 100 + 30 * 50) / 40)
    assert traced == [1.0, 0.5]  # cached by token counts: one trace per distinct count
