"""Scoring methods on synthetic tensors: directions, closed forms against autograd, curvature
against a per-sample reference, online score sources in the selector."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from tome_train.scoring import (
    METHODS,
    ForgettingScoreHook,
    draw_probes,
    el2n,
    entropy,
    get_method,
    grand_last_layer,
    importance,
    input_curvature,
    least_confidence,
    margin,
    online_score_source,
    score_model,
)
from tome_train.selection import ExampleSelector, ForgettingTracker


class TinyNet(nn.Module):
    """conv -> tanh -> linear: smooth, so the curvature is not all ReLU kinks."""

    def __init__(self, in_chans: int = 1, size: int = 4, classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chans, 4, 3, padding=1)
        self.head = nn.Linear(4 * size * size, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.conv(x)).flatten(1))

    def get_classifier(self) -> nn.Module:
        return self.head


def test_every_method_states_its_direction() -> None:
    expected = {"forgetting": True, "el2n": True, "grand": True, "curvature": False,
                "least_confidence": True, "margin": False, "entropy": True, "loss": True, "random": True}
    assert {name: m.higher_is_important for name, m in METHODS.items()} == expected
    assert get_method("margin").more_important == "lower"
    with pytest.raises(ValueError, match="method must be one of"):
        get_method("nosuchscore")


def test_importance_orients_and_keeps_infinities_in_rank() -> None:
    assert importance(torch.tensor([0.1, 0.5], dtype=torch.float64), False).tolist() == [-0.1, -0.5]
    out = importance(torch.tensor([0.0, 2.0, math.inf, 1.0]), True)
    assert out.tolist() == [0.0, 2.0, 3.0, 1.0] and out.dtype == torch.float64
    assert importance(torch.tensor([1.0, math.inf]), False).tolist() == [-1.0, -2.0]
    with pytest.raises(ValueError, match="NaN"):
        importance(torch.tensor([0.0, math.nan]), True)


def test_el2n_and_grand_match_autograd_on_a_linear_model() -> None:
    torch.manual_seed(1)
    model = nn.Linear(5, 4).double()
    x, y = torch.randn(6, 5, dtype=torch.float64), torch.randint(0, 4, (6,))
    logits = model(x)
    got_el2n = el2n(logits.detach().double(), y)
    got_grand = grand_last_layer(logits.detach(), y, x)
    for i in range(6):
        z = model(x[i:i + 1])
        loss = F.cross_entropy(z, y[i:i + 1])
        (dz,) = torch.autograd.grad(loss, z, retain_graph=True)
        grads = torch.autograd.grad(loss, [model.weight, model.bias])
        full = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        assert got_el2n[i].item() == pytest.approx(dz.norm().item(), rel=1e-5)
        assert got_grand[i].item() == pytest.approx(full.item(), rel=1e-5)


def test_grand_through_score_model_uses_the_classifier_input() -> None:
    torch.manual_seed(2)
    model = TinyNet().double()
    x, y = torch.randn(5, 1, 4, 4, dtype=torch.float64), torch.randint(0, 3, (5,))
    values, cost = score_model(model, TensorDataset(x, y), ["grand", "el2n"], batch_size=2)
    for i in range(5):
        loss = F.cross_entropy(model(x[i:i + 1]), y[i:i + 1])
        grads = torch.autograd.grad(loss, [model.head.weight, model.head.bias])
        assert values["grand"][i].item() == pytest.approx(torch.sqrt(sum(g.pow(2).sum() for g in grads)).item(),
                                                          rel=1e-4)
    assert cost["forward_equivalents"] == 5.0


def test_uncertainty_values() -> None:
    uniform = torch.zeros(1, 4)
    assert least_confidence(uniform).item() == pytest.approx(0.75)
    assert margin(uniform).item() == pytest.approx(0.0)
    assert entropy(uniform).item() == pytest.approx(math.log(4))
    sure = torch.tensor([[30.0, 0.0, 0.0, 0.0]])
    assert least_confidence(sure).item() == pytest.approx(0.0, abs=1e-6)
    assert margin(sure).item() == pytest.approx(1.0, abs=1e-6)
    assert entropy(sure).item() == pytest.approx(0.0, abs=1e-6)


def _reference_curvature(model, x, y, probes, h):
    """One sample and one probe at a time."""
    def input_grad(point, label):
        point = point.clone().requires_grad_(True)
        loss = F.cross_entropy(model(point.unsqueeze(0)), label.view(1))
        return torch.autograd.grad(loss, point)[0]

    out = []
    for i in range(x.shape[0]):
        base = input_grad(x[i], y[i])
        diffs = [(input_grad(x[i] + h * probes[k, i], y[i]) - base).norm() for k in range(probes.shape[0])]
        out.append(torch.stack(diffs).mean())
    return torch.stack(out)


def test_curvature_matches_a_per_sample_reference() -> None:
    torch.manual_seed(3)
    model = TinyNet(in_chans=2).double().eval()
    x, y = torch.randn(4, 2, 4, 4, dtype=torch.float64), torch.randint(0, 3, (4,))
    probes = draw_probes(5, x, torch.Generator().manual_seed(0))
    assert set(probes.unique().tolist()) == {-1.0, 1.0} and probes.shape == (5, 4, 2, 4, 4)
    got = input_curvature(model, x, y, probes, h=1e-3)
    want = _reference_curvature(model, x, y, probes, 1e-3)
    assert torch.allclose(got, want, rtol=1e-8, atol=1e-12)
    assert (got > 0).all()
    assert all(p.grad is None for p in model.parameters())


def test_curvature_is_seeded_and_independent_of_the_batch_size() -> None:
    torch.manual_seed(4)
    model = TinyNet()
    data = TensorDataset(torch.randn(13, 1, 4, 4), torch.randint(0, 3, (13,)))
    a, _ = score_model(model, data, ["curvature"], batch_size=64, curvature_probes=3, seed=7)
    b, cost = score_model(model, data, ["curvature"], batch_size=4, curvature_probes=3, seed=7)
    c, _ = score_model(model, data, ["curvature"], batch_size=64, curvature_probes=3, seed=8)
    assert torch.allclose(a["curvature"], b["curvature"], rtol=1e-5)
    assert not torch.allclose(a["curvature"], c["curvature"])
    assert cost["forward_equivalents"] == 13 * 3 * 4
    assert model.training  # the pass restores the mode


def test_score_model_bad_input() -> None:
    data = TensorDataset(torch.randn(3, 1, 4, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="methods must be"):
        score_model(TinyNet(), data, ["forgetting"])
    with pytest.raises(ValueError, match="get_classifier"):
        score_model(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), data, ["grand"])
    with pytest.raises(ValueError, match="h must be"):
        input_curvature(TinyNet(), data.tensors[0], data.tensors[1], h=0.0)


def _batch(indices, logits, targets):
    return SimpleNamespace(indices=torch.tensor(indices), logits=logits, targets=torch.tensor(targets))


def test_forgetting_hook_counts_with_the_tracker() -> None:
    hook = ForgettingScoreHook()
    state = SimpleNamespace(num_samples=3, device=torch.device("cpu"))
    hook.on_train_start(state)
    right, wrong = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    # sample 0: right, wrong, right -> 1 event; sample 1: never right -> inf; sample 2: right always
    for epoch_logits in ([right, wrong, right], [wrong, wrong, right], [right, wrong, right]):
        for i, logits in enumerate(epoch_logits):
            hook.on_batch_end(state, _batch([i], logits, [0]))
        hook.on_epoch_end(state)
    assert hook.scores().tolist() == [1.0, math.inf, 0.0]
    restored = ForgettingScoreHook()
    restored.load_state_dict(hook.state_dict())
    restored.on_train_start(state)
    assert restored.scores().tolist() == [1.0, math.inf, 0.0]


def test_selector_default_source_is_the_forgetting_tracker() -> None:
    sel = ExampleSelector(10, data_keep=0.5, swap_n=2, seed=0)
    assert isinstance(sel.tracker, ForgettingTracker)
    logits = torch.tensor([[1.0, 0.0]]).repeat(5, 1)
    sel.observe(_batch(sel.active_indices.tolist(), logits, [0] * 5))
    assert sel.tracker.presentations.sum().item() == 5


def test_selector_swaps_out_the_lowest_loss_with_a_loss_source() -> None:
    source = online_score_source("loss", 8)
    sel = ExampleSelector(8, data_keep=0.5, swap_n=2, seed=0, score_source=source)
    active = sel.active_indices
    # the first two active samples are predicted confidently right (low loss): swapped out
    logits = torch.tensor([[8.0, 0.0]] * 2 + [[0.0, 1.0]] * 2)
    sel.observe(_batch(active.tolist(), logits, [0] * 4))
    assert sel.end_epoch(0)
    assert set(active[:2].tolist()).isdisjoint(sel.active_indices.tolist())
    assert set(active[2:].tolist()) <= set(sel.active_indices.tolist())
    margin_source = online_score_source("margin", 8)
    margin_source.observe(_batch([0, 1], torch.tensor([[5.0, 0.0], [0.1, 0.0]]), [0, 0]))
    margin_source.end_epoch()
    scores = margin_source.window_scores()
    assert scores[1] > scores[0] and scores[2:].eq(math.inf).all()  # small margin = important
    with pytest.raises(ValueError, match="online"):
        online_score_source("curvature", 8)
