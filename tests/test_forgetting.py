"""ForgettingTracker: hand-computed counts, batch vectorization, windows, checkpoints, errors."""

from __future__ import annotations

import math

import pytest
import torch

from tome_train.selection import ForgettingTracker


def _reference(num_samples: int, batches: list[tuple[list[int], list[bool]]]) -> dict:
    """Plain-Python forgetting counts: presentations processed one at a time, in order."""
    pres, events = [0] * num_samples, [0] * num_samples
    last, ever = [False] * num_samples, [False] * num_samples
    for idx, ok in batches:
        for i, c in zip(idx, ok):
            pres[i] += 1
            events[i] += int(last[i] and not c)
            last[i], ever[i] = c, ever[i] or c
    return {"presentations": pres, "events": events, "last": last, "ever": ever}


def _b(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.bool)


def test_hand_computed_sequence_across_epochs() -> None:
    t = ForgettingTracker(6)
    idx = torch.arange(6)
    # One row per presentation; per sample (column) the history and its forgetting events:
    #   s0: 1 0 1 0 -> 2   s1: 1 1 1 1 -> 0   s2: 0 0 0 0 -> never learned (inf)
    #   s3: 0 1 0 1 -> 1   s4: 1 0 0 1 -> 1   s5: 0 0 1 0 -> 1
    rows = [_b(1, 1, 0, 0, 1, 0), _b(0, 1, 0, 1, 0, 0), _b(1, 1, 0, 0, 0, 1), _b(0, 1, 0, 1, 1, 0)]
    t.update(idx, rows[0])
    t.update(idx, rows[1])
    t.end_epoch()
    assert t.total_forgetting_events.tolist() == [1, 0, 0, 0, 1, 0]
    t.update(idx, rows[2])
    t.end_epoch()
    t.update(idx, rows[3])
    t.end_epoch()
    assert t.presentations.tolist() == [4] * 6
    assert t.total_forgetting_events.tolist() == [2, 0, 0, 1, 1, 1]
    assert t.forgetting_events.tolist() == [2, 0, 0, 1, 1, 1]
    assert t.ever_correct.tolist() == [True, True, False, True, True, True]
    assert t.last_correct.tolist() == [False, True, False, True, True, False]
    scores = t.window_scores()
    assert scores.dtype.is_floating_point
    # Never learned (s2) or wrong at the last presentation (s0, s5): not unforgettable.
    assert scores.tolist() == [math.inf, 0.0, math.inf, 1.0, 1.0, math.inf]


def test_event_spanning_epochs_and_window_reset() -> None:
    t = ForgettingTracker(3)
    t.update(torch.tensor([0, 1]), _b(1, 1))
    t.end_epoch()
    t.reset_window()
    assert t.forgetting_events.tolist() == [0, 0, 0]
    t.update(torch.tensor([1, 0]), _b(0, 0))  # both forgotten across the epoch boundary
    t.end_epoch()
    assert t.forgetting_events.tolist() == [1, 1, 0]
    t.reset_window()
    assert t.forgetting_events.tolist() == [0, 0, 0]
    assert t.total_forgetting_events.tolist() == [1, 1, 0]
    # learned, then forgotten and still wrong: no event in this window, but not
    # unforgettable either -> inf (like the never-presented, never-learned sample 2)
    assert t.window_scores().tolist() == [math.inf, math.inf, math.inf]
    t.update(torch.tensor([0]), _b(1))  # sample 0 relearned: finite again
    t.end_epoch()
    assert t.window_scores().tolist() == [0.0, math.inf, math.inf]


