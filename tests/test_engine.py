"""Engine pieces: atomic checkpoints, LR schedule, samplers, RNG handling, hooks."""

from __future__ import annotations

import copy
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tome_train.data import IndexedDataset
from tome_train.engine import (
    BatchResult,
    Hook,
    PerSampleCrossEntropy,
    ShardedIndexSampler,
    Trainer,
    TrainState,
    WarmupCosineSchedule,
    atomic_save,
    build_optimizer,
    index_digest,
    load_checkpoint,
    random_subset,
)
from tome_train.engine.checkpoint import preserve_rng_state


def test_atomic_save_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "checkpoint.pt"
    atomic_save({"a": torch.arange(3)}, target)
    before = target.read_bytes()

    class Unpicklable:
        def __reduce__(self) -> Any:
            raise RuntimeError("boom while writing")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"a": torch.arange(10_000), "b": Unpicklable()}, target)
    assert target.read_bytes() == before  # old checkpoint intact
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt"]  # no temp file left
    assert torch.equal(load_checkpoint(target)["a"], torch.arange(3))
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_schedule_warmup_independent_of_epochs() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    short = WarmupCosineSchedule(opt, lr=1.0, epochs=2, warmup_epochs=5, min_lr=0.0)
    long = WarmupCosineSchedule(opt, lr=1.0, epochs=40, warmup_epochs=5, min_lr=0.0)
    for t in (0.1, 1.0, 1.9, 2.0):
        assert short.lr_at(t) == long.lr_at(t) == pytest.approx(t / 5)
    assert long.lr_at(5.0) == pytest.approx(1.0)
    assert long.lr_at(40.0) == pytest.approx(0.0)
    assert long.step(epoch=0, index=9, steps_in_epoch=10) == pytest.approx(0.2)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)
    assert long.state_dict() == {"num_updates": 1, "last_t": 1.0}


def test_sharded_sampler_covers_each_index_once() -> None:
    indices = random_subset(103, 0.5, seed=3)
    assert len(indices) == 52 and torch.equal(indices, random_subset(103, 0.5, seed=3))
    shards = [ShardedIndexSampler(indices, num_replicas=3, rank=r, seed=1) for r in range(3)]
    for sampler in shards:
        sampler.set_epoch(4)
    seen = sorted(i for sampler in shards for i in sampler)
    assert seen == indices.tolist()
    assert sum(len(s) for s in shards) == 52
    order = list(shards[0])
    shards[0].set_epoch(5)
    assert list(shards[0]) != order
    assert index_digest([3, 1, 2]) == index_digest(torch.tensor([1, 2, 3]))


def test_preserve_rng_state() -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    with preserve_rng_state():
        torch.rand(5), np.random.rand(5), random.random()
    expected = (torch.rand(1).item(), np.random.rand(), random.random())
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    assert (torch.rand(1).item(), np.random.rand(), random.random()) == expected


class CountingHook(Hook):
    name = "counting"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.examples = 0

    def on_train_start(self, state: TrainState) -> None:
        self.calls.append("train_start")

    def on_epoch_start(self, state: TrainState) -> None:
        self.calls.append(f"epoch_start{state.epoch}")

    def on_batch_end(self, state: TrainState, batch: BatchResult) -> None:
        assert batch.logits.shape == (batch.indices.shape[0], 3) and not batch.logits.requires_grad
        assert batch.losses.shape == batch.indices.shape and not batch.losses.requires_grad
        self.examples += batch.indices.numel()

    def on_epoch_end(self, state: TrainState) -> None:
        self.calls.append(f"epoch_end{state.epoch}")
        state.metrics["examples"] = self.examples

    def state_dict(self) -> dict[str, Any]:
        return {"examples": self.examples}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.examples = state["examples"]


def _toy_trainer(tmp_path: Path, hook: Hook, epochs: int) -> Trainer:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(40, 4), torch.arange(40) % 3)
    model = nn.Linear(4, 3)
    optimizer = build_optimizer(model, lr=0.1, weight_decay=0.0)
    sampler = ShardedIndexSampler(torch.arange(40), seed=0)
    return Trainer(
        model=model,
        optimizer=optimizer,
        schedule=WarmupCosineSchedule(optimizer, 0.1, epochs, warmup_epochs=1),
        criterion=PerSampleCrossEntropy(),
        train_loader=DataLoader(IndexedDataset(data), batch_size=16, sampler=sampler),
        test_loader=DataLoader(data, batch_size=16),
        device=torch.device("cpu"),
        hooks=[hook],
        output_dir=tmp_path,
        args={"seed": 0},
    )


