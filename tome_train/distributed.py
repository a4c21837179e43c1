"""Small torch.distributed helpers that degrade to no-ops in a single process.

The example-level selection (``tome_train.selection``) must give identical decisions on
every rank, so its statistics are merged with an all-reduce at each epoch end. These helpers
keep that code free of ``if dist.is_available() and dist.is_initialized()`` boilerplate and
make the single-process path (tests, CPU demos) identical to world size 1.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["is_dist", "rank", "world_size", "all_reduce_sum_"]


def is_dist() -> bool:
    """True when torch.distributed is available and a default process group exists."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the default group; 0 when not distributed."""
    return dist.get_rank() if is_dist() else 0


def world_size() -> int:
    """Number of processes in the default group; 1 when not distributed."""
    return dist.get_world_size() if is_dist() else 1


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` in place across all ranks and return it; identity when not distributed.

    The tensor must live where the backend expects it (CPU for gloo, CUDA for NCCL) and have
    a dtype the backend can sum (use an integer dtype rather than bool).
    """
    if is_dist() and world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def epoch_seed(seed: int, epoch: int) -> int:
    """Shuffling seed for ``(seed, epoch)``. Not ``seed + epoch``: that would give seed s at
    epoch e + 1 the order of seed s + 1 at epoch e, correlating multi-seed runs."""
    return (int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1)
