import pytest

from tome_train.schedule import KeepRateSchedule, keep_rate_at


def test_constant_schedule() -> None:
    assert keep_rate_at(0, 0.7) == 0.7
    assert keep_rate_at(100, 0.7) == 0.7


def test_warmup_then_cosine_decay() -> None:
    sched = KeepRateSchedule(0.7, warmup_epochs=10, decay_epochs=100)
    assert sched(0) == 1.0 and sched(9.99) == 1.0
    assert sched(10) == pytest.approx(1.0)
    assert sched(60) == pytest.approx(0.85)  # half-way down the cosine
    assert sched(110) == pytest.approx(0.7)
    assert sched(300) == pytest.approx(0.7)
    values = [sched(e) for e in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_schedule_errors() -> None:
    with pytest.raises(ValueError, match="target"):
        KeepRateSchedule(1.2)
    with pytest.raises(ValueError, match="warmup_epochs"):
        keep_rate_at(0, 0.5, warmup_epochs=-1)
