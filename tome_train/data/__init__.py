"""Data sets for training and evaluation (see :func:`build_dataset`)."""

from .augment import Augmentation
from .indexed import IndexedDataset
from .registry import DATASETS, build_dataset, default_in_chans, resolve_augmentation, skipped_files
from .subset import fixed_subset, load_indices, save_indices

__all__ = ["DATASETS", "Augmentation", "IndexedDataset", "build_dataset", "default_in_chans", "fixed_subset",
           "load_indices", "resolve_augmentation", "save_indices", "skipped_files"]
