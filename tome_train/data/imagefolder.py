"""ImageNet-style folders: ``<root>/train/<class>/*`` and ``<root>/val/<class>/*``.

The recipe follows the images. Small images (largest side <= 64 px, judged from a
sample of headers, see :func:`~tome_train.data.folder_scan.profile_imagefolder`) get
the recipe of the built-in Fashion-MNIST / CIFAR-10 loaders: decoded once into a
uint8 tensor, random crop with zero padding plus flips, per-channel normalisation
from the training images. Larger images are read per item with timm's ImageNet
training transform (random resized crop, flips, ...) and ImageNet normalisation.

Unreadable files never stop a run and are never trained on. Small folders are fully
decoded up front, which checks every file. Per-item folders get a header check of
every file up front; a file whose pixel data still fails to decode later is replaced
by the next readable image of the same class (a real, correctly labelled image), with
a warning naming it. All skipped files are listed in the dataset's ``skipped_files``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .augment import (
    PER_ITEM,
    PER_ITEM_DEFAULTS,
    TENSOR,
    Augmentation,
    augment_tensor,
    tensor_defaults,
)
from .folder_scan import (
    check_headers,
    list_images,
    profile_imagefolder,
    read_errors,
    split_folder,
    warn_unreadable,
)
from .imagefolder_memory import channel_stats, decode_split, image_to_uint8, stats_of_files
from .tensor_dataset import TensorImageDataset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Small-image training sets up to this many decoded bytes are held in memory.
IN_MEMORY_MAX_BYTES = 4 * 1024**3


def small_crop_pad(img_size: int) -> int:
    """Zero padding of the small-image random crop: 4 px at 32 px, as CIFAR-10 uses."""
    return max(1, img_size // 8)


@dataclass(frozen=True)
class FolderPlan:
    """How one image folder is read and augmented at a given input size."""

    pipeline: str  # TENSOR (small-image recipe) or PER_ITEM (ImageNet recipe)
    in_memory: bool
    augmentation: Augmentation  # resolved

    def describe(self) -> str:
        if self.pipeline == TENSOR:
            where = "in memory" if self.in_memory else "read per item"
            return f"small-image augmentation ({where}; {self.augmentation.describe(TENSOR)})"
        return f"ImageNet augmentation (read per item; {self.augmentation.describe(PER_ITEM)})"


def plan_imagefolder(data_path: str | Path, img_size: int, in_chans: int,
                     augmentation: Augmentation | None = None) -> FolderPlan:
    """Pick the pipeline from the images' native size and resolve the augmentation."""
    profile = profile_imagefolder(data_path)
    augmentation = augmentation or Augmentation()
    if profile.small:
        in_memory = profile.num_train * in_chans * img_size * img_size <= IN_MEMORY_MAX_BYTES
        return FolderPlan(TENSOR, in_memory, augmentation.resolve(TENSOR, tensor_defaults(small_crop_pad(img_size))))
    return FolderPlan(PER_ITEM, False, augmentation.resolve(PER_ITEM, PER_ITEM_DEFAULTS))


class PerItemImageFolder(Dataset):
    """Files decoded on access; a file that fails is replaced by the next readable one of its class."""

    def __init__(self, samples: list[tuple[str, int]], mode: str, transform, skipped: list[str]) -> None:  # noqa: ANN001
        self.samples = samples
        self.targets = torch.as_tensor([label for _, label in samples], dtype=torch.long)
        self.mode = mode
        self.transform = transform
        self.skipped_files = skipped
        self._unreadable: set[int] = set()
        starts: dict[int, int] = {}
        ends: dict[int, int] = {}
        for index, (_, label) in enumerate(samples):
            starts.setdefault(label, index)
            ends[label] = index + 1
        self._class_range = {label: (starts[label], ends[label]) for label in starts}

    def __len__(self) -> int:
        return len(self.samples)

    def _candidates(self, index: int):  # noqa: ANN202 - generator of indices
        start, end = self._class_range[self.samples[index][1]]
        for offset in range(end - start):
            candidate = start + (index - start + offset) % (end - start)
            if candidate not in self._unreadable:
                yield candidate

    def load(self, index: int):  # noqa: ANN201 - PIL image
        from PIL import Image

        for candidate in self._candidates(index):
            path = self.samples[candidate][0]
            try:
                with Image.open(path) as image:
                    return image.convert(self.mode)
            except read_errors() as err:
                self._unreadable.add(candidate)
                self.skipped_files.append(path)
                warn_unreadable([(path, f"{type(err).__name__}: {err}; replaced by the next "
                                  "readable image of its class")], Path(path).parent.parent, len(self))
        label = self.samples[index][1]
        raise ValueError(f"imagefolder: no file of class folder {Path(self.samples[index][0]).parent} "
                         f"(label {label}) decodes")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.load(index)), self.samples[index][1]


