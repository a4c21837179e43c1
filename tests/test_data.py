"""Data sets: shapes, labels, determinism, file formats and error messages."""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from tome_train.data import IndexedDataset, build_dataset
from tome_train.data.cifar10 import _CACHE as CIFAR_CACHE


# --------------------------------------------------------------------------- digits
def test_digits_shapes_split_and_determinism() -> None:
    train, classes = build_dataset("digits", None, "train", img_size=16, in_chans=1)
    test, _ = build_dataset("digits", None, "test", img_size=16, in_chans=1)
    assert classes == 10
    assert len(train) + len(test) == 1797
    assert len(test) == 360  # stratified 80/20
    image, label = train[0]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32
    assert 0 <= label < 10
    assert torch.bincount(test.targets, minlength=10).min() >= 34  # every class in test
    again, _ = build_dataset("digits", None, "train", img_size=16, in_chans=1)
    assert torch.equal(train.targets, again.targets)
    assert torch.equal(train.images, again.images)
    # Normalised with the training statistics.
    assert abs(float(train.images.mean() - train.mean.mean())) < 1e-4


def test_digits_channels_and_size() -> None:
    train, _ = build_dataset("digits", None, "train", img_size=32, in_chans=3)
    image, _ = train[5]
    assert image.shape == (3, 32, 32)
    assert torch.equal(image[0], image[2])


def test_indexed_dataset_returns_index() -> None:
    train, _ = build_dataset("digits", None, "train", img_size=16, in_chans=1)
    indexed = IndexedDataset(train)
    image, label, index = indexed[7]
    assert index == 7 and label == int(train.targets[7])
    assert torch.equal(image, train[7][0])
    assert len(indexed) == len(train)


def test_unknown_dataset_and_split() -> None:
    with pytest.raises(ValueError, match="unknown data set"):
        build_dataset("mnist9", "/x", "train", 32, 1)
    with pytest.raises(ValueError, match="split"):
        build_dataset("digits", None, "holdout", 16, 1)
    with pytest.raises(ValueError, match="data path"):
        build_dataset("cifar10", None, "train", 32, 3)


# --------------------------------------------------------------------------- fashion-mnist
def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def _fake_fashion(folder: Path, n_train: int = 12, n_test: int = 6) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", n_train), ("t10k", n_test)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(count) % 10)


def test_fashion_mnist_from_idx_gz(tmp_path: Path) -> None:
    _fake_fashion(tmp_path)
    train, classes = build_dataset("fashion-mnist", tmp_path, "train", img_size=32, in_chans=1)
    test, _ = build_dataset("fashion-mnist", tmp_path, "test", img_size=32, in_chans=1)
    assert classes == 10 and len(train) == 12 and len(test) == 6
    image, label = test[3]
    assert image.shape == (1, 32, 32) and label == 3
    torch.manual_seed(0)
    augmented, _ = train[0]
    assert augmented.shape == (1, 32, 32)


def test_fashion_mnist_torchvision_root(tmp_path: Path) -> None:
    _fake_fashion(tmp_path / "FashionMNIST" / "raw")
    test, _ = build_dataset("fashion-mnist", tmp_path, "test", img_size=28, in_chans=3)
    assert test[0][0].shape == (3, 28, 28)


def test_fashion_mnist_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_dataset("fashion-mnist", tmp_path / "nope", "train", 32, 1)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        build_dataset("fashion-mnist", tmp_path, "train", 32, 1)
    _fake_fashion(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x0d\x01junk"))
    with pytest.raises(ValueError, match="idx"):
        build_dataset("fashion-mnist", tmp_path, "train", 32, 1)


# --------------------------------------------------------------------------- cifar10
def _fake_cifar_npz(path: Path, n_train: int = 10, n_test: int = 4) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {}
    for split, count in (("train", n_train), ("test", n_test)):
        blobs, offsets = [], [0]
        for _ in range(count):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "JPEG")
            blobs.append(np.frombuffer(buffer.getvalue(), dtype=np.uint8))
            offsets.append(offsets[-1] + len(blobs[-1]))
        arrays[f"{split}_jpeg"] = np.concatenate(blobs)
        arrays[f"{split}_offsets"] = np.asarray(offsets, dtype=np.int64)
        arrays[f"{split}_labels"] = (np.arange(count) % 10).astype(np.uint8)
    np.savez(path, classes=np.array(["c"] * 10), **arrays)


def test_cifar10_npz(tmp_path: Path) -> None:
    _fake_cifar_npz(tmp_path / "cifar10-jpeg.npz")
    train, classes = build_dataset("cifar10", tmp_path, "train", img_size=32, in_chans=3)
    test, _ = build_dataset("cifar10", tmp_path / "cifar10-jpeg.npz", "test", 32, 3)
    assert classes == 10 and len(train) == 10 and len(test) == 4
    assert train.images.dtype == torch.uint8 and train.images.shape == (10, 3, 32, 32)
    assert test[1][1] == 1 and test[1][0].shape == (3, 32, 32)
    assert any(key[0].endswith("cifar10-jpeg.npz") for key in CIFAR_CACHE)  # decoded once


def test_cifar10_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_dataset("cifar10", tmp_path / "missing", "train", 32, 3)
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        build_dataset("cifar10", tmp_path, "train", 32, 3)
    np.savez(tmp_path / "bad.npz", train_jpeg=np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="missing arrays"):
        build_dataset("cifar10", tmp_path / "bad.npz", "train", 32, 3)


# --------------------------------------------------------------------------- imagefolder
def _fake_imagefolder(root: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in ("cat", "dog"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(2):
                pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")


def test_imagefolder(tmp_path: Path) -> None:
    _fake_imagefolder(tmp_path)
    train, classes = build_dataset("imagefolder", tmp_path, "train", img_size=16, in_chans=3)
    val, _ = build_dataset("imagefolder", tmp_path, "test", img_size=16, in_chans=3)
    assert classes == 2 and len(train) == 4 and len(val) == 4
    image, label = val[3]
    assert image.shape == (3, 16, 16) and label == 1
    assert train[0][0].shape == (3, 16, 16)


def test_imagefolder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_dataset("imagefolder", tmp_path / "missing", "train", 16, 3)
    with pytest.raises(FileNotFoundError, match="train"):
        build_dataset("imagefolder", tmp_path, "train", 16, 3)
    (tmp_path / "train").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        build_dataset("imagefolder", tmp_path, "train", 16, 3)


# --------------------------------------------------------------------------- real data
def test_shared_fashion_mnist(shared_data: Path) -> None:
    test, _ = build_dataset("fashion-mnist", shared_data / "fashion-mnist", "test", 32, 1)
    assert len(test) == 10000
    assert torch.bincount(test.targets).tolist() == [1000] * 10
