"""Sampler over a fixed index set, sharded across ranks, ordered by ``(seed, epoch)``.

Used when the selector is off: all training examples, or a fixed random subset
(the random-pruning baseline). Like the selector's ``ActiveSetSampler`` it does not
pad shards to equal length (no example is seen twice per epoch), so the DDP loop
runs under ``model.join()``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from ..distributed import epoch_seed


class ShardedIndexSampler(Sampler[int]):
    """Each index once per epoch across ranks; a fresh permutation per epoch from ``(seed, epoch)``."""

    def __init__(
        self,
        indices: Sequence[int] | torch.Tensor,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        self.indices = torch.as_tensor(indices, dtype=torch.long).clone()
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        order = self.indices
        if self.shuffle:
            generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            order = order[torch.randperm(len(order), generator=generator)]
        return iter(order[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return len(range(self.rank, len(self.indices), self.num_replicas))


def random_subset(num_samples: int, fraction: float, seed: int) -> torch.Tensor:
    """A fixed, sorted random subset of ``round(fraction * num_samples)`` indices (at least 1)."""
    count = max(1, int(round(fraction * num_samples)))
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(num_samples, generator=generator)[:count].sort().values


def index_digest(indices: torch.Tensor | Sequence[int]) -> str:
    """sha256 hex digest of the sorted indices as int64 little-endian bytes.

    Same convention as ``ExampleSelector.digest``, so runs with the selector off
    (all examples, or a fixed random subset) compare with selector runs.
    """
    array = np.sort(np.asarray(torch.as_tensor(indices).cpu(), dtype=np.int64)).astype("<i8")
    return hashlib.sha256(array.tobytes()).hexdigest()