class _SmallItemTransform:
    """The in-memory recipe applied to one PIL image (for small images too many to hold)."""

    def __init__(self, img_size: int, mean, std, augmentation: Augmentation | None) -> None:  # noqa: ANN001
        self.img_size = img_size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.augmentation = augmentation

    def __call__(self, image) -> torch.Tensor:  # noqa: ANN001
        tensor = image_to_uint8(image, self.img_size).float().div_(255.0)
        aug = self.augmentation
        if aug is not None:
            tensor = augment_tensor(tensor, aug.crop_pad, aug.hflip, aug.vflip)  # type: ignore[arg-type]
        return (tensor - self.mean) / self.std


def _per_item_eval_transform(img_size: int, mean, std):  # noqa: ANN001, ANN202
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(int(round(img_size / 0.875))),
        transforms.CenterCrop(img_size),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])


def build_imagefolder(
    data_path: str | Path, split: str, img_size: int = 224, in_chans: int = 3, augment: bool = False,
    augmentation: Augmentation | None = None,
) -> tuple[Dataset, int]:
    """Return ``(dataset, num_classes)``; train and val must hold the same class folders.

    The dataset's ``skipped_files`` lists the files left out as unreadable.
    """
    folder, classes = split_folder(data_path, split)
    if in_chans not in (1, 3):
        raise ValueError(f"--in-chans: imagefolder supports 1 (grey) or 3 (RGB), got {in_chans}")
    mode = "L" if in_chans == 1 else "RGB"
    plan = plan_imagefolder(data_path, img_size, in_chans, augmentation)
    aug = plan.augmentation
    samples = list_images(folder, classes)
    if plan.pipeline == TENSOR and plan.in_memory:
        decoded = decode_split(samples, mode, img_size)
        warn_unreadable(decoded.unreadable, folder, len(samples))
        if split == "train":
            mean, std = channel_stats(decoded.images)
        else:
            train_folder, _ = split_folder(data_path, "train")
            mean, std = channel_stats(decode_split(list_images(train_folder, classes), mode, img_size).images)
        dataset: Dataset = TensorImageDataset(decoded.images, decoded.labels, mean, std, augment=augment,
                                              padding=aug.crop_pad, hflip=aug.hflip, vflip=aug.vflip)  # type: ignore[arg-type]
        dataset.skipped_files = [path for path, _ in decoded.unreadable]  # type: ignore[attr-defined]
        dataset.paths = decoded.paths  # type: ignore[attr-defined]
        return dataset, len(classes)
    good, bad = check_headers(samples)
    warn_unreadable(bad, folder, len(samples))
    if not good:
        raise ValueError(f"imagefolder: no readable image in {folder}")
    if plan.pipeline == TENSOR:
        train_folder, _ = split_folder(data_path, "train")
        mean, std = stats_of_files([p for p, _ in list_images(train_folder, classes)], mode, img_size)
        transform = _SmallItemTransform(img_size, mean, std, aug if augment else None)
    else:
        mean = IMAGENET_MEAN if in_chans == 3 else (sum(IMAGENET_MEAN) / 3,)
        std = IMAGENET_STD if in_chans == 3 else (sum(IMAGENET_STD) / 3,)
        if augment:
            from .augment import per_item_train_transform

            transform = per_item_train_transform(aug, img_size, mean, std)
        else:
            transform = _per_item_eval_transform(img_size, mean, std)
    return PerItemImageFolder(good, mode, transform, [path for path, _ in bad]), len(classes)
