"""Wrap any map-style dataset so items carry their index.

Example-level pruning (the forgetting tracker / selector) keeps per-example
statistics, so every training batch must say *which* examples it holds. Wrapping
instead of editing each data set keeps the data modules independent of that need.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset


class IndexedDataset(Dataset):
    """Items are ``(image, label, index)`` where ``index`` is the position in ``dataset``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        image, label = self.dataset[index]
        return image, label, index

    @property
    def targets(self) -> torch.Tensor:
        """Labels of the wrapped data set (as a tensor), when it exposes them."""
        return torch.as_tensor(self.dataset.targets)  # type: ignore[attr-defined]
