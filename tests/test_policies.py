"""Data policies: dynamic random, InfoBatch, SeTa (single process) and their CLI wiring."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tome_train.job.args import parse_args
from tome_train.job.train import main as train_main
from tome_train.selection import ActiveSetSampler
from tome_train.selection.policies import (
    DynamicRandomPolicy,
    InfoBatchPolicy,
    LatestLossScores,
    SeTaPolicy,
    build_policy,
)
from tome_train.selection.policies.seta import loss_groups


def _epoch(policy, epoch: int, epochs: int, losses: torch.Tensor) -> torch.Tensor:
    policy.plan(epoch, epochs)
    active = policy.active_indices
    policy.observe(active, losses[active])
    policy.end_epoch()
    return active


def test_dynamic_random_fresh_subset_each_epoch() -> None:
    policy = DynamicRandomPolicy(100, keep=0.3, seed=1)
    policy.plan(0, 5)
    first = policy.active_indices
    policy.plan(1, 5)
    second = policy.active_indices
    assert first.numel() == second.numel() == 30 and not torch.equal(first, second)
    again = DynamicRandomPolicy(100, keep=0.3, seed=1)
    again.plan(1, 5)
    assert torch.equal(again.active_indices, second)
    assert policy.weights(second) is None


def test_infobatch_prunes_half_of_the_well_learned_and_rescales() -> None:
    n, epochs = 1000, 8
    policy = InfoBatchPolicy(n, prune_ratio=0.5, delta=0.875, seed=0)
    losses = torch.linspace(0.0, 2.0, n)  # mean 1.0: the lower half is well learned
    assert _epoch(policy, 0, epochs, losses).numel() == n  # nothing seen yet: everything trains
    policy.plan(1, epochs)
    active = policy.active_indices
    well = torch.nonzero(losses < losses.mean()).squeeze(1)
    kept_well = active[losses[active] < losses.mean()]
    assert kept_well.numel() == math.floor(0.5 * well.numel())
    assert active.numel() == n - (well.numel() - kept_well.numel())
    weights = policy.weights(active)
    assert torch.all(weights[losses[active] < losses.mean()] == 2.0)
    assert torch.all(weights[losses[active] >= losses.mean()] == 1.0)
    policy.plan(7, epochs)  # 8 > 0.875 * 8: annealing, full data, weight 1
    assert policy.active_indices.numel() == n and policy.weights(torch.arange(n)) is None


def test_infobatch_state_round_trip_repeats_decisions() -> None:
    losses = torch.rand(200, generator=torch.Generator().manual_seed(0))
    a = InfoBatchPolicy(200, seed=3)
    for e in range(3):
        _epoch(a, e, 10, losses * (e + 1))
    b = InfoBatchPolicy(200, seed=3)
    b.load_state_dict(a.state_dict())
    a.plan(3, 10)
    b.plan(3, 10)
    assert torch.equal(a.active_indices, b.active_indices)
    assert torch.equal(a.weights(a.active_indices), b.weights(b.active_indices))


def test_latest_loss_scores_keep_the_last_value() -> None:
    scores = LatestLossScores(5)
    scores.observe(torch.tensor([0, 2]), torch.tensor([1.0, 3.0]))
    scores.end_epoch()
    scores.observe(torch.tensor([2]), torch.tensor([0.5]))
    scores.end_epoch()
    assert scores.scores[[0, 2]].tolist() == [1.0, 0.5] and torch.isnan(scores.scores[[1, 3, 4]]).all()


def test_loss_groups_are_ordered_easy_to_hard() -> None:
    scores = torch.cat([torch.full((10,), 5.0), torch.full((10,), 0.1), torch.full((10,), 2.0)]).double()
    groups = loss_groups(scores + torch.rand(30, dtype=torch.float64) * 0.01, 3, seed=0)
    means = [float(scores[g].mean()) for g in groups]
    assert means == sorted(means) and sum(g.numel() for g in groups) == 30


def test_seta_window_slides_and_anneals() -> None:
    n, epochs = 500, 10
    policy = SeTaPolicy(n, prune_ratio=0.3, num_groups=5, window_scale=0.4, delta=0.8, seed=0)
    losses = torch.rand(n, generator=torch.Generator().manual_seed(1))
    first = _epoch(policy, 0, epochs, losses)
    assert first.numel() == 350  # the random 70%, all groups in the first epoch
    policy.observe(torch.arange(n), losses)  # every sample seen (unseen ones would count as hard)
    policy.end_epoch()
    sizes, means = [], []
    for e in range(1, 8):
        active = _epoch(policy, e, epochs, losses)
        sizes.append(active.numel())
        means.append(float(losses[active].mean()))
    assert all(s < 350 for s in sizes)
    assert means[0] < means[1] < means[2]  # window moves towards harder groups
    policy.plan(9, epochs)  # annealing: a random 70%, no weights
    assert policy.active_indices.numel() == 350 and policy.weights(policy.active_indices) is None


def test_policy_sampler_presents_each_kept_sample_once_across_ranks() -> None:
    policy = InfoBatchPolicy(50, seed=0)
    _epoch(policy, 0, 4, torch.rand(50))
    policy.plan(1, 4)
    shards = [list(ActiveSetSampler(policy, num_replicas=2, rank=r, seed=0)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == policy.active_indices.tolist()


@pytest.mark.parametrize("bad", [dict(prune_ratio=1.0), dict(delta=0.0), dict(num_groups=0)])
def test_bad_policy_options(bad) -> None:
    with pytest.raises(ValueError):
        SeTaPolicy(10, **bad)
    with pytest.raises(ValueError, match="does not take"):
        build_policy("infobatch", 10, num_groups=3)
    with pytest.raises(ValueError, match="--data-keep"):
        build_policy("dynamic-random", 10, keep=1.0)


@pytest.mark.parametrize("argv,message", [
    (["--data-policy", "dynamic-random"], "needs --data-keep"),
    (["--data-policy", "infobatch", "--data-keep", "0.5"], "--data-keep applies"),
    (["--prune-ratio", "0.3"], "--prune-ratio applies"),
    (["--random-subset", "--data-policy", "seta", "--data-keep", "0.5"], "static-random"),
])
def test_policy_flags_are_checked(argv, message, capsys) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err


def test_old_flags_map_to_policies() -> None:
    assert parse_args([]).data_policy == "full"
    assert parse_args(["--data-keep", "0.5"]).data_policy == "forgetting-swap"
    assert parse_args(["--data-keep", "0.5", "--random-subset"]).data_policy == "static-random"


def test_infobatch_training_run_reports_backward_samples(tmp_path) -> None:
    out = tmp_path / "ib"
    train_main(["--dataset", "digits", "--epochs", "3", "--limit-train", "300", "--limit-test", "60",
                "--data-policy", "infobatch", "--no-progress", "--device", "cpu", "--output-dir", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    samples = [row["samples"] for row in summary["ledger"]]
    assert samples[0] == 300 and samples[-1] == 300 and samples[1] < 300  # pruned, then annealed
    assert summary["backward_samples"] == sum(samples) and summary["dense_backward_samples"] == 900
