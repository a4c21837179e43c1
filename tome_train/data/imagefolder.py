"""ImageNet-style folders: ``<root>/train/<class>/*`` and ``<root>/val/<class>/*``.

For data sets too big to hold decoded in memory, images are read per item with
torchvision's ``ImageFolder`` and the usual DeiT-style transforms (random resized
crop + flip for training, resize + centre crop for evaluation).
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_SPLIT_DIRS = {"train": "train", "test": "val"}


class _ConvertMode:
    """Picklable ``PIL.Image.convert`` step (a lambda would break worker processes)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, image):  # noqa: ANN001, ANN204 - PIL image in, PIL image out
        return image.convert(self.mode)


def _check_folder(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise FileNotFoundError(
            f"imagefolder: expected {folder} (layout <root>/train/<class>/*, <root>/val/<class>/*)"
        )
    classes = sorted(entry.name for entry in folder.iterdir() if entry.is_dir())
    if not classes:
        raise ValueError(f"imagefolder: {folder} has no class sub-folders (expected {folder}/<class>/*)")
    return classes


def build_imagefolder(
    data_path: str | Path, split: str, img_size: int = 224, in_chans: int = 3, augment: bool = False
) -> tuple[Dataset, int]:
    """Return ``(dataset, num_classes)``; train and val must hold the same class folders."""
    from torchvision import datasets, transforms

    root = Path(data_path)
    if not root.exists():
        raise FileNotFoundError(f"imagefolder path {root} does not exist")
    train_classes = _check_folder(root / "train")
    folder = root / _SPLIT_DIRS[split]
    classes = _check_folder(folder)
    if classes != train_classes:
        raise ValueError(f"imagefolder: class folders of {folder} differ from {root / 'train'}")
    if in_chans not in (1, 3):
        raise ValueError(f"imagefolder supports in_chans 1 or 3, got {in_chans}")
    mean = IMAGENET_MEAN if in_chans == 3 else (sum(IMAGENET_MEAN) / 3,)
    std = IMAGENET_STD if in_chans == 3 else (sum(IMAGENET_STD) / 3,)
    if augment:
        geometry = [transforms.RandomResizedCrop(img_size), transforms.RandomHorizontalFlip()]
    else:
        geometry = [transforms.Resize(int(round(img_size / 0.875))), transforms.CenterCrop(img_size)]
    mode = "RGB" if in_chans == 3 else "L"
    transform = transforms.Compose(
        [
            _ConvertMode(mode),
            *geometry,
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
    try:
        dataset = datasets.ImageFolder(str(folder), transform=transform)
    except FileNotFoundError as err:  # raised for class folders without valid images
        raise ValueError(f"imagefolder: {folder}: {err}") from err
    return dataset, len(classes)
