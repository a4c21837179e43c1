"""Every condensation method on tiny data: it runs, moves the images, counts its cost, repeats exactly."""

from __future__ import annotations

import pytest
import torch
from timm.models import register_model
from torch import nn

from tome_train.condense import METHODS, RealPool, get_method
from tome_train.condense.dc import published_loops

TINY_NET = {"width": 16}
FAST = {  # keep each iteration to a fraction of a second
    "dc": {"batch_real": 8},
    "dsa": {"batch_real": 8},
    "dm": {"batch_real": 8},
    "cafe": {"batch_real": 8, "window": 2, "probe_per_class": 4, "max_outer_steps": 3, "max_inner_epochs": 3},
    "idm": {"batch_real": 8, "train_batch": 8, "train_steps": 2, "push_interval": 1, "queue_size": 3},
}


def tiny_pool(seed: int = 0) -> RealPool:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(2).repeat_interleave(12)
    images = torch.randn(24, 1, 8, 8, generator=gen) + labels.view(-1, 1, 1, 1).float()
    return RealPool(images, labels, 2)


def condense(method: str, ipc: int = 1, seed: int = 0, iterations: int = 2, **options):
    cls = get_method(method)
    config = cls.config_class().replace({**FAST[method], **options})
    condenser = cls(tiny_pool(), ipc, config, model="convnet3", seed=seed, model_kwargs=TINY_NET)
    before = condenser.images.detach().clone()
    info = condenser.run(iterations, progress=False)
    return condenser, before, info


@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_moves_images_and_counts_cost(method: str) -> None:
    condenser, before, info = condense(method, ipc=2)
    after = condenser.images.detach()
    assert after.shape == before.shape == (4, 1, 8, 8)
    assert not torch.equal(after, before) and torch.isfinite(after).all()
    assert len(info["losses"]) == 2 and all(torch.isfinite(torch.tensor(info["losses"])))
    assert condenser.cost.forward_samples > 0 and condenser.gflops_per_sample > 0
    synthetic = condenser.synthetic_set()
    assert synthetic.recipe["method"] == method and synthetic.labels.tolist() == [0, 0, 1, 1]
    images, labels = synthetic.training_tensors()
    assert images.shape[0] == labels.shape[0] == 4 * (4 if method == "idm" else 1)  # IDM: 2 x 2 parts


@pytest.mark.parametrize("method", ["dsa", "dm", "idm"])
def test_same_seed_same_set_bitwise(method: str) -> None:
    first = condense(method, seed=3)[0].images.detach()
    second = condense(method, seed=3)[0].images.detach()
    other = condense(method, seed=4)[0].images.detach()
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_noise_initialisation() -> None:
    cls = get_method("dm")
    condenser = cls(tiny_pool(), 1, cls.config_class().replace(FAST["dm"]), init="noise",
                    model_kwargs=TINY_NET)
    assert not any(torch.equal(condenser.images[0], img) for img in tiny_pool().images)


def test_dc_loops_follow_the_published_table() -> None:
    assert published_loops(1) == (1, 1) and published_loops(10) == (10, 50) and published_loops(50) == (50, 10)
    assert published_loops(12) == (10, 50)
    config = get_method("dc").config_class().resolve(10)
    assert (config.outer_loop, config.inner_loop) == (10, 50)


def test_dc_gradient_matching_trains_the_network_between_outer_steps() -> None:
    condenser, _, _ = condense("dc", ipc=2, iterations=1, outer_loop=2, inner_loop=1)
    # 2 outer steps x 2 classes x (8 real + 2 synthetic) plus one inner epoch on 4 images
    assert condenser.cost.double_backward_samples == 2 * 2 * 2
    assert condenser.cost.backward_samples == 2 * 2 * (8 + 2) + 4


def test_cafe_loops_are_bounded_and_recorded() -> None:
    condenser, _, _ = condense("cafe", iterations=1)
    (updates, epochs), = condenser.loop_counts
    assert 1 <= updates <= 3 and epochs <= 3 * (updates - 1) + 3


def test_idm_queue_grows_and_caps() -> None:
    condenser, _, _ = condense("idm", iterations=3)
    assert len(condenser.queue) == 3  # 3 initial + one per iteration, capped at queue_size 3
    assert condenser.partitions == 2


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        get_method("kip")
    with pytest.raises(ValueError, match="unknown option"):
        get_method("dm").config_class().replace({"lr_image": 1.0})
    with pytest.raises(ValueError, match="exceeds the size of class"):
        get_method("dm")(tiny_pool(), 13, model_kwargs=TINY_NET)
    with pytest.raises(ValueError, match="iterations"):
        condense("dm", iterations=0)


class _NoFeatures(nn.Module):
    def __init__(self, num_classes: int = 2, in_chans: int = 1, img_size: int = 8, **_) -> None:
        super().__init__()
        self.fc = nn.Linear(in_chans * img_size * img_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


@register_model
def condense_test_no_features(pretrained: bool = False, **kwargs) -> nn.Module:
    return _NoFeatures(**kwargs)


def test_model_without_forward_features_is_rejected() -> None:
    with pytest.raises(ValueError, match="forward_features"):
        get_method("dm")(tiny_pool(), 1, model="condense_test_no_features")


def test_cafe_inner_loop_capped_at_one_window_runs_without_probes() -> None:
    condenser, _, _ = condense("cafe", iterations=1, max_inner_epochs=2, max_outer_steps=3)
    (updates, epochs), = condenser.loop_counts
    assert epochs == 2 * (updates - 1)
    probes = 2 * 4 * updates  # one probe of 4 images x 2 classes per synthetic update only
    real, synthetic, inner = updates * 2 * 8, updates * 2, epochs * 2
    assert condenser.cost.forward_samples == real + synthetic + inner + probes
