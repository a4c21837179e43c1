"""Differentiable Siamese augmentation: shared draws, semantics of each transform, gradients, seeding."""

from __future__ import annotations

import pytest
import torch

from tome_train.condense.augment import GROUPS, AugmentDraw, DiffAugment


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_siamese_draw_is_one_transform_for_both_batches(group: str) -> None:
    aug = DiffAugment(group)
    real, syn = torch.randn(5, 3, 8, 8), torch.randn(2, 3, 8, 8)
    syn[0] = real[3]  # the same image in both batches must come out the same
    out_real, out_syn = aug.siamese(_gen(1), real, syn)
    (out_both,) = aug.siamese(_gen(1), torch.cat([real, syn]))
    assert torch.equal(torch.cat([out_real, out_syn]), out_both)
    assert torch.equal(out_real[3], out_syn[0])


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_gradients_reach_the_images(group: str) -> None:
    aug = DiffAugment(group)
    x = torch.randn(3, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    draw = aug.draw(_gen(2), 3, 8, 8)
    assert torch.autograd.gradcheck(lambda t: aug.apply(t, draw), (x,))
    (out,) = aug.siamese(_gen(3), x)
    out.pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_per_image_draws_differ_and_are_seeded() -> None:
    aug = DiffAugment("scale")
    x = torch.randn(1, 1, 8, 8).expand(4, 1, 8, 8).contiguous()
    out = aug(x, _gen(0))
    assert not torch.equal(out[0], out[1])
    assert torch.equal(out, aug(x, _gen(0)))
    assert not torch.equal(out, aug(x, _gen(1)))


def test_transform_semantics() -> None:
    aug = DiffAugment("flip_crop_cutout_color")
    x = torch.arange(64.0).view(1, 1, 8, 8)
    flipped = aug.apply(x, AugmentDraw("flip", {"flip": torch.tensor([0.2])}))
    assert torch.equal(flipped, x.flip(3))
    kept = aug.apply(x, AugmentDraw("flip", {"flip": torch.tensor([0.7])}))
    assert torch.equal(kept, x)
    shifted = aug.apply(x, AugmentDraw("crop", {"shift_h": torch.tensor([1]), "shift_w": torch.tensor([0])}))
    assert torch.equal(shifted[0, 0, :7], x[0, 0, 1:]) and shifted[0, 0, 7].abs().sum() == 0
    cut = aug.apply(torch.ones(1, 1, 8, 8), AugmentDraw("cutout", {"centre_h": torch.tensor([4]),
                                                                   "centre_w": torch.tensor([0])}))
    assert cut[0, 0, 2:6, 0:2].abs().sum() == 0 and cut.sum() == 64 - 8  # 4x4 square clipped at the left
    grey = torch.full((1, 1, 4, 4), 0.3)
    bright = aug.apply(grey, AugmentDraw("color", {"brightness": torch.tensor([1.0]),
                                                   "saturation": torch.tensor([0.5]),
                                                   "contrast": torch.tensor([0.5])}))
    assert torch.allclose(bright, grey + 0.5)  # uniform image: saturation and contrast leave it


def test_empty_and_bad_strategies() -> None:
    assert not DiffAugment("none") and not DiffAugment(None)
    x = torch.randn(2, 1, 4, 4)
    assert DiffAugment("none")(x, _gen()) is x
    with pytest.raises(ValueError, match="unknown group"):
        DiffAugment("color_blur")
