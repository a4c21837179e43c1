"""The evaluation protocol: train fresh networks on a (synthetic) set, test on the full test set.

Training goes through the project's one engine (:class:`tome_train.engine.Trainer`,
per-sample cross-entropy, hooks). The recipe is the condensation papers': SGD with
momentum 0.9, weight decay 5e-4, learning rate 0.01 divided by 10 at half of the
epochs (:class:`StepSchedule`), batch 256, and -- for DSA, DM, CAFE and IDM -- DSA
augmentation with independent draws per image. Top-1 is measured once, after the
last epoch, on the whole test set; the mean and (population) standard deviation over
``models`` networks initialised under different seeds are reported. Training cost is
recorded by the engine's FLOPs ledger hook.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from tome_train.engine import PerSampleCrossEntropy, Trainer
from tome_train.flops import TrainingFlopsLedger
from tome_train.flops.hook import FlopsLedgerHook

from .augment import DiffAugment
from .networks import build_network, next_seed


class StepSchedule:
    """``lr`` until ``epochs // 2``, then ``lr * factor`` (the papers' single step decay).

    Same interface as the engine's schedules: ``step(epoch, index, steps)`` sets the LR.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, lr: float, epochs: int, factor: float = 0.1) -> None:
        self.optimizer = optimizer
        self.lr = lr
        self.milestone = epochs // 2
        self.factor = factor
        self.num_updates = 0

    def lr_at(self, epoch: int) -> float:
        return self.lr * (self.factor if epoch >= self.milestone else 1.0)

    def step(self, epoch: int, index: int, steps_in_epoch: int) -> float:
        value = self.lr_at(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = value
        self.num_updates += 1
        return value

    def state_dict(self) -> dict[str, int]:
        return {"num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.num_updates = int(state["num_updates"])


class _FinalTestTrainer(Trainer):
    """The engine's trainer, testing only after the last epoch and printing nothing per epoch."""

    def evaluate(self) -> dict[str, float]:
        if self.state.epoch + 1 < self.state.epochs:
            return {}
        return super().evaluate()

    def _log(self, row: dict[str, Any]) -> None:
        pass


@dataclass(frozen=True)
class EvalProtocol:
    """How a set is evaluated (the papers' defaults except ``epochs``, see the tool)."""

    model: str = "convnet3"
    epochs: int = 300
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    augment: str | None = None  # a DSA strategy, or None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"evaluation needs epochs >= 1, batch_size >= 1, lr > 0; got {self.epochs}, "
                             f"{self.batch_size}, {self.lr}")


def train_and_test(
    images: torch.Tensor, labels: torch.Tensor, test: TensorDataset, num_classes: int,
    protocol: EvalProtocol, seed: int, device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Train one fresh ``protocol.model`` on ``(images, labels)``; top-1 on ``test`` after the last epoch."""
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    model = build_network(protocol.model, num_classes, tuple(images.shape[1:]), next_seed(generator),
                          device, need_features=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=protocol.lr, momentum=protocol.momentum,
                                weight_decay=protocol.weight_decay)
    indices = torch.arange(images.shape[0])
    loader = DataLoader(TensorDataset(images.detach().cpu(), labels.cpu(), indices),
                        batch_size=protocol.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(next_seed(generator)))
    test_loader = DataLoader(test, batch_size=1000)
    augment = DiffAugment(protocol.augment)
    aug_generator = torch.Generator().manual_seed(next_seed(generator))

    def augment_batch(batch: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return augment(batch, aug_generator), targets

    ledger = TrainingFlopsLedger()
    trainer = _FinalTestTrainer(
        model=model, optimizer=optimizer, schedule=StepSchedule(optimizer, protocol.lr, protocol.epochs),
        criterion=PerSampleCrossEntropy(), train_loader=loader, test_loader=test_loader, device=device,
        hooks=[FlopsLedgerHook(ledger, tuple(images.shape[1:]))],
        mixup_fn=augment_batch if augment else None, amp=False,
    )
    start = time.perf_counter()
    history = trainer.fit(protocol.epochs)
    return {"top1": float(history[-1]["top1"]), "train_top1": float(history[-1]["train_top1"]),
            "seconds": time.perf_counter() - start, "train_gflops": ledger.totals()["train_gflops"],
            "forward_gflops_per_sample": ledger.rows[-1]["forward_gflops_per_sample"]}


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and population standard deviation (as the papers report them)."""
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def evaluate_set(
    images: torch.Tensor, labels: torch.Tensor, test: TensorDataset, num_classes: int,
    protocol: EvalProtocol, models: int, seed: int, device: torch.device | str = "cpu",
    label: str = "synthetic",
) -> dict[str, Any]:
    """Train ``models`` fresh networks (seeds derived from ``seed``) and summarise their top-1."""
    if models < 1:
        raise ValueError(f"--eval-models must be >= 1, got {models}")
    generator = torch.Generator().manual_seed(seed)
    runs = []
    for index in range(models):
        run = train_and_test(images, labels, test, num_classes, protocol, next_seed(generator), device)
        runs.append(run)
        print(f"eval {label} {protocol.model} {index + 1}/{models}: top1 {run['top1']:.2f} "
              f"({run['seconds']:.0f} s)", flush=True)
    top1 = [r["top1"] for r in runs]
    mean, std = mean_std(top1)
    return {"model": protocol.model, "top1": top1, "top1_mean": mean, "top1_std": std,
            "seconds": sum(r["seconds"] for r in runs),
            "train_gflops_per_model": sum(r["train_gflops"] for r in runs) / models,
            "forward_gflops_per_sample": runs[0]["forward_gflops_per_sample"],
            "train_samples_per_model": int(images.shape[0]) * protocol.epochs}
