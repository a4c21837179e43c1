"""In-memory image tensors with the standard small-image augmentation.

Fashion-MNIST, CIFAR-10 and digits are small enough to hold decoded in memory.
Doing the augmentation on tensors (instead of PIL round-trips per item) keeps CPU
data loading cheap, and drawing randomness from torch's global generator makes
it reproducible: the engine checkpoints and restores that generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .augment import augment_tensor


def match_channels(images: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Convert ``N x C x H x W`` images to ``in_chans`` channels (repeat grey, average colour)."""
    channels = images.shape[1]
    if channels == in_chans:
        return images
    if channels == 1:
        return images.repeat(1, in_chans, 1, 1)
    if in_chans == 1:
        return images.float().mean(dim=1, keepdim=True).round().to(images.dtype)
    raise ValueError(f"cannot convert {channels}-channel images to in_chans={in_chans}")


def resize_images(images: torch.Tensor, img_size: int, chunk: int = 4096) -> torch.Tensor:
    """Bilinear resize of a whole ``N x C x H x W`` tensor once at load time (keeps dtype)."""
    if images.shape[-2:] == (img_size, img_size):
        return images
    out = []
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk].float()
        part = F.interpolate(part, size=(img_size, img_size), mode="bilinear", align_corners=False)
        if images.dtype == torch.uint8:
            part = part.round().clamp_(0, 255).to(torch.uint8)
        out.append(part)
    return torch.cat(out)


class TensorImageDataset(Dataset):
    """Images held as one tensor (uint8 in [0, 255] or float in [0, 1]) plus int labels.

    ``augment`` applies random crop with ``padding`` pixels of zero padding and flips
    (horizontal with probability ``hflip``, vertical with ``vflip``), the usual recipe
    for 32x32 data; normalisation with ``mean``/``std`` always runs.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool = False,
        padding: int = 4,
        hflip: float = 0.5,
        vflip: float = 0.0,
    ) -> None:
        if images.ndim != 4:
            raise ValueError(f"expected N x C x H x W images, got shape {tuple(images.shape)}")
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean/std need {channels} entries")
        self.images = images
        self.targets = labels.long()
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.augment = augment
        self.padding = padding
        self.hflip = hflip
        self.vflip = vflip

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def _to_unit(self, image: torch.Tensor) -> torch.Tensor:
        if image.dtype == torch.uint8:
            return image.float().div_(255.0)
        return image.float()

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self._to_unit(self.images[index])
        if self.augment:
            image = augment_tensor(image, self.padding, self.hflip, self.vflip)
        image = (image - self.mean) / self.std
        return image, int(self.targets[index])
