"""Checkpoints load with weights_only=True: RNG states survive, bad files are refused by name."""

from __future__ import annotations

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
    PerSampleCrossEntropy,
    ShardedIndexSampler,
    Trainer,
    WarmupCosineSchedule,
    atomic_save,
    build_optimizer,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
)
from tome_train.engine.trainer import CHECKPOINT_VERSION


def test_rng_states_round_trip_through_a_weights_only_load(tmp_path: Path) -> None:
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    atomic_save({"rng": capture_rng_state()}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist())
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist()) == expected


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_runs_code_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    torch.save({"model": _RunsCode(marker)}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=r"evil\.pt holds a .*system object; refusing"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_damaged_files_are_named(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "bad.pt"
    if content is None:  # a real checkpoint cut short
        torch.save({"foo": torch.arange(100)}, path)
        content = path.read_bytes()[:60]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"bad\.pt is (truncated|corrupt)"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="not a file"):
        load_checkpoint(tmp_path)


def _trainer(tmp_path: Path, model: nn.Module | None = None) -> Trainer:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(16, 4), torch.arange(16) % 3)
    model = model or nn.Linear(4, 3)
    optimizer = build_optimizer(model, lr=0.1, weight_decay=0.05)
    return Trainer(
        model=model, optimizer=optimizer, schedule=WarmupCosineSchedule(optimizer, 0.1, 2, warmup_epochs=1),
        criterion=PerSampleCrossEntropy(), device=torch.device("cpu"), output_dir=tmp_path,
        train_loader=DataLoader(IndexedDataset(data), batch_size=8, sampler=ShardedIndexSampler(torch.arange(16))),
        test_loader=DataLoader(data, batch_size=8),
    )


def test_resume_refuses_foreign_old_and_mismatched_checkpoints(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path / "run")
    trainer.fit(1)
    good = tmp_path / "run" / "checkpoint.pt"
    checkpoint = torch.load(good, weights_only=True)  # everything in it is weights-only loadable
    assert checkpoint["version"] == CHECKPOINT_VERSION and "selector" not in checkpoint
    torch.save({"foo": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match=r"foreign\.pt is not a training checkpoint .*lacks version"):
        _trainer(tmp_path / "a").resume(tmp_path / "foreign.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"list\.pt holds a list"):
        _trainer(tmp_path / "a").resume(tmp_path / "list.pt")
    torch.save({**checkpoint, "version": 1}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"old\.pt has format version 1"):
        _trainer(tmp_path / "a").resume(tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"checkpoint\.pt does not fit this run"):
        _trainer(tmp_path / "b", model=nn.Linear(4, 5)).resume(good)
    resumed = _trainer(tmp_path / "c")
    resumed.resume(good)
    assert resumed.start_epoch == 1
