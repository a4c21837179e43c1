"""Speed and peak memory of the feature-space coreset methods (``tools/benchmark.py --coreset``).

Each measurement runs in a fresh process, so one method's allocations cannot hide
another's peak: the extra peak is the growth of the child's maximum resident set
during ``select`` alone, after the features are in memory and after a tiny warm-up
call has paged in torch's kernels.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import torch

# How each benchmarked method is called: per class (as the condensation papers use
# herding) or class-agnostic (k-center as Sener & Savarese define it).
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "herding": ("herding", {"balance": True}),
    "kcenter": ("kcenter", {}),
    "herding_no_labels": ("herding", {"no_labels": True}),
    "kcenter_per_class": ("kcenter", {"balance": True}),
    "random": ("random", {"balance": True}),
}


def _measure(case: str, num: int, dim: int, budget: int, classes: int, threads: int) -> dict[str, float]:
    from . import select

    if threads:
        torch.set_num_threads(threads)
    method, kwargs = CASES[case]
    kwargs = dict(kwargs)
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(num, dim, generator=generator)
    labels = None if kwargs.pop("no_labels", False) else torch.randint(0, classes, (num,), generator=generator)
    # Warm-up on a tiny problem: the first call pages in torch's kernels, which would
    # otherwise count as the method's memory.
    small = min(num, 64)
    select(method, min(budget, 8), features=features[:small].clone(),
           labels=None if labels is None else torch.arange(small) % classes, seed=0, **kwargs)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    indices = select(method, budget, features=features, labels=labels, seed=0, **kwargs)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if indices.numel() != budget:
        raise RuntimeError(f"{case}: {indices.numel()} indices, wanted {budget}")
    return {"seconds": seconds, "extra_peak_mb": (after - before) / 1024}  # ru_maxrss is in KiB on Linux


def coreset_benchmark(
    methods: tuple[str, ...] = ("herding", "kcenter"),
    num: int = 50000,
    dim: int = 512,
    budget: int = 5000,
    classes: int = 10,
    repeats: int = 3,
    threads: int = 0,
    fresh_process: bool = True,
) -> dict[str, Any]:
    """Seconds (each repeat, and the best) and extra peak memory of ``select`` per method.

    ``fresh_process=False`` measures in this process (quick, but the memory figure then
    only shows growth beyond this process's earlier peak)."""
    unknown = [m for m in methods if m not in CASES]
    if unknown:
        raise ValueError(f"methods: unknown {unknown}; choose from {', '.join(CASES)}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    results: dict[str, Any] = {}
    for case in methods:
        runs = []
        for _ in range(repeats):
            if not fresh_process:
                runs.append(_measure(case, num, dim, budget, classes, threads))
                continue
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                runs.append(pool.submit(_measure, case, num, dim, budget, classes, threads).result())
        seconds = [r["seconds"] for r in runs]
        results[case] = {
            "seconds": [round(s, 3) for s in seconds],
            "best_s": round(min(seconds), 3),
            "median_s": round(statistics.median(seconds), 3),
            "extra_peak_mb": round(max(r["extra_peak_mb"] for r in runs), 1),
        }
    return {
        "num": num, "dim": dim, "budget": budget, "classes": classes, "repeats": repeats,
        "threads": threads or torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2), "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(), "methods": results,
    }
