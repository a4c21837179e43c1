"""Training augmentation settings shared by the in-memory and the per-item pipelines.

Two recipes exist. Small images (the built-in Fashion-MNIST / CIFAR-10 sets and image
folders of small pictures) are held as tensors and get a random crop with zero padding
plus flips. Large images are read per item and get timm's ImageNet recipe (random
resized crop, flips, optional colour jitter, AutoAugment / RandAugment, random erasing).

Every field of :class:`Augmentation` may be ``None``, meaning "the data set's default";
:meth:`Augmentation.resolve` fills those in for one pipeline and rejects settings that
pipeline cannot honour (a ``--scale`` for tensors would otherwise be silently ignored).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

TENSOR = "tensor"
PER_ITEM = "per-item"
# Fields only the per-item (PIL, timm) pipeline understands, with their command-line names.
_PER_ITEM_ONLY = {"scale": "--scale", "ratio": "--ratio", "color_jitter": "--color-jitter",
                  "auto_augment": "--aa", "reprob": "--reprob"}
_TENSOR_ONLY = {"crop_pad": "--crop-pad"}
# timm's ImageNet training defaults, with colour jitter off unless asked for.
PER_ITEM_DEFAULTS = {"scale": (0.08, 1.0), "ratio": (3 / 4, 4 / 3), "hflip": 0.5, "vflip": 0.0,
                     "color_jitter": 0.0, "auto_augment": None, "reprob": 0.0}


@dataclass(frozen=True)
class Augmentation:
    """Training-time augmentation; ``None`` fields take the pipeline's default."""

    hflip: float | None = None
    vflip: float | None = None
    crop_pad: int | None = None
    scale: tuple[float, float] | None = None
    ratio: tuple[float, float] | None = None
    color_jitter: float | None = None
    auto_augment: str | None = None
    reprob: float | None = None

    def __post_init__(self) -> None:
        for name in ("hflip", "vflip", "reprob"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"--{name}: a probability in [0, 1] was expected, got {value}")
        if self.crop_pad is not None and self.crop_pad < 0:
            raise ValueError(f"--crop-pad: a pixel count >= 0 was expected, got {self.crop_pad}")
        if self.color_jitter is not None and self.color_jitter < 0:
            raise ValueError(f"--color-jitter: a strength >= 0 was expected, got {self.color_jitter}")
        if self.scale is not None:
            low, high = self.scale
            if not 0.0 < low <= high <= 1.0:
                raise ValueError(f"--scale: two area fractions 0 < LOW <= HIGH <= 1 were expected, got {low} {high}")
        if self.ratio is not None:
            low, high = self.ratio
            if not 0.0 < low <= high:
                raise ValueError(f"--ratio: two aspect ratios 0 < LOW <= HIGH were expected, got {low} {high}")

    def given(self) -> dict[str, object]:
        """The fields set explicitly (not ``None``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    def resolve(self, pipeline: str, defaults: dict[str, object]) -> Augmentation:
        """Fill ``None`` fields from ``defaults``; raise for fields ``pipeline`` cannot apply."""
        foreign = _PER_ITEM_ONLY if pipeline == TENSOR else _TENSOR_ONLY
        wrong = [flag for name, flag in foreign.items() if getattr(self, name) is not None]
        if wrong:
            verb = "applies" if len(wrong) == 1 else "apply"
            if pipeline == TENSOR:
                raise ValueError(f"{', '.join(wrong)} {verb} only to folders of large images (read per item); "
                                 "this data set is held in memory as small images: random crop (--crop-pad) "
                                 "and flips (--hflip, --vflip)")
            raise ValueError(f"{', '.join(wrong)} {verb} only to small images held in memory; this folder's "
                             "images are large and read per item: random resized crop (--scale, --ratio), "
                             "flips, --color-jitter, --aa, --reprob")
        filled = {name: value for name, value in defaults.items() if getattr(self, name) is None}
        return dataclasses.replace(self, **filled)

    def describe(self, pipeline: str) -> str:
        """Short human-readable summary of a resolved augmentation."""
        if pipeline == TENSOR:
            parts = [f"crop pad {self.crop_pad}", f"hflip {self.hflip:g}"]
            if self.vflip:
                parts.append(f"vflip {self.vflip:g}")
            return ", ".join(parts)
        parts = [f"scale {self.scale[0]:g}-{self.scale[1]:g}", f"hflip {self.hflip:g}"]  # type: ignore[index]
        if self.vflip:
            parts.append(f"vflip {self.vflip:g}")
        if self.color_jitter and not self.auto_augment:  # timm turns jitter off under AutoAugment
            parts.append(f"color jitter {self.color_jitter:g}")
        if self.auto_augment:
            parts.append(f"aa {self.auto_augment}")
        if self.reprob:
            parts.append(f"reprob {self.reprob:g}")
        return ", ".join(parts)


def tensor_defaults(crop_pad: int, hflip: float = 0.5) -> dict[str, object]:
    """Defaults of the in-memory small-image pipeline."""
    return {"crop_pad": crop_pad, "hflip": hflip, "vflip": 0.0}


# The built-in sets' training augmentation (digits: too small for crops or flips to keep the digit).
BUILTIN_TENSOR_DEFAULTS = {
    "digits": tensor_defaults(crop_pad=0, hflip=0.0),
    "fashion-mnist": tensor_defaults(crop_pad=4),
    "cifar10": tensor_defaults(crop_pad=4),
}


def augment_tensor(image: torch.Tensor, pad: int, hflip: float, vflip: float) -> torch.Tensor:
    """Random crop after zero padding, then flips, of one ``C x H x W`` float image.

    Randomness comes from torch's global generator (checkpointed by the engine). A
    probability of 0 draws nothing, so disabled steps do not shift the random stream.
    """
    _, height, width = image.shape
    if pad > 0:
        image = F.pad(image, (pad, pad, pad, pad))
        top = int(torch.randint(0, 2 * pad + 1, (1,)).item())
        left = int(torch.randint(0, 2 * pad + 1, (1,)).item())
        image = image[:, top : top + height, left : left + width]
    if hflip > 0 and torch.rand(()).item() < hflip:
        image = image.flip(-1)
    if vflip > 0 and torch.rand(()).item() < vflip:
        image = image.flip(-2)
    return image


def per_item_train_transform(augmentation: Augmentation, img_size: int, mean, std):  # noqa: ANN001, ANN201
    """timm's ImageNet training transform (PIL in, normalised tensor out)."""
    from timm.data import create_transform

    aug = augmentation
    try:
        return create_transform(
            img_size, is_training=True, scale=aug.scale, ratio=aug.ratio, hflip=aug.hflip,
            vflip=aug.vflip, color_jitter=aug.color_jitter or None, auto_augment=aug.auto_augment,
            interpolation="bilinear", mean=tuple(mean), std=tuple(std), re_prob=aug.reprob or 0.0,
            re_mode="pixel",
        )
    except (AssertionError, KeyError, ValueError) as err:
        if aug.auto_augment is None:
            raise
        raise ValueError(f"--aa: timm does not understand {aug.auto_augment!r} ({err!r}); "
                         "e.g. rand-m9-mstd0.5-inc1, augmix-m5-w4-d2, original, v0") from None