def test_vectorized_update_matches_reference() -> None:
    g = torch.Generator().manual_seed(0)
    n = 50
    t = ForgettingTracker(n)
    batches = []
    for epoch in range(4):
        perm = torch.randperm(n, generator=g)[:40]  # duplicate-free batches of 8
        for chunk in perm.split(8):
            ok = torch.rand(chunk.numel(), generator=g) < 0.6 + 0.1 * epoch
            t.update(chunk, ok)
            batches.append((chunk.tolist(), ok.tolist()))
        t.end_epoch()
    ref = _reference(n, batches)
    assert t.presentations.tolist() == ref["presentations"]
    assert t.total_forgetting_events.tolist() == ref["events"]
    assert t.last_correct.tolist() == ref["last"]
    assert t.ever_correct.tolist() == ref["ever"]
    assert int(t.total_forgetting_events.sum()) > 0


def test_duplicate_indices_in_batch_are_ordered_presentations() -> None:
    g = torch.Generator().manual_seed(1)
    n = 7
    t = ForgettingTracker(n)
    batches = []
    for _ in range(20):
        idx = torch.randint(0, n, (12,), generator=g)
        ok = torch.rand(12, generator=g) < 0.5
        t.update(idx, ok)
        batches.append((idx.tolist(), ok.tolist()))
    ref = _reference(n, batches)
    assert t.presentations.tolist() == ref["presentations"]
    assert t.total_forgetting_events.tolist() == ref["events"]
    assert t.last_correct.tolist() == ref["last"]
    assert t.ever_correct.tolist() == ref["ever"]


def test_accepts_int_correct_and_empty_batch() -> None:
    t = ForgettingTracker(4)
    t.update(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.bool))
    t.update(torch.tensor([2, 3], dtype=torch.int32), torch.tensor([1, 0]))
    assert t.presentations.tolist() == [0, 0, 1, 1]
    assert t.ever_correct.tolist() == [False, False, True, False]


def test_state_dict_round_trip() -> None:
    t = ForgettingTracker(10)
    t.update(torch.arange(10), torch.arange(10) % 2 == 0)
    t.end_epoch()
    t.update(torch.arange(10), torch.arange(10) % 3 == 0)
    t.end_epoch()
    t.reset_window()
    t.update(torch.arange(5), torch.zeros(5, dtype=torch.bool))  # mid-epoch save
    state = t.state_dict()
    u = ForgettingTracker(10)
    u.load_state_dict(state)
    for name in ("presentations", "total_forgetting_events", "forgetting_events",
                 "ever_correct", "last_correct"):
        assert torch.equal(getattr(t, name), getattr(u, name)), name
    more = (torch.arange(10), torch.arange(10) % 4 == 0)
    for x in (t, u):
        x.update(*more)
        x.end_epoch()
    assert torch.equal(t.total_forgetting_events, u.total_forgetting_events)
    assert torch.equal(t.window_scores(), u.window_scores())


def test_load_state_dict_errors() -> None:
    state = ForgettingTracker(10).state_dict()
    with pytest.raises(ValueError, match="num_samples"):
        ForgettingTracker(11).load_state_dict(state)
    bad = dict(state, presentations=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="presentations"):
        ForgettingTracker(10).load_state_dict(bad)
    bad = {k: v for k, v in state.items() if k != "last_correct"}
    with pytest.raises(ValueError, match="missing keys"):
        ForgettingTracker(10).load_state_dict(bad)


@pytest.mark.parametrize(
    ("indices", "correct", "match"),
    [
        (torch.tensor([0, 1]), torch.tensor([True]), "same shape"),
        (torch.tensor([[0, 1]]), torch.tensor([[True, False]]), "1-D"),
        (torch.tensor([0.0, 1.0]), _b(1, 0), "integer"),
        (torch.tensor([0, 1]), torch.tensor([0.5, 1.0]), "bool"),
        (torch.tensor([0, 10]), _b(1, 0), r"\[0, 10\)"),
        (torch.tensor([-1, 0]), _b(1, 0), r"\[0, 10\)"),
        ([0, 1], _b(1, 0), "torch.Tensor"),
    ],
)
def test_update_errors(indices, correct, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ForgettingTracker(10).update(indices, correct)


def test_constructor_errors() -> None:
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="num_samples"):
            ForgettingTracker(bad)
