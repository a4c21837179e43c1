"""Worker: time our condensation iterations (one process per run), for the reference benchmark.

``python -m tome_train.cli.condense_reference_ours --method dm --ipc 10 --iterations 10
--data-path P --threads 1`` builds the condenser as ``tools/condense.py`` does (Fashion-MNIST
at 28x28, ``convnet3``, initialisation from real images, the method's published
configuration) and times each ``step`` alone: data loading, set-up and evaluation are
outside the timed region. Prints one JSON line with the per-iteration seconds.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from ..allocator import tune_cpu_allocator


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--method", required=True)
    p.add_argument("--ipc", type=int, required=True)
    p.add_argument("--iterations", type=int, required=True)
    p.add_argument("--data-path", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p


def time_steps(method: str, ipc: int, iterations: int, data_path: str, seed: int = 0) -> list[float]:
    """Seconds of each of ``iterations`` condensation steps on Fashion-MNIST."""
    from ..condense import RealPool, get_method
    from ..data import build_dataset

    train, num_classes = build_dataset("fashion-mnist", data_path, "train", 28, 1, augment=False)
    condenser = get_method(method)(RealPool.from_dataset(train, num_classes), ipc, model="convnet3",
                                   init="real", seed=seed)
    seconds = []
    for iteration in range(iterations):
        start = time.perf_counter()
        condenser.history.append(float(condenser.step(iteration)))
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tuned = tune_cpu_allocator()  # as tools/condense.py runs
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    seconds = time_steps(args.method, args.ipc, args.iterations, args.data_path, args.seed)
    print(json.dumps({"seconds": seconds, "process_s": time.perf_counter() - start,
                      "torch_threads": torch.get_num_threads(),
                      "cpu_allocator_tuned": tuned}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
