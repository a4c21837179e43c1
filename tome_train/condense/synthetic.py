"""The synthetic set: images, labels and the recipe that made them; save, load, PNG grid.

Images are stored in the normalised space the networks see (as the data registry
normalises real images). A set made with partitioning (IDM) stores each image as a
``k x k`` grid of smaller images; :meth:`SyntheticSet.training_tensors` expands it to
``k * k`` full-size images per stored one, which is what a network trains on.
Saved with ``torch.save`` through the atomic writer and loaded with
``weights_only=True``: the file holds tensors and plain values only.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tome_train.atomic import atomic_save, atomic_write_bytes


def expand_partitions(images: torch.Tensor, labels: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split each image into ``factor x factor`` parts and upsample each part to full size.

    Differentiable in ``images``. Order: all images' part (0, 0), then part (1, 0), ...
    (column by column); labels repeat accordingly.
    """
    if factor < 1:
        raise ValueError(f"partition factor must be >= 1, got {factor}")
    if factor == 1:
        return images, labels
    height, width = images.shape[-2:]
    ph, pw = height // factor, width // factor
    if ph < 1 or pw < 1:
        raise ValueError(f"images of {height}x{width} cannot hold {factor}x{factor} partitions")
    parts = []
    for col in range(factor):
        for row in range(factor):
            part = images[:, :, row * ph:(row + 1) * ph, col * pw:(col + 1) * pw]
            parts.append(F.interpolate(part, size=(height, width), mode="bilinear", align_corners=False))
    return torch.cat(parts), labels.repeat(factor * factor)


def plain_values(value: Any) -> Any:
    """``value`` as JSON-like plain values (what ``torch.load(weights_only=True)`` accepts)."""
    return json.loads(json.dumps(value, default=str))


@dataclass
class SyntheticSet:
    """``images`` (N x C x H x W, normalised), ``labels`` (N), ``recipe`` (plain values)."""

    images: torch.Tensor
    labels: torch.Tensor
    recipe: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.labels.ndim != 1 or self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(f"expected N x C x H x W images and N labels, got {tuple(self.images.shape)} "
                             f"and {tuple(self.labels.shape)}")

    @property
    def partitions(self) -> int:
        return int(self.recipe.get("partitions", 1))

    def training_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What a network trains on: the stored images, expanded when partitioned."""
        with torch.no_grad():
            return expand_partitions(self.images.detach(), self.labels, self.partitions)

    def save(self, path: str | Path) -> None:
        atomic_save({"images": self.images.detach().cpu().contiguous(), "labels": self.labels.cpu().long(),
                     "recipe": plain_values(self.recipe)}, path)

    @classmethod
    def load(cls, path: str | Path) -> SyntheticSet:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"synthetic set {path} does not exist")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated, not a torch file, or holding objects outside the allow-list
            raise ValueError(f"{path}: not a readable synthetic set (a synthetic.pt of tools/condense.py holds "
                             f"tensors and plain values only; loading failed with {type(err).__name__})") from None
        if not isinstance(data, dict) or not {"images", "labels"} <= set(data):
            raise ValueError(f"{path}: not a synthetic set (expected a dict with 'images' and 'labels')")
        return cls(data["images"], data["labels"], dict(data.get("recipe") or {}))

    def grid_png(self, mean: Sequence[float], std: Sequence[float], nrow: int | None = None) -> bytes:
        """PNG bytes of the images (one row per class when sorted by label), de-normalised."""
        from PIL import Image
        from torchvision.utils import make_grid

        images = self.images.detach().cpu().float()
        chans = images.shape[1]
        if len(mean) != chans or len(std) != chans:
            raise ValueError(f"mean/std need {chans} entries, got {len(mean)} and {len(std)}")
        images = images * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
        if nrow is None:
            classes = int(self.labels.unique().numel()) or 1
            per_class = max(1, images.shape[0] // classes)
            nrow = per_class if per_class > 1 else classes
        grid = make_grid(images.clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
        array = grid.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    def save_grid(self, path: str | Path, mean: Sequence[float], std: Sequence[float],
                  nrow: int | None = None) -> None:
        atomic_write_bytes(self.grid_png(mean, std, nrow), path)
