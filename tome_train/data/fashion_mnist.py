"""Fashion-MNIST read straight from the official idx ``.gz`` files (no torchvision download).

Accepted layouts for ``data_path``:
  * a folder holding ``train-images-idx3-ubyte.gz`` and friends (as in
    ``../shared/data/fashion-mnist`` or Debian's ``dataset-fashion-mnist``);
  * a torchvision root with ``FashionMNIST/raw/`` (gzipped or not).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import BUILTIN_TENSOR_DEFAULTS, TENSOR, Augmentation
from .tensor_dataset import TensorImageDataset, match_channels, resize_images

NUM_CLASSES = 10
MEAN, STD = 0.2860, 0.3530
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (optionally gzipped): magic, dims, then big-endian uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an idx file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4).astype(np.int64)
    expected = int(np.prod(dims))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != expected:
        raise ValueError(f"{path}: header says {expected} values, file holds {data.size}")
    return data.reshape(tuple(int(d) for d in dims))


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _locate(data_path: Path, split: str) -> tuple[Path, Path]:
    if not data_path.exists():
        raise FileNotFoundError(f"data_path: the Fashion-MNIST folder {data_path} does not exist")
    stems = _FILES[split]
    for folder in (data_path, data_path / "FashionMNIST" / "raw", data_path / "raw"):
        found = [_find(folder, stem) for stem in stems]
        if all(found):
            return found[0], found[1]  # type: ignore[return-value]
    raise FileNotFoundError(
        f"Fashion-MNIST: expected {stems[0]}[.gz] and {stems[1]}[.gz] in {data_path} "
        f"or {data_path / 'FashionMNIST' / 'raw'}"
    )


def build_fashion_mnist(
    data_path: str | Path, split: str, img_size: int = 32, in_chans: int = 1, augment: bool = False,
    augmentation: Augmentation | None = None,
) -> Dataset:
    """Decode once to a uint8 tensor, resized (bilinear) to ``img_size`` at load time.

    Training augmentation: random crop with 4 px zero padding and horizontal flips,
    unless ``augmentation`` says otherwise.
    """
    aug = (augmentation or Augmentation()).resolve(TENSOR, BUILTIN_TENSOR_DEFAULTS["fashion-mnist"])
    images_path, labels_path = _locate(Path(data_path), split)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Fashion-MNIST: {images_path} / {labels_path} shapes {images.shape} / {labels.shape} "
            "do not match (expected N x 28 x 28 images and N labels)"
        )
    tensor = torch.from_numpy(images.copy()).unsqueeze(1)
    tensor = match_channels(resize_images(tensor, img_size), in_chans)
    return TensorImageDataset(
        tensor.contiguous(),
        torch.from_numpy(labels.astype(np.int64)),
        mean=[MEAN] * in_chans,
        std=[STD] * in_chans,
        augment=augment,
        padding=aug.crop_pad,  # type: ignore[arg-type]
        hflip=aug.hflip,  # type: ignore[arg-type]
        vflip=aug.vflip,  # type: ignore[arg-type]
    )
