"""Listing, checking and profiling ``<root>/train/<class>/*`` image folders.

Two costs are kept apart. Profiling (the images' size and colour mode, which pick the
training defaults) reads only the headers of a fixed sample. Checking reads the header
of every file (``PIL.Image.open`` parses the header and decodes nothing): it catches
files that are not images at all (garbage, empty, HTML saved as .jpg) for a small
fraction of what one training epoch spends decoding the same files. Files whose
header is sound but whose pixel data is damaged are found when they are decoded.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff", ".webp", ".gif")
SPLIT_DIRS = {"train": "train", "test": "val"}
# Largest side (pixels) of the images that get the small-image recipe.
SMALL_IMAGE_MAX_SIDE = 64
PROFILE_SAMPLE = 64
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_LISTED_IN_WARNING = 5


def read_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this file is not a readable image" (PIL raises all of these)."""
    from PIL import Image

    return (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)


class UnreadableImageWarning(UserWarning):
    """Some files of an image folder could not be read and are left out."""


def class_folders(folder: Path) -> list[str]:
    """Sorted class sub-folder names of ``folder`` (``<root>/train`` or ``<root>/val``)."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"imagefolder: expected {folder} (layout <root>/train/<class>/*, <root>/val/<class>/*)"
        )
    classes = sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        raise ValueError(f"imagefolder: {folder} has no class sub-folders (expected {folder}/<class>/*)")
    return classes


def split_folder(root: str | Path, split: str) -> tuple[Path, list[str]]:
    """``(folder of split, classes)``; checks the root, and that val has train's classes."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"data_path: the image folder {root} does not exist")
    train_classes = class_folders(root / "train")
    folder = root / SPLIT_DIRS[split]
    if split != "train" and class_folders(folder) != train_classes:
        raise ValueError(f"imagefolder: class folders of {folder} differ from {root / 'train'}")
    return folder, train_classes


def list_images(folder: Path, classes: list[str]) -> list[tuple[str, int]]:
    """``(path, class index)`` of every image file, sorted by class then path."""
    samples: list[tuple[str, int]] = []
    for index, name in enumerate(classes):
        found = []
        for dirpath, dirnames, filenames in os.walk(folder / name, followlinks=True):
            dirnames.sort()
            found.extend(os.path.join(dirpath, f) for f in filenames
                         if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
        samples.extend((path, index) for path in sorted(found))
    empty = sorted(set(classes) - {classes[i] for _, i in samples})
    if empty:
        raise ValueError(f"imagefolder: no image files ({', '.join(IMAGE_EXTENSIONS)}) in "
                         f"{', '.join(str(folder / c) for c in empty)}")
    return samples


def header_problem(path: str) -> str | None:
    """``None`` if PIL recognises the file's header, else the reason it does not."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.size  # noqa: B018 - the header parse is the check
    except read_errors() as err:
        return f"{type(err).__name__}: {err}"
    return None


def check_headers(samples: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """Split ``samples`` into readable ones and ``(path, reason)`` of unreadable ones."""
    good, bad = [], []
    for path, label in samples:
        problem = header_problem(path)
        if problem is None:
            good.append((path, label))
        else:
            bad.append((path, problem))
    return good, bad


def warn_unreadable(bad: list[tuple[str, str]], folder: Path, total: int) -> None:
    """One warning naming the unreadable files (the first few, with a count of the rest)."""
    if not bad:
        return
    shown = "; ".join(f"{path} ({reason})" for path, reason in bad[:_LISTED_IN_WARNING])
    more = f"; and {len(bad) - _LISTED_IN_WARNING} more" if len(bad) > _LISTED_IN_WARNING else ""
    warnings.warn(
        f"imagefolder {folder}: skipping {len(bad)} unreadable of {total} image files "
        f"(listed in summary.json 'skipped_files'): {shown}{more}",
        UnreadableImageWarning,
        stacklevel=3,
    )


@dataclass(frozen=True)
class FolderProfile:
    """What the training defaults of an image folder are chosen from."""

    root: str
    num_classes: int
    num_train: int
    height: int  # median over the profiled sample
    width: int
    grey: bool  # every profiled image has a single-channel mode
    sampled: int

    @property
    def small(self) -> bool:
        return max(self.height, self.width) <= SMALL_IMAGE_MAX_SIDE

    def describe(self) -> str:
        return (f"{self.width}x{self.height} {'grey' if self.grey else 'colour'}, {self.num_classes} classes, "
                f"{self.num_train} training images")


_PROFILES: dict[tuple[str, float], FolderProfile] = {}


def profile_imagefolder(root: str | Path, sample: int = PROFILE_SAMPLE) -> FolderProfile:
    """Size and mode of the training images, from the headers of ``sample`` files spread
    evenly over the sorted listing (so every class is represented)."""
    from PIL import Image

    folder, classes = split_folder(root, "train")
    key = (str(folder.resolve()), folder.stat().st_mtime)
    if key in _PROFILES:
        return _PROFILES[key]
    samples = list_images(folder, classes)
    step = max(1, len(samples) // sample)
    heights, widths, grey = [], [], True
    for path, _ in samples[::step][:sample]:
        try:
            with Image.open(path) as image:
                width, height = image.size
                grey = grey and image.mode in _GREY_MODES
        except read_errors():
            continue  # reported (with all others) when the split is built
        heights.append(height)
        widths.append(width)
    if not heights:
        raise ValueError(f"imagefolder: none of {min(sample, len(samples))} sampled files in {folder} is readable")
    profile = FolderProfile(str(root), len(classes), len(samples), sorted(heights)[len(heights) // 2],
                            sorted(widths)[len(widths) // 2], grey, len(heights))
    _PROFILES[key] = profile
    return profile
