"""Decode a small-image folder split once into a uint8 tensor (the in-memory pipeline).

Decoding every file is also the complete check of the split: a file that fails to
decode is left out and reported, so training never meets it. The result is cached
per process, keyed by folder, size, mode and the folder listing, so ``compare.py``
(several trainings in one process) and the test split (which needs the training
split's statistics) decode each split once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .folder_scan import read_errors
from .tensor_dataset import resize_images


class DecodedSplit:
    """Images ``N x C x S x S`` (uint8), labels, and the files that did not decode."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, paths: list[str],
                 unreadable: list[tuple[str, str]]) -> None:
        self.images = images
        self.labels = labels
        self.paths = paths
        self.unreadable = unreadable


_CACHE: dict[tuple, DecodedSplit] = {}


def image_to_uint8(image, img_size: int) -> torch.Tensor:  # noqa: ANN001 - PIL image
    """A converted PIL image as a ``C x S x S`` uint8 tensor, resized (bilinear) exactly as
    the built-in loaders resize their tensors (:func:`resize_images`)."""
    tensor = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
    tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return resize_images(tensor.unsqueeze(0), img_size)[0]


def decode_image(path: str, mode: str, img_size: int) -> torch.Tensor:
    """One file, converted to PIL ``mode`` ("L" or "RGB"), as a ``C x S x S`` uint8 tensor."""
    from PIL import Image

    with Image.open(path) as image:
        return image_to_uint8(image.convert(mode), img_size)


def decode_split(samples: list[tuple[str, int]], mode: str, img_size: int) -> DecodedSplit:
    """Decode ``samples`` (``(path, label)``), leaving out and recording files that fail."""
    key = (tuple(samples), mode, img_size)
    if key in _CACHE:
        return _CACHE[key]
    channels = 1 if mode == "L" else 3
    images = torch.empty((len(samples), channels, img_size, img_size), dtype=torch.uint8)
    labels, paths, unreadable = [], [], []
    errors = read_errors()
    for path, label in samples:
        try:
            images[len(labels)] = decode_image(path, mode, img_size)
        except errors as err:
            unreadable.append((path, f"{type(err).__name__}: {err}"))
            continue
        labels.append(label)
        paths.append(path)
    decoded = DecodedSplit(images[: len(labels)].clone() if unreadable else images,
                           torch.as_tensor(labels, dtype=torch.long), paths, unreadable)
    _CACHE[key] = decoded
    return decoded


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 images, in [0, 1] units."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk].to(torch.float64).div_(255.0)
        total += part.sum(dim=(0, 2, 3))
        squares += part.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt().clamp_min(1e-3)
    return mean.tolist(), std.tolist()


def stats_of_files(paths: list[str], mode: str, img_size: int, limit: int = 2048) -> tuple[list[float], list[float]]:
    """Channel statistics from up to ``limit`` readable files spread over ``paths``."""
    step = max(1, len(paths) // limit)
    samples = [(path, 0) for path in paths[::step][:limit]]
    decoded = decode_split(samples, mode, img_size)
    _CACHE.pop((tuple(samples), mode, img_size), None)  # a one-off sample, not worth keeping
    if not decoded.paths:
        raise ValueError(f"imagefolder: none of {len(samples)} sampled files under {Path(paths[0]).parent.parent} decodes")
    return channel_stats(decoded.images)
