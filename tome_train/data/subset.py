"""Subsets of a data set: the fixed random subset behind ``--limit-train``, and index files
(a chosen subset of a training set, as the coreset and selection tools write them).

Index file formats: a ``torch.save``'d 1-D integer tensor, or a dict holding one under
``"indices"`` (loaded with ``weights_only=True``: a file cannot run code); a ``.npy``
integer array (no pickles); a ``.txt`` file of integers separated by white space or commas.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_save

__all__ = ["fixed_subset", "load_indices", "save_indices"]


def fixed_subset(size: int, count: int) -> list[int]:
    """``count`` of ``size`` indices (sorted), drawn at random with a fixed seed that is not
    the run's, so that every run and variant sees the same subset (``--limit-train``,
    ``--limit-test``). Not the first ``count``: data sets stored sorted by class (the
    CIFAR-10 npz is) would lose most classes."""
    generator = torch.Generator().manual_seed(0)
    return sorted(torch.randperm(size, generator=generator)[:count].tolist())


def _read(path: Path, arg: str) -> torch.Tensor:
    suffix = path.suffix.lower()
    if suffix == ".txt":
        text = path.read_text().replace(",", " ").split()
        try:
            return torch.tensor([int(t) for t in text], dtype=torch.long)
        except ValueError:
            raise ValueError(f"{arg} {path}: expected integers separated by white space or commas") from None
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"{arg} {path}: not a plain .npy array ({err})") from None
        if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
            raise ValueError(f"{arg} {path}: expected an array of integers, got dtype {array.dtype}")
        return torch.from_numpy(np.ascontiguousarray(array))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle / zip errors of a damaged or foreign file
        raise ValueError(f"{arg} {path}: not a torch.save'd index tensor ({type(err).__name__}); "
                         "use a LongTensor, a dict with 'indices', .npy or .txt") from None
    if isinstance(obj, dict):
        if "indices" not in obj:
            raise ValueError(f"{arg} {path}: the dict has no 'indices' key (keys: {sorted(map(str, obj))})")
        obj = obj["indices"]
    if not isinstance(obj, torch.Tensor):
        raise ValueError(f"{arg} {path}: expected a tensor of indices, got {type(obj).__name__}")
    return obj


def load_indices(path: str | Path, num_samples: int, arg: str = "subset") -> torch.Tensor:
    """Read an index file and check it against a data set of ``num_samples`` items.

    Returns the indices as a sorted 1-D LongTensor. Raises ``FileNotFoundError`` or a
    ``ValueError`` naming ``arg`` when the file is unreadable, empty, not integral,
    out of ``[0, num_samples)`` or repeats an index.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{arg} {path}: no such file")
    indices = _read(path, arg)
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise ValueError(f"{arg} {path}: indices must be integers, got {indices.dtype}")
    indices = indices.reshape(-1) if indices.ndim == 2 and 1 in indices.shape else indices
    if indices.ndim != 1:
        raise ValueError(f"{arg} {path}: indices must be 1-D, got shape {tuple(indices.shape)}")
    if indices.numel() == 0:
        raise ValueError(f"{arg} {path}: holds no index")
    indices = indices.long()
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= num_samples:
        raise ValueError(f"{arg} {path}: indices must be in [0, {num_samples - 1}] (the training set "
                         f"has {num_samples} examples), got min {low}, max {high}")
    unique = torch.unique(indices)
    if unique.numel() != indices.numel():
        raise ValueError(f"{arg} {path}: {indices.numel() - unique.numel()} repeated indices "
                         "(each example at most once)")
    return unique  # sorted


def save_indices(indices: torch.Tensor | np.ndarray | list[int], path: str | Path) -> None:
    """Write indices as ``{"indices": LongTensor}`` atomically (what :func:`load_indices` reads).

    Raises ``ValueError`` for non-integer values (no silent truncation), negative or repeated indices."""
    array = np.asarray(indices.detach().cpu() if isinstance(indices, torch.Tensor) else indices).reshape(-1)
    if array.size and not (np.issubdtype(array.dtype, np.integer)
                           or (np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0))):
        raise ValueError(f"indices: expected integers, got dtype {array.dtype}")
    values = torch.as_tensor(array.astype(np.int64))
    if values.numel() and int(values.min()) < 0:
        raise ValueError(f"indices: expected non-negative integers, got min {int(values.min())}")
    if torch.unique(values).numel() != values.numel():
        raise ValueError("indices: each index at most once, got repeats")
    atomic_save({"indices": values}, path)
