"""The real training set as one normalised tensor, indexed by class.

Every method draws "``n`` random real images of class ``c``" many times per iteration,
so the set is decoded and normalised once and sampled by index. Draws use the caller's
``torch.Generator``: the same seed gives the same batches.
"""

from __future__ import annotations

import functools

import torch
from torch.utils.data import Dataset

from tome_train.data.tensor_dataset import TensorImageDataset


def dataset_tensors(dataset: Dataset, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """All items of a (non-augmenting) data set as ``(float images N x C x H x W, long labels)``."""
    if isinstance(dataset, TensorImageDataset) and not dataset.augment:
        images = []
        for start in range(0, len(dataset), chunk):
            part = dataset.images[start:start + chunk]
            part = part.float().div_(255.0) if part.dtype == torch.uint8 else part.float()
            images.append((part - dataset.mean) / dataset.std)
        return torch.cat(images), dataset.targets.clone()
    items = [dataset[i] for i in range(len(dataset))]  # type: ignore[arg-type]
    return torch.stack([torch.as_tensor(x) for x, _ in items]).float(), torch.tensor([int(y) for _, y in items])


class RealPool:
    """Normalised real images grouped by class; ``sample`` draws without replacement."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
        if images.ndim != 4 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"expected N x C x H x W images and N labels, got {tuple(images.shape)} "
                             f"and {tuple(labels.shape)}")
        labels = labels.long()
        if num_classes < 1 or (labels.numel() and (labels.min() < 0 or labels.max() >= num_classes)):
            raise ValueError(f"labels must lie in [0, {num_classes}), got range "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        self.images = images
        self.labels = labels
        self.num_classes = num_classes
        self.class_indices = [torch.nonzero(labels == c).flatten() for c in range(num_classes)]

    @classmethod
    def from_dataset(cls, dataset: Dataset, num_classes: int) -> RealPool:
        images, labels = dataset_tensors(dataset)
        return cls(images, labels, num_classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @functools.cached_property
    def fingerprint(self) -> dict:
        """Size, image shape, class sizes and a checksum (float64 sum) of the images; computed
        once, in chunks (no full-size copy), and the same on any device."""
        checksum = sum(float(part.detach().cpu().double().sum()) for part in self.images.split(4096))
        return {"images": int(self.images.shape[0]), "image_shape": list(self.image_shape),
                "class_sizes": [self.class_size(c) for c in range(self.num_classes)], "checksum": checksum}

    def class_size(self, c: int) -> int:
        return int(self.class_indices[c].numel())

    def to(self, device: torch.device | str) -> RealPool:
        self.images = self.images.to(device)
        self.labels = self.labels.to(device)
        return self

    def sample_indices(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """Indices of ``min(n, class size)`` distinct random images of class ``c``."""
        members = self.class_indices[c]
        return members[torch.randperm(members.numel(), generator=generator)[:n]]

    def sample(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """``min(n, class size)`` distinct random images of class ``c``."""
        return self.images[self.sample_indices(c, n, generator).to(self.images.device)]

    def sample_any(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` distinct random images of any class, with their labels."""
        index = torch.randperm(self.labels.numel(), generator=generator)[:n].to(self.images.device)
        return self.images[index], self.labels[index]

    def check_ipc(self, ipc: int) -> None:
        """``ipc`` must be >= 1 and at most the smallest class (initialisation draws that many)."""
        if ipc < 1:
            raise ValueError(f"--ipc must be >= 1, got {ipc}")
        sizes = [self.class_size(c) for c in range(self.num_classes)]
        smallest = min(sizes)
        if ipc > smallest:
            raise ValueError(f"--ipc {ipc} exceeds the size of class {sizes.index(smallest)} "
                             f"({smallest} training images)")
