"""Differentiable Siamese augmentation (DSA) for condensation.

Each call picks one transform group at random from the strategy (``color`` = brightness,
saturation and contrast; ``crop``; ``cutout``; ``flip``; ``scale``; ``rotate``) and applies
it with random parameters. Every transform is a differentiable function of the images,
so gradients reach synthetic pixels through it.

*Siamese*: the real and the synthetic batch of a class must see the same transform, or
matching them would compare differently transformed images. :meth:`DiffAugment.siamese`
draws one set of parameters (shared by every image of both batches) and applies it to
each batch. During evaluation training, :meth:`DiffAugment.__call__` draws per-image
parameters instead. All randomness comes from a ``torch.Generator`` the caller passes,
never from the wall clock or the global generator, so runs repeat exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"
#: transforms of each strategy group, applied in this order
GROUPS: dict[str, tuple[str, ...]] = {
    "color": ("brightness", "saturation", "contrast"),
    "crop": ("crop",),
    "cutout": ("cutout",),
    "flip": ("flip",),
    "scale": ("scale",),
    "rotate": ("rotate",),
}


@dataclass(frozen=True)
class AugmentParams:
    """Strengths of the transforms (the DSA paper's values)."""

    flip_prob: float = 0.5
    scale_ratio: float = 1.2  # each axis scaled by a factor in [1/ratio, ratio]
    rotate_degrees: float = 15.0  # angle in [-deg, deg]
    crop_pad_ratio: float = 0.125  # shift of up to this fraction of the side, zero fill
    cutout_ratio: float = 0.5  # side of the zeroed square as a fraction of the image side
    brightness: float = 1.0  # add (u - 0.5) * brightness
    saturation: float = 2.0  # scale the deviation from the channel mean by u * saturation
    contrast: float = 0.5  # scale the deviation from the image mean by u + contrast


@dataclass
class AugmentDraw:
    """One random draw: the chosen group and, per transform parameter, ``[n]`` values.

    ``n`` is 1 for a shared (Siamese) draw, which then applies to batches of any size.
    """

    group: str
    values: dict[str, torch.Tensor] = field(default_factory=dict)


def parse_strategy(strategy: str | None) -> tuple[str, ...]:
    """``"color_crop_..."`` -> group names; ``None``/``""``/``"none"`` -> no augmentation."""
    if strategy is None or strategy.lower() in ("", "none"):
        return ()
    groups = tuple(strategy.split("_"))
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"augmentation strategy {strategy!r}: unknown group(s) {unknown}; "
                         f"choose from {sorted(GROUPS)} joined by '_'")
    return groups