def test_trainer_hooks_checkpoint_and_resume(tmp_path: Path) -> None:
    hook = CountingHook()
    trainer = _toy_trainer(tmp_path / "a", hook, epochs=3)
    history = trainer.fit(3)
    assert hook.calls[:3] == ["train_start", "epoch_start0", "epoch_end0"]
    assert hook.examples == 120 and [row["examples"] for row in history] == [40, 80, 120]
    checkpoint = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    for key in ("model", "optimizer", "scheduler", "hooks", "epoch", "args", "rng", "history"):
        assert key in checkpoint
    assert checkpoint["epoch"] == 3 and checkpoint["hooks"]["counting"] == {"examples": 120}
    assert (tmp_path / "a" / "log.csv").read_text().count("\n") == 4
    assert len((tmp_path / "a" / "log.jsonl").read_text().splitlines()) == 3

    # Two epochs, then resume to three: same weights as the uninterrupted run.
    first = _toy_trainer(tmp_path / "b", CountingHook(), epochs=3)
    first.fit(2)
    resumed_hook = CountingHook()
    resumed = _toy_trainer(tmp_path / "c", resumed_hook, epochs=3)
    resumed.resume(tmp_path / "b" / "checkpoint.pt")
    resumed.fit(3)
    assert resumed_hook.examples == 120
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert len(resumed.history) == 3


class _Reweight(Hook):
    name = "reweight"
    needs_features = True

    def __init__(self) -> None:
        self.seen: list[BatchResult] = []

    def reweight(self, state: TrainState, batch: BatchResult) -> torch.Tensor:
        assert batch.losses.requires_grad
        return (batch.indices % 2 == 0).float() * 2.0  # odd samples get no gradient

    def on_batch_end(self, state: TrainState, batch: BatchResult) -> None:
        self.seen.append(batch)


class _TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 5)
        self.head = nn.Linear(5, 3)

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.body(x)))


def test_reweight_and_features_reach_the_hooks() -> None:
    """Weights multiply per-sample losses before backward; features are the classifier's input."""
    torch.manual_seed(0)
    x, y = torch.randn(8, 4), torch.arange(8) % 3
    data = TensorDataset(x, y)
    model = _TinyNet()
    reference = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    hook = _Reweight()
    trainer = Trainer(
        model=model, optimizer=optimizer, schedule=WarmupCosineSchedule(optimizer, 0.1, 1, warmup_epochs=0),
        criterion=PerSampleCrossEntropy(), device=torch.device("cpu"), hooks=[hook],
        train_loader=DataLoader(IndexedDataset(data), batch_size=8, shuffle=False),
        test_loader=DataLoader(data, batch_size=8),
    )
    trainer.fit(1)
    (batch,) = hook.seen
    assert torch.equal(batch.weights, (torch.arange(8) % 2 == 0).float() * 2)
    assert torch.allclose(batch.features, torch.relu(reference.body(x)), atol=1e-6)
    # the same step by hand: only even samples, doubled
    losses = nn.functional.cross_entropy(reference(x), y, reduction="none")
    (losses * batch.weights).mean().backward()
    lr = optimizer.param_groups[0]["lr"]
    with torch.no_grad():
        for p in reference.parameters():
            p -= lr * p.grad
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_criterion_must_be_per_sample() -> None:
    data = TensorDataset(torch.randn(8, 4), torch.arange(8) % 3)
    model = _TinyNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(
        model=model, optimizer=optimizer, schedule=WarmupCosineSchedule(optimizer, 0.1, 1, warmup_epochs=0),
        criterion=nn.CrossEntropyLoss(), device=torch.device("cpu"),
        train_loader=DataLoader(IndexedDataset(data), batch_size=8), test_loader=DataLoader(data, batch_size=8),
    )
    with pytest.raises(ValueError, match="reduction='none'"):
        trainer.fit(1)
