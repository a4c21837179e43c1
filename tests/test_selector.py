"""ExampleSelector and ActiveSetSampler (single process)."""

from __future__ import annotations

import math

import pytest
import torch

from tome_train.selection import ActiveSetSampler, ExampleSelector


def _correct(indices: torch.Tensor, epoch: int) -> torch.Tensor:
    """Deterministic fake predictions: a hash of (index, epoch) decides correctness."""
    h = (indices * 2654435761 + epoch * 40503 + 12345) % 1000003
    return (h % 3) != 0


def _train(sel: ExampleSelector, epochs: range, batch: int = 16) -> list[str]:
    digests = []
    for epoch in epochs:
        sampler = ActiveSetSampler(sel, num_replicas=1, rank=0, seed=5)
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), dtype=torch.long)
        for chunk in order.split(batch):
            sel.update(chunk, _correct(chunk, epoch))
        sel.end_epoch(epoch)
        digests.append(sel.digest())
    return digests


def _check_partition(sel: ExampleSelector) -> None:
    active, removed = sel.active_indices, sel.removed_indices
    assert active.numel() == sel.active_count and removed.numel() == sel.removed_count
    both = torch.cat([active, removed]).sort().values
    assert torch.equal(both, torch.arange(sel.num_samples))
    assert torch.equal(active, active.sort().values)


def test_initial_removal_fraction_and_seed_determinism() -> None:
    a = ExampleSelector(1000, data_keep=0.7, seed=3)
    b = ExampleSelector(1000, data_keep=0.7, seed=3)
    c = ExampleSelector(1000, data_keep=0.7, seed=4)
    assert a.active_count == 700 and a.removed_count == 300
    assert a.swap_n == 30  # 10 % of the removed pool
    _check_partition(a)
    assert a.digest() == b.digest() != c.digest()
    assert a.summary() == {
        "active_count": 700, "removed_count": 300, "swaps": 0, "active_digest": a.digest()
    }


def test_swap_drops_lowest_scores_and_restores_oldest() -> None:
    n = 20
    sel = ExampleSelector(n, data_keep=0.5, swap_n=3, seed=0)
    active = sel.active_indices
    initially_removed = set(sel.removed_indices.tolist())
    # Every active example is learned; give each a distinct number of forgetting events
    # except the three lowest, and leave one never learned (score inf).
    events = {int(i): r + 1 for r, i in enumerate(active.tolist())}
    never = int(active[0])
    for e in range(12):
        ok = torch.tensor([e % 2 == 0 or e >= 2 * events[int(i)] for i in active])
        ok[0] = False  # `never` is never correct
        sel.update(active, ok)
    assert sel.end_epoch(0) is True
    scores = {int(i): events[int(i)] for i in active}
    expected_drop = sorted((s, i) for i, s in scores.items() if i != never)[:3]
    dropped = set(active.tolist()) - set(sel.active_indices.tolist())
    assert dropped == {i for _, i in expected_drop}
    assert never in set(sel.active_indices.tolist())
    restored = set(sel.active_indices.tolist()) - set(active.tolist())
    assert len(restored) == 3 and restored <= initially_removed
    assert sel.swaps == 1
    assert sel.removed_at[list(dropped)].tolist() == [1, 1, 1]
    assert sel.tracker.forgetting_events.sum() == 0  # window reset
    _check_partition(sel)


def test_fifo_restore_cycles_the_whole_pool() -> None:
    n = 40
    sel = ExampleSelector(n, data_keep=0.75, swap_n=2, seed=1)
    pool0 = set(sel.removed_indices.tolist())
    back: set[int] = set()
    for epoch in range(5):  # 10 removed examples, 2 per swap: all back after 5 swaps
        before = set(sel.active_indices.tolist())
        sel.update(sel.active_indices, torch.ones(sel.active_count, dtype=torch.bool))
        assert sel.end_epoch(epoch)
        back |= (set(sel.active_indices.tolist()) - before) & pool0
        _check_partition(sel)
    assert back == pool0


