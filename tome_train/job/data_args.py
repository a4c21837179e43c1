"""Data-side arguments of ``tools/train.py``: augmentation flags and image-folder defaults.

Augmentation options are named as timm's ``train.py`` names them and default to ``None``
("the data set's default"); :func:`resolve_augmentation_args` fills them in once the input
size is known and records the values used. An image folder is profiled (size and mode of
a sample of its images) so that its model, input size and channels follow the images.
"""

from __future__ import annotations

import argparse

from tome_train.argtypes import bounded, number_in
from tome_train.data.augment import PER_ITEM, Augmentation
from tome_train.data.registry import resolve_augmentation

# The defaults key of a folder of small images: it shares the built-in small-image sets' recipe.
SMALL_IMAGE_FOLDER = "imagefolder-small"


def add_augmentation_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "augmentation (training split; named as in timm's train.py)",
        "Unset options take the data set's default. Small images (built-in sets, image folders "
        "of images <= 64 px) are held in memory: random crop with --crop-pad zero padding, flips. "
        "Folders of larger images are read per item with timm's ImageNet transform.")
    g.add_argument("--hflip", type=number_in("--hflip", 0, 1, noun="a probability"), default=None, metavar="P",
                   help="horizontal flip probability (default 0.5; 0 for digits)")
    g.add_argument("--vflip", type=number_in("--vflip", 0, 1, noun="a probability"), default=None, metavar="P",
                   help="vertical flip probability (default 0)")
    g.add_argument("--crop-pad", type=bounded(int, "--crop-pad", strictly_positive=False), default=None,
                   metavar="PX", help="in-memory pipeline: zero padding of the random crop (default 4 for "
                   "fashion-mnist/cifar10, img-size/8 for small-image folders, 0 for digits)")
    g.add_argument("--scale", type=bounded(float, "--scale"), nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="per-item pipeline: random-resized-crop area range (default 0.08 1.0)")
    g.add_argument("--ratio", type=bounded(float, "--ratio"), nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="per-item pipeline: random-resized-crop aspect range (default 0.75 1.333)")
    g.add_argument("--color-jitter", type=bounded(float, "--color-jitter", strictly_positive=False),
                   default=None, metavar="F",
                   help="per-item pipeline: colour jitter strength (default 0: off; off with --aa, as in timm)")
    g.add_argument("--aa", default=None, metavar="POLICY",
                   help="per-item pipeline: timm AutoAugment/RandAugment policy, e.g. rand-m9-mstd0.5-inc1 "
                        "(default: none)")
    g.add_argument("--reprob", type=number_in("--reprob", 0, 1, noun="a probability"), default=None, metavar="P",
                   help="per-item pipeline: random erasing probability (default 0)")


def check_augmentation_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``parser.error`` for option values no pipeline accepts (e.g. ``--scale 0.9 0.1``)."""
    try:
        augmentation_from_args(args)
    except ValueError as err:
        parser.error(str(err))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def imagefolder_defaults(args: argparse.Namespace) -> str:
    """Fill channels and (with the default model) the input size from the images; return the
    defaults key: ``imagefolder-small`` for images <= 64 px, else ``imagefolder``."""
    from tome_train.data.folder_scan import profile_imagefolder

    profile = profile_imagefolder(args.data_path)
    key = SMALL_IMAGE_FOLDER if profile.small else "imagefolder"
    if args.in_chans is None:
        args.in_chans = 1 if profile.grey else 3
    if args.model is None and args.img_size is None:
        side = max(profile.height, profile.width)
        # Whole patches of the default model (4 px small, 16 px large); 32 px at least, 224 at most.
        args.img_size = max(32, _round_up(side, 4)) if profile.small else min(224, _round_up(side, 16))
    return key


def augmentation_from_args(args: argparse.Namespace) -> Augmentation:
    """The augmentation options as given (``None``: the data set's default)."""
    return Augmentation(
        hflip=args.hflip, vflip=args.vflip, crop_pad=args.crop_pad,
        scale=tuple(args.scale) if args.scale is not None else None,
        ratio=tuple(args.ratio) if args.ratio is not None else None,
        color_jitter=args.color_jitter, auto_augment=args.aa, reprob=args.reprob,
    )


def resolve_augmentation_args(args: argparse.Namespace) -> Augmentation:
    """Resolve the augmentation for ``args.img_size`` and record the values used in ``args``
    (so ``summary.json`` states them); raises ``ValueError`` for options the data set's
    pipeline cannot apply."""
    pipeline, aug = resolve_augmentation(args.dataset, args.data_path, args.img_size, args.in_chans,
                                         augmentation_from_args(args))
    args.hflip, args.vflip = aug.hflip, aug.vflip
    if pipeline == PER_ITEM:
        args.scale, args.ratio = list(aug.scale), list(aug.ratio)  # type: ignore[arg-type]
        args.color_jitter, args.aa, args.reprob = aug.color_jitter, aug.auto_augment, aug.reprob
    else:
        args.crop_pad = aug.crop_pad
    return aug


def imagefolder_notice(args: argparse.Namespace) -> str:
    """One line stating what an image folder was found to hold and the defaults chosen."""
    from tome_train.data.folder_scan import profile_imagefolder
    from tome_train.data.imagefolder import plan_imagefolder

    profile = profile_imagefolder(args.data_path)
    plan = plan_imagefolder(args.data_path, args.img_size, args.in_chans, augmentation_from_args(args))
    return (f"tome_train: image folder {args.data_path}: {profile.describe()} -> model {args.model}, "
            f"img-size {args.img_size}, in-chans {args.in_chans}, batch {args.batch_size}, lr {args.lr:g}, "
            f"{plan.describe()}")
