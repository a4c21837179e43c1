"""Distributed sampler over the selector's active set.

Why: ``torch.utils.data.DistributedSampler`` pads the index list with duplicates so all
ranks get equally many samples; those duplicates would be presented twice per epoch and
bias the forgetting statistics. This sampler presents each active example exactly once per
epoch across all ranks: the shards differ in length by at most one, so the training loop
must tolerate uneven inputs (the engine wraps its DDP loop in ``join()``).

The order is a permutation drawn from ``(seed, epoch)`` and is identical on all ranks; rank
``r`` takes positions ``r, r + num_replicas, ...``. The active set is read from the
selector when iteration starts, so swaps made at the end of an epoch apply to the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Sampler

from .. import distributed as tdist
from ..distributed import epoch_seed

__all__ = ["ActiveSetSampler"]


class ActiveSetSampler(Sampler[int]):
    """Yields this rank's shard of the selector's active examples, each exactly once per epoch.

    Args:
        selector: the ``ExampleSelector`` or data policy whose ``active_indices`` (sorted CPU
            LongTensor) and ``active_count`` are sampled, read when iteration starts.
        num_replicas: number of ranks; default: the world size (1 when not distributed).
        rank: this rank; default: the process-group rank (0 when not distributed).
        shuffle: shuffle by ``(seed, epoch)``; otherwise ascending index order.
        seed: shuffle seed, shared by all ranks.
    """

    def __init__(
        self,
        selector: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        if not (hasattr(selector, "active_indices") and hasattr(selector, "active_count")):
            raise ValueError(
                f"selector must have active_indices and active_count, got {type(selector).__name__}"
            )
        if num_replicas is None:
            num_replicas = tdist.world_size()
        if rank is None:
            rank = tdist.rank()
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"num_replicas must be an int >= 1, got {num_replicas!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be an int in [0, {num_replicas - 1}], got {rank!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        self.selector = selector
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle order of ``epoch`` (call before each epoch, on every rank)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
        self.epoch = epoch

    def _shard(self) -> torch.Tensor:
        active = self.selector.active_indices
        if self.shuffle:
            g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            active = active[torch.randperm(active.numel(), generator=g)]
        return active[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self._shard().tolist())

    def __len__(self) -> int:
        n = self.selector.active_count
        return max(0, (n - self.rank + self.num_replicas - 1) // self.num_replicas)
