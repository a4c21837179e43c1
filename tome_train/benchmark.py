"""Throughput benchmarks: dense vs patched ViT, measured interleaved in one process.

Timing A then B on a shared, noisy 2-core machine measures the machine as much as the
model. We alternate A B A B ... after warm-up and compare medians, so slow periods
hit both sides alike.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .timing import synchronize


def make_step(
    model: nn.Module, mode: str, batch: torch.Tensor, target: torch.Tensor, amp: bool = False
) -> Callable[[], None]:
    """A closure running one inference forward or one full training step."""
    if mode == "infer":
        model.eval()

        def infer() -> None:
            with torch.inference_mode(), torch.autocast(batch.device.type, torch.bfloat16, enabled=amp):
                model(batch)

        return infer
    if mode != "train":
        raise ValueError(f"mode must be 'train' or 'infer', got {mode!r}")
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = nn.CrossEntropyLoss()

    def train() -> None:
        with torch.autocast(batch.device.type, torch.bfloat16, enabled=amp):
            loss = loss_fn(model(batch), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return train


def interleaved_times(
    steps: dict[str, Callable[[], None]], warmup: int, iters: int, device: torch.device
) -> dict[str, list[float]]:
    """Run each step ``warmup`` times, then ``iters`` rounds of A B A B ...; seconds per call."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for i in range(iters):
        # Alternate which side goes first, so neither always follows the other.
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            synchronize(device)
            t0 = time.perf_counter()
            steps[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - t0)
    return times


def benchmark_models(
    dense: nn.Module,
    sparse: nn.Module,
    mode: str,
    batch_size: int,
    input_size: tuple[int, int, int],
    num_classes: int,
    device: torch.device,
    warmup: int = 2,
    iters: int = 6,
    amp: bool = False,
) -> dict[str, Any]:
    """Images/s of ``dense`` and ``sparse`` (same weights), measured interleaved."""
    gen = torch.Generator().manual_seed(0)
    batch = torch.randn(batch_size, *input_size, generator=gen).to(device)
    target = torch.randint(0, num_classes, (batch_size,), generator=gen).to(device)
    steps = {
        "dense": make_step(dense, mode, batch, target, amp),
        "sparse": make_step(sparse, mode, batch, target, amp),
    }
    times = interleaved_times(steps, warmup, iters, device)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "dense_images_per_s": batch_size / med["dense"],
        "sparse_images_per_s": batch_size / med["sparse"],
        "dense_step_s": med["dense"],
        "sparse_step_s": med["sparse"],
        "speedup": med["dense"] / med["sparse"],
        "step_s_all": {k: [round(t, 4) for t in v] for k, v in times.items()},
    }


def clone_model(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)