class DiffAugment:
    """DSA with a given strategy; ``bool(aug)`` is False for the empty strategy."""

    def __init__(self, strategy: str | None = DEFAULT_STRATEGY, params: AugmentParams | None = None) -> None:
        self.groups = parse_strategy(strategy)
        self.strategy = "_".join(self.groups) if self.groups else "none"
        self.params = params or AugmentParams()

    def __bool__(self) -> bool:
        return bool(self.groups)

    # ------------------------------------------------------------------ draws
    def draw(self, generator: torch.Generator, n: int, height: int, width: int) -> AugmentDraw:
        """Pick a group and draw ``n`` parameter values per transform (``n=1``: shared)."""
        if not self.groups:
            raise ValueError("draw() on an empty augmentation strategy")
        group = self.groups[int(torch.randint(len(self.groups), (1,), generator=generator))]
        p = self.params
        values: dict[str, torch.Tensor] = {}

        def uniform() -> torch.Tensor:
            return torch.rand(n, generator=generator)

        for op in GROUPS[group]:
            if op in ("brightness", "saturation", "contrast", "flip"):
                values[op] = uniform()
            elif op == "scale":
                low = 1.0 / p.scale_ratio
                values["scale_h"] = uniform() * (p.scale_ratio - low) + low
                values["scale_w"] = uniform() * (p.scale_ratio - low) + low
            elif op == "rotate":
                values["angle"] = (uniform() - 0.5) * 2.0 * math.radians(p.rotate_degrees)
            elif op == "crop":
                shift_h, shift_w = _crop_shift(height, p), _crop_shift(width, p)
                values["shift_h"] = torch.randint(-shift_h, shift_h + 1, (n,), generator=generator)
                values["shift_w"] = torch.randint(-shift_w, shift_w + 1, (n,), generator=generator)
            elif op == "cutout":
                size_h, size_w = _cutout_size(height, p), _cutout_size(width, p)
                # Centres range over the image; an even-sized square may start one row earlier.
                values["centre_h"] = torch.randint(0, height + (1 - size_h % 2), (n,), generator=generator)
                values["centre_w"] = torch.randint(0, width + (1 - size_w % 2), (n,), generator=generator)
        return AugmentDraw(group, values)

    def siamese(self, generator: torch.Generator, *batches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Apply ONE shared draw to every batch (e.g. the real and the synthetic images of a class)."""
        if not self.groups:
            return batches
        height, width = batches[0].shape[-2:]
        for batch in batches[1:]:
            if batch.shape[-2:] != (height, width):
                raise ValueError(f"siamese batches must share H x W, got {tuple(batch.shape)} "
                                 f"and {tuple(batches[0].shape)}")
        shared = self.draw(generator, 1, height, width)
        return tuple(self.apply(batch, shared) for batch in batches)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Independent parameters per image (evaluation training)."""
        if not self.groups:
            return images
        return self.apply(images, self.draw(generator, images.shape[0], *images.shape[-2:]))

    # ------------------------------------------------------------------ apply
    def apply(self, x: torch.Tensor, draw: AugmentDraw) -> torch.Tensor:
        """Apply a draw to ``x`` (``B x C x H x W``); shared values broadcast over the batch."""
        if x.ndim != 4:
            raise ValueError(f"expected B x C x H x W images, got shape {tuple(x.shape)}")
        batch = x.shape[0]
        v = {k: _per_sample(t, batch, x.device) for k, t in draw.values.items()}
        p = self.params
        for op in GROUPS[draw.group]:
            if op == "brightness":
                x = x + (_col(v["brightness"], x) - 0.5) * p.brightness
            elif op == "saturation":
                mean = x.mean(dim=1, keepdim=True)
                x = (x - mean) * (_col(v["saturation"], x) * p.saturation) + mean
            elif op == "contrast":
                mean = x.mean(dim=(1, 2, 3), keepdim=True)
                x = (x - mean) * (_col(v["contrast"], x) + p.contrast) + mean
            elif op == "flip":
                x = torch.where(_col(v["flip"], x) < p.flip_prob, x.flip(3), x)
            elif op == "scale":
                zero = torch.zeros_like(v["scale_h"])
                theta = torch.stack([torch.stack([v["scale_h"], zero, zero], -1),
                                     torch.stack([zero, v["scale_w"], zero], -1)], 1)
                x = _warp(x, theta)
            elif op == "rotate":
                cos, sin, zero = v["angle"].cos(), v["angle"].sin(), torch.zeros_like(v["angle"])
                theta = torch.stack([torch.stack([cos, -sin, zero], -1),
                                     torch.stack([sin, cos, zero], -1)], 1)
                x = _warp(x, theta)
            elif op == "crop":
                x = _translate(x, v["shift_h"], v["shift_w"], _crop_shift(x.shape[2], p),
                               _crop_shift(x.shape[3], p))
            elif op == "cutout":
                x = _cutout(x, v["centre_h"], v["centre_w"], _cutout_size(x.shape[2], p),
                            _cutout_size(x.shape[3], p))
        return x.contiguous()


def _crop_shift(side: int, p: AugmentParams) -> int:
    return int(side * p.crop_pad_ratio + 0.5)


def _cutout_size(side: int, p: AugmentParams) -> int:
    return int(side * p.cutout_ratio + 0.5)


def _per_sample(values: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    if values.shape[0] == 1:
        values = values.expand(batch)
    elif values.shape[0] != batch:
        raise ValueError(f"a draw of {values.shape[0]} values cannot apply to a batch of {batch}")
    return values.to(device)


def _col(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return values.to(x.dtype).view(-1, 1, 1, 1)


def _warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Affine resampling (bilinear, zeros outside), differentiable in ``x``."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _translate(x: torch.Tensor, dh: torch.Tensor, dw: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """out[b, :, i, j] = x[b, :, i + dh[b], j + dw[b]], zero where that falls outside."""
    batch, _, height, width = x.shape
    padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h))
    rows = torch.arange(height, device=x.device).unsqueeze(0) + pad_h + dh.view(-1, 1)
    cols = torch.arange(width, device=x.device).unsqueeze(0) + pad_w + dw.view(-1, 1)
    index = torch.arange(batch, device=x.device).view(-1, 1, 1)
    # Advanced indices around a slice: the result is B x H x W x C.
    return padded[index, :, rows.unsqueeze(2), cols.unsqueeze(1)].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ch: torch.Tensor, cw: torch.Tensor, size_h: int, size_w: int) -> torch.Tensor:
    """Zero a ``size_h x size_w`` square centred at (ch, cw) (clipped at the borders)."""
    height, width = x.shape[2:]
    rows = torch.arange(height, device=x.device).unsqueeze(0)
    cols = torch.arange(width, device=x.device).unsqueeze(0)
    top, left = (ch - size_h // 2).view(-1, 1), (cw - size_w // 2).view(-1, 1)
    in_rows = (rows >= top) & (rows < top + size_h)
    in_cols = (cols >= left) & (cols < left + size_w)
    keep = ~(in_rows.unsqueeze(2) & in_cols.unsqueeze(1))
    return x * keep.unsqueeze(1).to(x.dtype)
