"""One entry point, ``build_dataset``, from a data set name to a ready torch data set.

The CLI, scoring runs and condensation evaluation all need "the training split of X
with the standard augmentation" or "the test split of X", so the choice of reader,
normalisation and augmentation lives here once.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

DATASETS = ("digits", "fashion-mnist", "cifar10", "imagefolder")
SPLITS = ("train", "test")


def default_in_chans(name: str) -> int:
    """Native channel count: 1 for the grey-scale sets, 3 for colour ones."""
    return 1 if name in ("digits", "fashion-mnist") else 3


def build_dataset(
    name: str,
    data_path: str | Path | None,
    split: str,
    img_size: int,
    in_chans: int,
    augment: bool | None = None,
) -> tuple[Dataset, int]:
    """Return ``(dataset, num_classes)``; items are ``(image tensor, int label)``.

    ``split`` is ``"train"`` or ``"test"`` (``"val"`` is accepted for ``"test"``).
    ``augment`` defaults to ``split == "train"``: random crop (padding 4) + flip for
    the 32x32-style sets, random-resized crop + flip for image folders, none for
    digits. Wrap the result in :class:`~tome_train.data.IndexedDataset` for training.
    Nothing is ever downloaded; a missing or malformed path raises
    ``FileNotFoundError`` / ``ValueError`` naming the path and the expected layout.
    """
    if split == "val":
        split = "test"
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if augment is None:
        augment = split == "train"
    if name == "digits":
        from .digits import NUM_CLASSES, build_digits

        return build_digits(split, img_size=img_size, in_chans=in_chans), NUM_CLASSES
    if data_path is None:
        raise ValueError(f"data set {name!r} needs a data path (--data-path)")
    if name == "fashion-mnist":
        from .fashion_mnist import NUM_CLASSES, build_fashion_mnist

        dataset = build_fashion_mnist(data_path, split, img_size, in_chans, augment=augment)
        return dataset, NUM_CLASSES
    if name == "cifar10":
        from .cifar10 import NUM_CLASSES, build_cifar10

        return build_cifar10(data_path, split, img_size, in_chans, augment=augment), NUM_CLASSES
    if name == "imagefolder":
        from .imagefolder import build_imagefolder

        return build_imagefolder(data_path, split, img_size, in_chans, augment=augment)
    raise ValueError(f"unknown data set {name!r}; choose from {DATASETS}")
