"""Image folders: unreadable files, defaults from the images, the small-image path, augmentation flags."""

from __future__ import annotations

import gzip
import json
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tome_train.data import Augmentation, build_dataset
from tome_train.data.folder_scan import UnreadableImageWarning, profile_imagefolder
from tome_train.job.args import parse_args, resolve_defaults
from tome_train.job.data_args import imagefolder_notice, resolve_augmentation_args


def _digit_folder(root: Path, n_train: int = 60, n_val: int = 20, side: int = 16) -> None:
    """sklearn digits as grey PNGs of ``side`` px in <root>/{train,val}/<label>/."""
    from PIL import Image
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    for split, lo, hi in (("train", 0, n_train), ("val", n_train, n_train + n_val)):
        for i in range(lo, hi):
            folder = root / split / str(labels[i])
            folder.mkdir(parents=True, exist_ok=True)
            pixels = (images[i].reshape(8, 8) * 16).clip(0, 255).astype(np.uint8)
            Image.fromarray(pixels).resize((side, side)).save(folder / f"{i:04d}.png")


def _colour_folder(root: Path, size: tuple[int, int] = (100, 90), per_class: int = 4) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in ("a", "b"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# --------------------------------------------------------------------------- unreadable files
def test_garbage_and_truncated_files_are_skipped_and_named(tmp_path: Path) -> None:
    _digit_folder(tmp_path)
    (tmp_path / "train" / "3" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    truncated = sorted((tmp_path / "train" / "5").iterdir())[0]
    _truncate(truncated)  # sound header, damaged pixel data: found only by decoding
    with pytest.warns(UnreadableImageWarning, match="skipping 2 unreadable of 61") as caught:
        train, _ = build_dataset("imagefolder", tmp_path, "train", 32, 1)
    message = str(caught[0].message)
    assert "broken.png" in message and truncated.name in message
    assert len(train) == 59
    assert sorted(train.skipped_files) == sorted([str(tmp_path / "train" / "3" / "broken.png"), str(truncated)])
    assert str(truncated) not in train.paths


def test_per_item_folder_checks_headers_then_replaces_files_that_fail_to_decode(tmp_path: Path) -> None:
    _colour_folder(tmp_path)
    (tmp_path / "train" / "b" / "junk.jpg").write_bytes(b"<html>not an image</html>")
    _truncate(tmp_path / "train" / "a" / "0.jpg")
    with pytest.warns(UnreadableImageWarning, match="junk.jpg"):
        train, classes = build_dataset("imagefolder", tmp_path, "train", 32, 3, augment=False)
    assert classes == 2 and len(train) == 8  # junk.jpg left out by the header check
    with pytest.warns(UnreadableImageWarning, match=r"0\.jpg.*replaced by the next readable image"):
        image, label = train[0]
    assert image.shape == (3, 32, 32) and label == 0
    assert torch.equal(image, train[1][0])  # the next image of class "a" stands in
    assert [Path(p).name for p in train.skipped_files] == ["junk.jpg", "0.jpg"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a known-bad file is not retried or reported twice
        train[0]


def test_class_without_any_decodable_file_is_a_clear_error(tmp_path: Path) -> None:
    _colour_folder(tmp_path, per_class=2)
    for path in (tmp_path / "train" / "a").iterdir():
        _truncate(path)
    train, _ = build_dataset("imagefolder", tmp_path, "train", 32, 3)
    with pytest.warns(UnreadableImageWarning), pytest.raises(ValueError, match="no file of class folder"):
        train[0]


# --------------------------------------------------------------------------- defaults
def test_profile_of_small_grey_and_large_colour_folders(tmp_path: Path) -> None:
    _digit_folder(tmp_path / "grey", side=28)
    _colour_folder(tmp_path / "colour")
    grey = profile_imagefolder(tmp_path / "grey")
    assert (grey.height, grey.width, grey.grey, grey.small, grey.num_classes) == (28, 28, True, True, 10)
    colour = profile_imagefolder(tmp_path / "colour")
    assert (colour.height, colour.width, colour.grey, colour.small) == (90, 100, False, False)


def test_small_grey_folder_resolves_the_fashion_mnist_defaults(tmp_path: Path) -> None:
    _digit_folder(tmp_path, side=28)
    folder = resolve_defaults(parse_args(["--dataset", "imagefolder", "--data-path", str(tmp_path)]))
    builtin = resolve_defaults(parse_args(["--dataset", "fashion-mnist", "--data-path", str(tmp_path)]))
    for key in ("model", "in_chans", "batch_size", "lr"):
        assert getattr(folder, key) == getattr(builtin, key), key
    assert folder.img_size == 32 and folder.model == "deit_tiny_patch4_32" and folder.in_chans == 1
    assert (folder.batch_size, folder.lr) == (128, pytest.approx(1e-3))  # 4e-3 per 512
    resolve_augmentation_args(folder)
    assert (folder.crop_pad, folder.hflip, folder.vflip, folder.scale) == (4, 0.5, 0.0, None)
    notice = imagefolder_notice(folder)
    assert "28x28 grey, 10 classes" in notice and "model deit_tiny_patch4_32, img-size 32, in-chans 1" in notice
    assert "small-image augmentation (in memory; crop pad 4, hflip 0.5)" in notice


def test_large_colour_folder_keeps_the_imagenet_recipe(tmp_path: Path) -> None:
    _colour_folder(tmp_path)
    args = resolve_defaults(parse_args(["--dataset", "imagefolder", "--data-path", str(tmp_path)]))
    assert (args.model, args.img_size, args.in_chans) == ("deit_small_patch16_224", 112, 3)
    assert args.lr == pytest.approx(5e-4 * args.batch_size / 512)
    resolve_augmentation_args(args)
    assert args.scale == [0.08, 1.0] and args.hflip == 0.5 and args.crop_pad is None
    assert "ImageNet augmentation (read per item; scale 0.08-1, hflip 0.5)" in imagefolder_notice(args)
    explicit = resolve_defaults(parse_args(["--dataset", "imagefolder", "--data-path", str(tmp_path),
                                            "--model", "deit_micro_patch4_32"]))
    assert explicit.img_size is None  # an explicit model keeps its own input size


# --------------------------------------------------------------------------- small-image path
def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_small_folder_gives_the_tensors_of_the_builtin_loader(tmp_path: Path) -> None:
    """Fashion-MNIST-like idx files and the same pixels as PNGs: same uint8 tensors at 32 px,
    same augmentation, normalisation from the training images."""
    from PIL import Image

    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (30, 28, 28)), "t10k": rng.integers(0, 256, (10, 28, 28))}
    labels = {"train": np.arange(30) % 3, "t10k": np.arange(10) % 3}
    (tmp_path / "idx").mkdir()
    for prefix, split in (("train", "train"), ("t10k", "val")):
        _write_idx(tmp_path / "idx" / f"{prefix}-images-idx3-ubyte.gz", images[prefix])
        _write_idx(tmp_path / "idx" / f"{prefix}-labels-idx1-ubyte.gz", labels[prefix])
        for i, (pixels, label) in enumerate(zip(images[prefix], labels[prefix], strict=True)):
            folder = tmp_path / "folder" / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:03d}.png")
    for split, prefix in (("train", "train"), ("test", "t10k")):
        builtin, _ = build_dataset("fashion-mnist", tmp_path / "idx", split, 32, 1)
        folder, classes = build_dataset("imagefolder", tmp_path / "folder", split, 32, 1)
        order = np.argsort(labels[prefix], kind="stable")  # the folder lists class by class
        assert classes == 3
        assert torch.equal(folder.images, builtin.images[torch.as_tensor(order)])
        assert torch.equal(folder.targets, builtin.targets[torch.as_tensor(order)])
        assert (folder.augment, folder.padding, folder.hflip) == (builtin.augment, builtin.padding, builtin.hflip)
        train_pixels = torch.as_tensor(images["train"], dtype=torch.float64) / 255
        assert float(folder.mean) == pytest.approx(float(train_pixels.mean()), abs=0.01)  # at 32 px


