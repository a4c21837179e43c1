"""Data sets for training and evaluation (see :func:`build_dataset`)."""

from .indexed import IndexedDataset
from .registry import DATASETS, build_dataset, default_in_chans
from .subset import load_indices, save_indices

__all__ = ["DATASETS", "IndexedDataset", "build_dataset", "default_in_chans", "load_indices", "save_indices"]
