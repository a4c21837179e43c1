"""Overhead benchmark of the example-level bookkeeping.

The forgetting bookkeeping should cost under 1% of a training step. This measures
``ExampleSelector.update`` per batch (indices on the host as a DataLoader yields them,
predictions on the training device), the epoch-end merge + swap and one pass of the
sampler, and optionally a reference training step of a timm model on the same device, so
that ``overhead_pct = update / step`` can be read directly.

    python -m tome_train.selection.bench --device cuda --reference-model deit_small_patch16_224
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Callable

import torch

from ..timing import synchronize
from .sampler import ActiveSetSampler
from .selector import ExampleSelector

__all__ = ["tracker_overhead"]


def _time(fn: Callable[[], None], device: torch.device, iters: int, repeats: int = 3) -> float:
    """Median over ``repeats`` of the mean seconds per call of ``fn``."""
    runs = []
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        synchronize(device)
        runs.append((time.perf_counter() - t0) / iters)
    return statistics.median(runs)


def _reference_step_s(
    model_name: str, batch: int, img_size: int | None, device: torch.device, iters: int
) -> float:
    from ..models import create_model

    model = create_model(model_name, img_size=img_size, num_classes=100).to(device).train()
    chans, _, default_size = model.default_cfg["input_size"]
    size = img_size or default_size
    x = torch.randn(batch, chans, size, size, device=device)
    y = torch.randint(0, 100, (batch,), device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(2):  # warm-up
        step()
    return _time(step, device, iters, repeats=1)


def tracker_overhead(
    num_samples: int = 50000,
    batch: int = 128,
    iters: int = 200,
    device: torch.device | str = "cpu",
    reference_model: str | None = None,
    reference_img_size: int | None = None,
    reference_iters: int = 5,
) -> dict[str, Any]:
    """Time the selection bookkeeping; returns a JSON-able dict.

    Keys: ``update_us`` (per ``selector.update`` call, batch of ``batch``, mean over
    ``update_iters`` calls), ``end_epoch_ms`` (merge + swap), ``sampler_epoch_ms`` (one full
    pass of ``ActiveSetSampler``) and, with ``reference_model``, ``step_ms`` of a
    forward/backward/AdamW step (``step_iters`` steps) and ``overhead_pct``.
    """
    dev = torch.device(device)
    sel = ExampleSelector(num_samples, data_keep=0.8, swap_fraction=0.1, seed=0, device=dev)
    sampler = ActiveSetSampler(sel, num_replicas=1, rank=0)
    order = torch.tensor(list(sampler), dtype=torch.long)
    n_batches = max(1, order.numel() // batch)
    batches = [order[i * batch : (i + 1) * batch] for i in range(n_batches)]
    g = torch.Generator().manual_seed(0)
    correct = (torch.rand(n_batches, batch, generator=g) < 0.7).to(dev)
    step = [0]

    def update() -> None:
        i = step[0] % n_batches
        sel.update(batches[i], correct[i, : batches[i].numel()])
        step[0] += 1

    for _ in range(10):  # warm-up (allocator, kernels)
        update()
    update_s = _time(update, dev, iters)
    epoch = [0]

    def end_epoch() -> None:
        sel.end_epoch(epoch[0])
        epoch[0] += 1

    end_epoch()  # warm-up
    end_epoch_s = _time(end_epoch, dev, 1)
    sampler_s = _time(lambda: list(sampler), dev, 1)
    result: dict[str, Any] = {
        "device": str(dev),
        "num_samples": num_samples,
        "batch": batch,
        "update_iters": iters,  # timed selector.update calls
        "threads": torch.get_num_threads(),
        "update_us": round(update_s * 1e6, 2),
        "end_epoch_ms": round(end_epoch_s * 1e3, 3),
        "sampler_epoch_ms": round(sampler_s * 1e3, 3),
        "swaps": sel.swaps,
    }
    if reference_model:
        step_s = _reference_step_s(reference_model, batch, reference_img_size, dev, reference_iters)
        result.update(
            reference_model=reference_model,
            reference_img_size=reference_img_size,
            step_ms=round(step_s * 1e3, 3),
            step_iters=reference_iters,  # timed training steps of reference_model
            overhead_pct=round(100.0 * update_s / step_s, 4),
        )
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-samples", type=int, default=50000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--device", default="cpu")
    p.add_argument("--reference-model", default=None)
    p.add_argument("--reference-img-size", type=int, default=None)
    p.add_argument("--reference-iters", type=int, default=5)
    a = p.parse_args(argv)
    print(json.dumps(tracker_overhead(
        a.num_samples, a.batch, a.iters, a.device, a.reference_model, a.reference_img_size,
        a.reference_iters,
    ), indent=2))


if __name__ == "__main__":
    main()
