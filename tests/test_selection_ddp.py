"""Two gloo processes on CPU (loopback only): identical active sets, merged statistics equal
to one process seeing the same presentations, each active example presented once per epoch."""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tome_train import distributed as tdist
from tome_train.selection import ActiveSetSampler, ExampleSelector, ForgettingTracker

WORLD = 2
CFG = dict(num_samples=101, data_keep=0.7, swap_fraction=0.3, seed=4)  # 71 active: odd
EPOCHS = 4
BATCH = 8


def _correct(indices: torch.Tensor, salt: int) -> torch.Tensor:
    """Deterministic fake predictions from a hash of (index, salt)."""
    h = (indices * 2654435761 + salt * 40503 + 12345) % 1000003
    return (h % 3) != 0


def _overlap_indices(rank: int, epoch: int) -> torch.Tensor:
    """Presentations that overlap between ranks (as DistributedSampler padding does),
    with a duplicate inside rank 0's list."""
    g = torch.Generator().manual_seed(100 * epoch + rank)
    idx = torch.arange(0, 14) if rank == 0 else torch.arange(6, 20)
    idx = idx[torch.randperm(idx.numel(), generator=g)]
    return torch.cat([idx, idx[:2]]) if rank == 0 else idx


def _worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
        timeout=timedelta(seconds=60),
    )
    try:
        assert tdist.is_dist() and tdist.rank() == rank and tdist.world_size() == WORLD
        sel = ExampleSelector(**CFG)
        sampler = ActiveSetSampler(sel, seed=1)  # rank and world size from the process group
        sampler.set_epoch(1)
        epoch1_order = list(sampler)
        sampler.set_epoch(0)
        rec: dict = {"epoch1_order": epoch1_order, "active": [], "shards": [], "lens": [],
                     "digests": [], "swapped": []}
        for epoch in range(EPOCHS):
            sampler.set_epoch(epoch)
            rec["active"].append(sel.active_indices.tolist())
            shard = list(sampler)
            rec["shards"].append(shard)
            rec["lens"].append(len(sampler))
            for chunk in torch.tensor(shard, dtype=torch.long).split(BATCH):
                sel.update(chunk, _correct(chunk, epoch))
            rec["swapped"].append(sel.end_epoch(epoch))
            rec["digests"].append(sel.digest())
        rec["tracker"] = sel.tracker.state_dict()

        t = ForgettingTracker(20)
        for epoch in range(3):
            idx = _overlap_indices(rank, epoch)
            t.update(idx, _correct(idx, 10 * epoch + rank))
            t.end_epoch()
        rec["overlap"] = t.state_dict()
        torch.save(rec, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    out = tmp_path_factory.mktemp("ddp")
    saved = os.environ.get("GLOO_SOCKET_IFNAME")
    if saved is None and Path("/sys/class/net/lo").exists():
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only; inherited by the workers
    try:
        ctx = mp.start_processes(
            _worker, args=(_free_port(), str(out)), nprocs=WORLD, join=False, start_method="spawn"
        )
    finally:
        if saved is None:
            os.environ.pop("GLOO_SOCKET_IFNAME", None)
    deadline = time.monotonic() + 60
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("DDP workers did not finish within 60 s")
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def test_ranks_hold_identical_active_sets(records: list[dict]) -> None:
    r0, r1 = records
    assert r0["digests"] == r1["digests"]
    assert r0["active"] == r1["active"]
    assert r0["swapped"] == r1["swapped"] and any(r0["swapped"])
    _assert_same_state(r0["tracker"], r1["tracker"])


def test_statistics_equal_single_process(records: list[dict]) -> None:
    ref = ExampleSelector(**CFG)
    for epoch in range(EPOCHS):
        for rec in records:
            for chunk in torch.tensor(rec["shards"][epoch], dtype=torch.long).split(BATCH):
                ref.update(chunk, _correct(chunk, epoch))
        ref.end_epoch(epoch)
        assert ref.digest() == records[0]["digests"][epoch]
    _assert_same_state(ref.tracker.state_dict(), records[0]["tracker"])

    # Overlapping presentations: one process seeing rank 0's, then rank 1's, each epoch.
    t = ForgettingTracker(20)
    for epoch in range(3):
        for rank in range(WORLD):
            idx = _overlap_indices(rank, epoch)
            t.update(idx, _correct(idx, 10 * epoch + rank))
        t.end_epoch()
    for rec in records:
        _assert_same_state(t.state_dict(), rec["overlap"])
    assert int(t.total_forgetting_events.sum()) > 0


def test_sampler_presents_each_active_example_once(records: list[dict]) -> None:
    r0, r1 = records
    for epoch in range(EPOCHS):
        s0, s1 = r0["shards"][epoch], r1["shards"][epoch]
        assert sorted(s0 + s1) == r0["active"][epoch]  # exactly once, nothing missing
        assert (len(s0), len(s1)) == (36, 35)
        assert (r0["lens"][epoch], r1["lens"][epoch]) == (36, 35)
    # set_epoch changes the order (same active set before any swap)
    assert r0["epoch1_order"] != r0["shards"][0]
    assert sorted(r0["epoch1_order"] + r1["epoch1_order"]) == r0["active"][0]