def test_ties_broken_deterministically_from_seed() -> None:
    def run(seed: int) -> list[str]:
        sel = ExampleSelector(200, data_keep=0.8, swap_n=10, seed=seed)
        out = []
        for epoch in range(3):  # everyone correct: all scores tie at 0
            sel.update(sel.active_indices, torch.ones(sel.active_count, dtype=torch.bool))
            sel.end_epoch(epoch)
            out.append(sel.digest())
        return out

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_never_learned_are_kept_and_swap_shrinks() -> None:
    sel = ExampleSelector(10, data_keep=0.5, swap_n=3, seed=0)
    active = sel.active_indices
    ok = torch.zeros(5, dtype=torch.bool)
    ok[0] = True  # only one example ever learned
    sel.update(active, ok)
    assert sel.tracker.window_scores()[active[1]].item() == math.inf
    assert sel.end_epoch(0) is True
    assert set(active.tolist()) - set(sel.active_indices.tolist()) == {int(active[0])}
    sel.update(sel.active_indices, torch.zeros(5, dtype=torch.bool))
    assert sel.end_epoch(1) is False  # nothing learned in the new active set
    assert sel.swaps == 1


def test_swap_every_and_invariants_over_training() -> None:
    sel = ExampleSelector(300, data_keep=0.6, swap_every=2, swap_fraction=0.25, seed=2)
    assert sel.swap_n == 30
    swapped = []
    for epoch in range(6):
        sampler = ActiveSetSampler(sel, num_replicas=1, rank=0)
        sampler.set_epoch(epoch)
        seen = list(sampler)
        assert sorted(seen) == sel.active_indices.tolist()
        idx = torch.tensor(seen)
        sel.update(idx, _correct(idx, epoch))
        swapped.append(sel.end_epoch(epoch))
        _check_partition(sel)
    assert swapped == [False, True, False, True, False, True]
    assert sel.swaps == 3


def test_data_keep_one_disables() -> None:
    sel = ExampleSelector(50, data_keep=1.0, swap_n=5)
    assert not sel.enabled and sel.swap_n == 0 and sel.removed_indices.numel() == 0
    d0 = sel.digest()
    for epoch in range(3):
        sel.update(sel.active_indices, torch.arange(50) % 2 == epoch % 2)
        assert sel.end_epoch(epoch) is False
    assert sel.digest() == d0 and sel.swaps == 0
    assert sel.tracker.presentations.tolist() == [3] * 50


def test_state_dict_resume_continues_identically() -> None:
    cfg = dict(num_samples=240, data_keep=0.7, swap_every=1, swap_fraction=0.2, seed=11)
    full = ExampleSelector(**cfg)
    digests = _train(full, range(6))
    half = ExampleSelector(**cfg)
    first = _train(half, range(3))
    state = half.state_dict()
    resumed = ExampleSelector(**cfg)
    resumed.load_state_dict(state)
    rest = _train(resumed, range(3, 6))
    assert first + rest == digests
    assert resumed.summary() == full.summary()
    assert resumed.swaps == full.swaps > 0
    assert torch.equal(resumed.removed_at, full.removed_at)
    for name in ("presentations", "total_forgetting_events", "forgetting_events",
                 "ever_correct", "last_correct"):
        assert torch.equal(getattr(resumed.tracker, name), getattr(full.tracker, name)), name


