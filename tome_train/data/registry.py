"""One entry point, ``build_dataset``, from a data set name to a ready torch data set.

The CLI, scoring runs and condensation evaluation all need "the training split of X
with the standard augmentation" or "the test split of X", so the choice of reader,
normalisation and augmentation lives here once.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from .augment import BUILTIN_TENSOR_DEFAULTS, TENSOR, Augmentation

DATASETS = ("digits", "fashion-mnist", "cifar10", "imagefolder")
SPLITS = ("train", "test")


def default_in_chans(name: str) -> int:
    """Native channel count: 1 for the grey-scale sets, 3 for colour ones."""
    return 1 if name in ("digits", "fashion-mnist") else 3


def skipped_files(*datasets: Dataset) -> list[str]:
    """Files the given image-folder data sets left out as unreadable (empty for other sets).

    A per-item image folder adds files that fail to decode during training (in this
    process; with DataLoader workers, the workers' warnings name them), so ask again
    at the end of a run.
    """
    return [path for dataset in datasets for path in getattr(dataset, "skipped_files", [])]


def resolve_augmentation(
    name: str, data_path: str | Path | None, img_size: int, in_chans: int,
    augmentation: Augmentation | None = None,
) -> tuple[str, Augmentation]:
    """``(pipeline, augmentation with every default filled in)`` that ``build_dataset``
    will use for the training split of ``name``; raises ``ValueError`` for settings the
    data set's pipeline cannot apply."""
    augmentation = augmentation or Augmentation()
    if name == "imagefolder":
        from .imagefolder import plan_imagefolder

        if data_path is None:
            raise ValueError("data set 'imagefolder' needs a data path (--data-path)")
        plan = plan_imagefolder(data_path, img_size, in_chans, augmentation)
        return plan.pipeline, plan.augmentation
    if name not in BUILTIN_TENSOR_DEFAULTS:
        raise ValueError(f"unknown data set {name!r}; choose from {DATASETS}")
    return TENSOR, augmentation.resolve(TENSOR, BUILTIN_TENSOR_DEFAULTS[name])


def build_dataset(
    name: str,
    data_path: str | Path | None,
    split: str,
    img_size: int,
    in_chans: int,
    augment: bool | None = None,
    augmentation: Augmentation | None = None,
) -> tuple[Dataset, int]:
    """Return ``(dataset, num_classes)``; items are ``(image tensor, int label)``.

    ``split`` is ``"train"`` or ``"test"`` (``"val"`` is accepted for ``"test"``).
    ``augment`` defaults to ``split == "train"``: random crop (padding 4) + flip for
    the 32x32-style sets and small-image folders, random-resized crop + flip for
    folders of large images, none for digits; ``augmentation`` overrides the data
    set's settings (see :class:`~tome_train.data.augment.Augmentation`). Wrap the
    result in :class:`~tome_train.data.IndexedDataset` for training. Image-folder
    data sets list the files they left out as unreadable in ``skipped_files``.
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

        dataset = build_digits(split, img_size, in_chans, augment=augment, augmentation=augmentation)
        return dataset, NUM_CLASSES
    if data_path is None:
        raise ValueError(f"data set {name!r} needs a data path (--data-path)")
    if name == "fashion-mnist":
        from .fashion_mnist import NUM_CLASSES, build_fashion_mnist

        dataset = build_fashion_mnist(data_path, split, img_size, in_chans, augment, augmentation)
        return dataset, NUM_CLASSES
    if name == "cifar10":
        from .cifar10 import NUM_CLASSES, build_cifar10

        return build_cifar10(data_path, split, img_size, in_chans, augment, augmentation), NUM_CLASSES
    if name == "imagefolder":
        from .imagefolder import build_imagefolder

        return build_imagefolder(data_path, split, img_size, in_chans, augment, augmentation)
    raise ValueError(f"unknown data set {name!r}; choose from {DATASETS}")