# --------------------------------------------------------------------------- flags
def test_augmentation_flags_parse_and_reach_the_dataset(tmp_path) -> None:
    args = parse_args(["--dataset", "digits", "--hflip", "0.25", "--vflip", "0.5", "--crop-pad", "2"])
    args = resolve_defaults(args)
    args.img_size = 16
    aug = resolve_augmentation_args(args)
    assert (aug.hflip, aug.vflip, aug.crop_pad) == (0.25, 0.5, 2)
    train, _ = build_dataset("digits", None, "train", 16, 1, augmentation=aug)
    assert (train.augment, train.hflip, train.vflip, train.padding) == (True, 0.25, 0.5, 2)
    per_item = parse_args(["--dataset", "imagefolder", "--data-path", str(tmp_path), "--scale", "0.5", "1",
                           "--ratio", "0.9", "1.1", "--color-jitter", "0.4", "--aa", "rand-m9-mstd0.5", "--reprob", "0.2"])
    assert per_item.scale == [0.5, 1.0] and per_item.ratio == [0.9, 1.1] and per_item.aa == "rand-m9-mstd0.5"


def test_digits_default_stays_unaugmented() -> None:
    args = resolve_defaults(parse_args(["--dataset", "digits"]))
    args.img_size = 16
    aug = resolve_augmentation_args(args)
    train, _ = build_dataset("digits", None, "train", 16, 1, augmentation=aug)
    state = torch.get_rng_state()
    image, _ = train[3]
    assert torch.equal(state, torch.get_rng_state())  # no random draw at all
    assert torch.equal(image, (train.images[3] - train.mean) / train.std)


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--hflip", "1.5"], "--hflip"), (["--scale", "0.9", "0.1"], "--scale"), (["--crop-pad", "-1"], "--crop-pad")],
)
def test_bad_augmentation_flags_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--dataset", "digits", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_flags_of_the_other_pipeline_are_refused(tmp_path: Path) -> None:
    args = resolve_defaults(parse_args(["--dataset", "digits", "--scale", "0.5", "1"]))
    args.img_size = 16
    with pytest.raises(ValueError, match="--scale applies only to folders of large images"):
        resolve_augmentation_args(args)
    _colour_folder(tmp_path)
    with pytest.raises(ValueError, match="--crop-pad applies only to small images held in memory"):
        build_dataset("imagefolder", tmp_path, "train", 32, 3, augmentation=Augmentation(crop_pad=2))
    with pytest.raises(ValueError, match="--aa"):
        build_dataset("imagefolder", tmp_path, "train", 32, 3, augmentation=Augmentation(auto_augment="nonsense"))


def test_per_item_training_transform_uses_the_flags(tmp_path: Path) -> None:
    _colour_folder(tmp_path)
    aug = Augmentation(scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=0.0, reprob=1.0)
    train, _ = build_dataset("imagefolder", tmp_path, "train", 32, 3, augmentation=aug)
    names = [type(step).__name__ for step in train.transform.transforms]
    assert "RandomHorizontalFlip" not in names and "RandomErasing" in names
    assert train[0][0].shape == (3, 32, 32)


# --------------------------------------------------------------------------- end to end
def test_train_cli_on_a_folder_with_a_corrupt_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tome_train.job.train import main

    _digit_folder(tmp_path / "f", n_train=40, n_val=40, side=8)
    (tmp_path / "f" / "train" / "3" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.warns(UnreadableImageWarning, match="broken.png"):
        main(["--dataset", "imagefolder", "--data-path", str(tmp_path / "f"), "--model", "deit_micro_patch2_16",
              "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--no-progress",
              "--output-dir", str(tmp_path / "out")])
    assert "tome_train: image folder" in capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [Path(p).name for p in summary["skipped_files"]] == ["broken.png"]
    assert summary["num_train"] == 40 and summary["args"]["crop_pad"] == 2  # 16 px: img-size / 8