def test_load_state_dict_validation() -> None:
    sel = ExampleSelector(100, data_keep=0.8, seed=1)
    state = sel.state_dict()
    with pytest.raises(ValueError, match="seed: checkpoint 1 vs this run 2"):
        ExampleSelector(100, data_keep=0.8, seed=2).load_state_dict(state)
    with pytest.raises(ValueError, match="data_keep"):
        ExampleSelector(100, data_keep=0.9, seed=1).load_state_dict(state)
    bad = dict(state, removed_at=torch.full((100,), -1, dtype=torch.long))
    with pytest.raises(ValueError, match="inconsistent"):
        ExampleSelector(100, data_keep=0.8, seed=1).load_state_dict(bad)
    with pytest.raises(ValueError, match="missing keys"):
        ExampleSelector(100, data_keep=0.8, seed=1).load_state_dict({"version": 1})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"data_keep": 0.0}, r"data_keep must be in \(0, 1\]"),
        ({"data_keep": 1.5}, "data_keep"),
        ({"swap_every": 0}, "swap_every must be an int >= 1"),
        ({"swap_fraction": 0.0}, "swap_fraction"),
        ({"swap_fraction": 2.0}, "swap_fraction"),
        ({"swap_n": 21}, r"swap_n must be an int in \[0, 20\]"),
        ({"swap_n": -1}, "swap_n"),
        ({"seed": -1}, "seed"),
        ({"num_samples": 0}, "num_samples"),
    ],
)
def test_constructor_errors(kwargs: dict, match: str) -> None:
    args = {"num_samples": 100, **kwargs}
    with pytest.raises(ValueError, match=match):
        ExampleSelector(**args)


def test_end_epoch_must_increase() -> None:
    sel = ExampleSelector(10)
    sel.end_epoch(0)
    with pytest.raises(ValueError, match="epoch must increase"):
        sel.end_epoch(0)
    with pytest.raises(ValueError, match="epoch"):
        sel.end_epoch(-1)


def test_default_schedule() -> None:
    s2 = ExampleSelector.default_schedule(2, 1000, 0.7)
    s4 = ExampleSelector.default_schedule(4, 1000, 0.7)
    assert s2 == s4 == {"data_keep": 0.7, "swap_every": 1, "swap_fraction": 0.1, "swap_n": 30}
    assert ExampleSelector.default_schedule(300, 1000, 0.7)["swap_every"] == 30
    assert ExampleSelector.default_schedule(5, 1000, 1.0)["swap_n"] == 0
    sel = ExampleSelector(1000, **s4)
    assert sel.swap_n == 30
    with pytest.raises(ValueError, match="epochs"):
        ExampleSelector.default_schedule(0, 1000, 0.7)
    with pytest.raises(ValueError, match="data_keep"):
        ExampleSelector.default_schedule(3, 1000, 0.0)


def test_sampler_single_process() -> None:
    sel = ExampleSelector(50, data_keep=0.6, seed=0)
    shards = []
    for r in range(3):
        s = ActiveSetSampler(sel, num_replicas=3, rank=r, seed=9)
        s.set_epoch(2)
        shards.append(list(s))
        assert len(s) == len(shards[-1])
    assert [len(x) for x in shards] == [10, 10, 10]
    assert sorted(sum(shards, [])) == sel.active_indices.tolist()
    s = ActiveSetSampler(sel, num_replicas=1, rank=0, seed=9)
    s.set_epoch(0)
    e0 = list(s)
    s.set_epoch(1)
    assert list(s) != e0 and sorted(list(s)) == sorted(e0)
    assert list(ActiveSetSampler(sel, shuffle=False)) == sel.active_indices.tolist()
    odd = ExampleSelector(31, data_keep=1.0)
    assert [len(ActiveSetSampler(odd, num_replicas=4, rank=r)) for r in range(4)] == [8, 8, 8, 7]
    with pytest.raises(ValueError, match=r"rank must be an int in \[0, 1\]"):
        ActiveSetSampler(sel, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas"):
        ActiveSetSampler(sel, num_replicas=0, rank=0)


def test_bench_smoke() -> None:
    import json

    from tome_train.selection.bench import tracker_overhead

    out = tracker_overhead(num_samples=2000, batch=32, iters=5)
    json.dumps(out)
    assert out["update_us"] > 0 and out["swaps"] > 0
