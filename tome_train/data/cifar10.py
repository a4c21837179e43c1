"""CIFAR-10 from a torchvision root or from the JPEG npz of ``../shared/data/cifar10-jpeg``.

Accepted ``data_path``:
  * a ``.npz`` file with ``{split}_jpeg``, ``{split}_offsets``, ``{split}_labels``
    (see ``shared/data/README.md``), or a folder holding ``cifar10-jpeg.npz``;
  * a torchvision root holding ``cifar-10-batches-py/`` (read with ``download=False``).

JPEG decoding takes seconds, so each split is decoded once per process into a uint8
tensor and cached in memory (keyed by path, split and file mtime).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import BUILTIN_TENSOR_DEFAULTS, TENSOR, Augmentation
from .tensor_dataset import TensorImageDataset, match_channels, resize_images

NUM_CLASSES = 10
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
NPZ_NAME = "cifar10-jpeg.npz"
_CACHE: dict[tuple[str, str, float], tuple[torch.Tensor, torch.Tensor]] = {}


def _decode_npz(path: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image

    with np.load(path) as archive:
        keys = (f"{split}_jpeg", f"{split}_offsets", f"{split}_labels")
        missing = [key for key in keys if key not in archive.files]
        if missing:
            raise ValueError(f"CIFAR-10 npz {path}: missing arrays {missing} (expected {list(keys)})")
        blob, offsets, labels = (archive[key] for key in keys)
    if offsets.shape[0] != labels.shape[0] + 1:
        raise ValueError(f"CIFAR-10 npz {path}: {split}_offsets must have len(labels) + 1 entries")
    images = np.empty((labels.shape[0], 32, 32, 3), dtype=np.uint8)
    for i in range(labels.shape[0]):
        data = blob[offsets[i] : offsets[i + 1]].tobytes()
        with Image.open(io.BytesIO(data)) as image:
            images[i] = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(
        labels.astype(np.int64)
    )


def _read_torchvision(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import CIFAR10

    try:
        dataset = CIFAR10(str(root), train=split == "train", download=False)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        raise ValueError(f"CIFAR-10 root {root}: {err}") from err
    images = torch.from_numpy(np.asarray(dataset.data)).permute(0, 3, 1, 2).contiguous()
    return images, torch.as_tensor(dataset.targets, dtype=torch.long)


def load_cifar10_arrays(data_path: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(uint8 N x 3 x 32 x 32 images, int64 labels)`` for ``split`` (cached)."""
    path = Path(data_path)
    if not path.exists():
        raise FileNotFoundError(f"data_path: the CIFAR-10 file or folder {path} does not exist")
    if path.is_dir() and (path / NPZ_NAME).is_file():
        path = path / NPZ_NAME
    if path.is_file():
        if path.suffix != ".npz":
            raise ValueError(f"CIFAR-10 path {path}: expected a .npz file or a folder")
        reader = _decode_npz
    elif (path / "cifar-10-batches-py").is_dir():
        reader = _read_torchvision
    else:
        raise FileNotFoundError(
            f"CIFAR-10: {path} holds neither {NPZ_NAME} nor a torchvision 'cifar-10-batches-py/'"
        )
    key = (str(path.resolve()), split, path.stat().st_mtime)
    if key not in _CACHE:
        _CACHE[key] = reader(path, split)
    return _CACHE[key]


def build_cifar10(
    data_path: str | Path, split: str, img_size: int = 32, in_chans: int = 3, augment: bool = False,
    augmentation: Augmentation | None = None,
) -> Dataset:
    """CIFAR-10 as an in-memory tensor data set (when ``augment``: random crop with 4 px
    zero padding and horizontal flips, unless ``augmentation`` says otherwise)."""
    aug = (augmentation or Augmentation()).resolve(TENSOR, BUILTIN_TENSOR_DEFAULTS["cifar10"])
    images, labels = load_cifar10_arrays(data_path, split)
    images = match_channels(resize_images(images, img_size), in_chans)
    mean = MEAN if in_chans == 3 else (sum(MEAN) / 3,) * in_chans
    std = STD if in_chans == 3 else (sum(STD) / 3,) * in_chans
    return TensorImageDataset(images, labels, mean=mean, std=std, augment=augment, padding=aug.crop_pad,  # type: ignore[arg-type]
                              hflip=aug.hflip, vflip=aug.vflip)  # type: ignore[arg-type]
