"""scikit-learn's 8x8 handwritten digits: the embedded default data set.

It ships inside scikit-learn (no download, no data path), is tiny (1,797 images)
and still needs real learning, so a ViT can be trained on it in seconds on a CPU.
That makes it the data set for tests, demos and the acceptance runs.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from .augment import BUILTIN_TENSOR_DEFAULTS, TENSOR, Augmentation
from .tensor_dataset import TensorImageDataset, match_channels, resize_images

NUM_CLASSES = 10
TEST_FRACTION = 0.2
# The split seed is fixed on purpose and independent of ``--seed``: every run,
# whatever its seed, is evaluated on the same held-out images.
SPLIT_SEED = 0


def _split_indices() -> tuple[list[int], list[int], torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32) / 16.0  # [0, 16] -> [0, 1]
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(
        list(range(len(labels))),
        test_size=TEST_FRACTION,
        random_state=SPLIT_SEED,
        stratify=bunch.target,
    )
    return sorted(train_idx), sorted(test_idx), images, labels


def build_digits(
    split: str, img_size: int = 16, in_chans: int = 1, augment: bool | None = None,
    augmentation: Augmentation | None = None,
) -> Dataset:
    """Deterministic stratified 80/20 split, upsampled (bilinear) to ``img_size``.

    Normalisation uses the training split's mean and standard deviation, so train
    and test share one transform. There is no augmentation: the images are too
    small for crops to preserve the digit, and the runs are meant to be short; an
    ``augmentation`` that sets crop padding or flips turns it on for the training split.
    """
    aug = (augmentation or Augmentation()).resolve(TENSOR, BUILTIN_TENSOR_DEFAULTS["digits"])
    train_idx, test_idx, images, labels = _split_indices()
    images = resize_images(images.unsqueeze(1), img_size).clamp_(0.0, 1.0)
    images = match_channels(images, in_chans)
    mean = float(images[train_idx].mean())
    std = float(images[train_idx].std())
    chosen = train_idx if split == "train" else test_idx
    return TensorImageDataset(
        images[chosen].contiguous(),
        labels[chosen],
        mean=[mean] * in_chans,
        std=[std] * in_chans,
        augment=split == "train" if augment is None else augment,
        padding=aug.crop_pad,  # type: ignore[arg-type]
        hflip=aug.hflip,  # type: ignore[arg-type]
        vflip=aug.vflip,  # type: ignore[arg-type]
    )
