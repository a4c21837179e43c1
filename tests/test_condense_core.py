"""Shared condensation parts: distances, real pool, synthetic container, evaluation protocol."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tome_train.condense import (
    EvalProtocol,
    RealPool,
    StepSchedule,
    SyntheticSet,
    expand_partitions,
    gradient_distance,
    mean_embedding_distance,
    train_and_test,
)
from tome_train.condense.matching import matched_parameters


def test_gradient_distance_by_hand() -> None:
    g_syn = [torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([5.0, -1.0])]
    g_real = [torch.tensor([[2.0, 0.0], [1.0, 1.0]]), torch.tensor([1.0, 1.0])]
    # Row 0: same direction (1 - 1 = 0); row 1: cos 45 deg; the 1-D tensor (a bias) is not matched.
    expected = 1.0 - 1.0 / math.sqrt(2.0)
    assert gradient_distance(g_syn, g_real).item() == pytest.approx(expected, abs=1e-5)
    conv_s, conv_r = torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    conv_s[0, 0, 0, 0] = conv_r[0, 0, 0, 0] = 1.0  # channel 0 aligned
    conv_s[1, 0, 0, 0], conv_r[1, 0, 1, 1] = 1.0, 1.0  # channel 1 orthogonal
    assert gradient_distance([conv_s], [conv_r]).item() == pytest.approx(1.0, abs=1e-5)


def test_matched_parameters_skip_biases_and_norms() -> None:
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(4, 4), nn.Flatten(), nn.Linear(4, 2))
    shapes = [tuple(p.shape) for p in matched_parameters(net)]
    assert shapes == [(4, 1, 3, 3), (2, 4)]


def test_mean_embedding_distance_by_hand() -> None:
    real = torch.tensor([[0.0, 2.0], [2.0, 2.0]])  # mean (1, 2)
    syn = torch.tensor([[1.0, 0.0]])
    assert mean_embedding_distance(real, syn).item() == pytest.approx(4.0)


def test_real_pool_samples_by_class_and_checks_ipc() -> None:
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 1])
    images = labels.float().view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    pool = RealPool(images, labels, 2)
    batch = pool.sample(1, 10, torch.Generator().manual_seed(0))
    assert batch.shape[0] == 4 and (batch == 1).all()
    assert torch.equal(pool.sample_indices(0, 2, torch.Generator().manual_seed(5)),
                       pool.sample_indices(0, 2, torch.Generator().manual_seed(5)))
    pool.check_ipc(3)
    with pytest.raises(ValueError, match="exceeds the size of class 0"):
        pool.check_ipc(4)


def test_synthetic_set_round_trip_and_grid(tmp_path) -> None:
    images, labels = torch.randn(4, 3, 8, 8), torch.tensor([0, 0, 1, 1])
    synthetic = SyntheticSet(images, labels, {"method": "dm", "ipc": 2, "config": {"w": (1, 2)}})
    synthetic.save(tmp_path / "s.pt")
    loaded = SyntheticSet.load(tmp_path / "s.pt")
    assert torch.equal(loaded.images, images) and torch.equal(loaded.labels, labels)
    assert loaded.recipe == {"method": "dm", "ipc": 2, "config": {"w": [1, 2]}}
    raw = torch.load(tmp_path / "s.pt", weights_only=True)
    assert set(raw) == {"images", "labels", "recipe"}
    synthetic.save_grid(tmp_path / "s.png", [0.5] * 3, [0.25] * 3)
    from PIL import Image

    assert Image.open(tmp_path / "s.png").size == (2 * 8 + 3 * 2, 2 * 8 + 3 * 2)  # 2 x 2 grid, padding 2
    with pytest.raises(FileNotFoundError):
        SyntheticSet.load(tmp_path / "missing.pt")


def test_partitions_expand_each_image_into_k_squared() -> None:
    image = torch.zeros(1, 1, 4, 4)
    image[..., :2, :2], image[..., 2:, :2], image[..., :2, 2:], image[..., 2:, 2:] = 1, 2, 3, 4
    expanded, labels = expand_partitions(image, torch.tensor([7]), 2)
    assert expanded.shape == (4, 1, 4, 4) and labels.tolist() == [7] * 4
    assert [float(e.mean()) for e in expanded] == [1, 2, 3, 4]
    stored = SyntheticSet(image, torch.tensor([7]), {"partitions": 2})
    assert stored.training_tensors()[0].shape == (4, 1, 4, 4)


def test_step_schedule_divides_at_half() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = StepSchedule(opt, 0.01, epochs=10)
    assert schedule.step(4, 0, 1) == pytest.approx(0.01)
    assert schedule.step(5, 0, 1) == pytest.approx(0.001)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)


def test_evaluation_trains_through_the_engine_and_is_seeded() -> None:
    gen = torch.Generator().manual_seed(0)
    images, labels = torch.randn(8, 1, 8, 8, generator=gen), torch.tensor([0, 1] * 4)
    test = TensorDataset(torch.randn(20, 1, 8, 8, generator=gen), torch.randint(0, 2, (20,), generator=gen))
    protocol = EvalProtocol(model="convnet3", epochs=2, augment="color_crop")
    first = train_and_test(images, labels, test, 2, protocol, seed=3)
    second = train_and_test(images, labels, test, 2, protocol, seed=3)
    assert 0.0 <= first["top1"] <= 100.0 and first["train_gflops"] > 0
    assert first["top1"] == second["top1"] and first["train_top1"] == second["train_top1"]
    with pytest.raises(ValueError, match="epochs"):
        EvalProtocol(epochs=0)
