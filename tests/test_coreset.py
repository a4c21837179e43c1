"""tome_train.coreset.select: herding's argmin property, k-center coverage, balance,
score-based methods, determinism and rejected input."""

from __future__ import annotations

import pytest
import torch

from tome_train.coreset import METHODS, equal_split, proportional_split, select
from tome_train.coreset.geometric import herding, kcenter_greedy


def _classes(n: int = 1200, dim: int = 16, classes: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    return torch.randn(n, dim, generator=g) * 2 + labels[:, None].float(), labels


def _mean_gap(features: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor) -> float:
    gaps = [(features[idx][labels[idx] == c].mean(0) - features[labels == c].mean(0)).norm()
            for c in labels.unique()]
    return float(torch.stack(gaps).mean())


def _greedy_reference(points: torch.Tensor, budget: int, first: int) -> list[int]:
    chosen, dist = [first], torch.cdist(points, points[first : first + 1]).squeeze(1)
    for _ in range(budget - 1):
        j = int(dist.argmax())
        chosen.append(j)
        dist = torch.minimum(dist, torch.cdist(points, points[j : j + 1]).squeeze(1))
    return chosen


def _radius(points: torch.Tensor, idx: torch.Tensor) -> float:
    return float(torch.cdist(points, points[idx]).min(1).values.max())


def _clusters(n: int = 1500, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(8, 3, generator=g) * 6
    return centres[torch.randint(0, 8, (n,), generator=g)] + torch.randn(n, 3, generator=g) * 0.5


@pytest.mark.parametrize("method", ["random", "herding", "kcenter", "easy", "hard", "ccs"])
def test_every_method_returns_sorted_unique_indices(method: str) -> None:
    features, labels = _classes(300)
    scores = torch.rand(300)
    idx = select(method, 37, features=features, scores=scores, labels=labels, seed=3)
    assert idx.dtype == torch.long and idx.numel() == 37
    assert torch.equal(idx, idx.unique()) and int(idx.min()) >= 0 and int(idx.max()) < 300


def test_herding_matches_class_means_much_better_than_random() -> None:
    features, labels = _classes()
    h = select("herding", 80, features=features, labels=labels, balance=True)
    r = select("random", 80, features=features, labels=labels, balance=True)
    assert _mean_gap(features, labels, h) < 0.35 * _mean_gap(features, labels, r)


def test_herding_is_argmin_each_prefix_mean_beats_every_alternative() -> None:
    x = torch.randn(200, 8)
    order = herding(x, 12)
    mean = x.mean(0)
    for k in range(1, 13):
        prefix = x[order[: k - 1]].sum(0)
        rest = torch.ones(200, dtype=torch.bool)
        rest[order[: k - 1]] = False
        gaps = ((prefix + x) / k - mean).norm(dim=1)
        assert int(order[k - 1]) == int(torch.where(rest, gaps, torch.inf).argmin())
    # the subset mean of the final pick is far closer to the mean than the worst (argmax) choice
    assert float((x[order].mean(0) - mean).norm()) < 0.2 * float((x[:12].mean(0) - mean).norm())


def test_kcenter_equals_plain_greedy_for_any_block_size() -> None:
    points = _clusters(600)
    for block_rows, chunk in ((7, 30), (64, 1 << 12), (4096, 1 << 21)):
        order = kcenter_greedy(points, 40, torch.Generator().manual_seed(0), block_rows, chunk)
        assert order.tolist() == _greedy_reference(points, 40, int(order[0]))


def test_kcenter_covers_better_than_random() -> None:
    points = _clusters()
    k = select("kcenter", 60, features=points, seed=0)
    ref = _greedy_reference(points, 60, 0)
    assert _radius(points, k) <= 2 * _radius(points, torch.tensor(ref))
    assert _radius(points, k) < 0.8 * _radius(points, select("random", 60, features=points, seed=1))


def test_kcenter_with_duplicate_points_never_repeats() -> None:
    points = torch.zeros(20, 4)
    points[:5] = torch.randn(5, 4)
    idx = select("kcenter", 20, features=points)
    assert idx.tolist() == list(range(20))


def test_balance_gives_equal_counts_and_seeded_remainder() -> None:
    features, labels = _classes(1200, classes=4)
    idx = select("kcenter", 42, features=features, labels=labels, balance=True, seed=5)
    counts = torch.bincount(labels[idx], minlength=4).tolist()
    assert sorted(counts) == [10, 10, 11, 11]
    again = select("kcenter", 42, features=features, labels=labels, balance=True, seed=5)
    assert torch.equal(idx, again)
    gen = torch.Generator().manual_seed(1)
    assert sum(equal_split(10, [5, 5, 5], gen, [0, 1, 2])) == 10


def test_labels_without_balance_split_proportionally() -> None:
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    idx = select("random", 10, labels=labels)
    assert torch.bincount(labels[idx]).tolist() == [6, 3, 1]
    gen = torch.Generator().manual_seed(0)
    assert proportional_split(5, [3, 3, 3, 1], gen) in ([2, 1, 1, 1], [1, 2, 1, 1], [1, 1, 2, 1],
                                                        [2, 2, 1, 0], [2, 1, 2, 0], [1, 2, 2, 0])
    assert sum(proportional_split(7, [1, 1, 1, 1, 1, 1, 1, 1], gen)) == 7


def test_easy_and_hard_split_by_score_with_random_ties() -> None:
    scores = torch.rand(500)
    easy = select("easy", 50, scores=scores)
    hard = select("hard", 50, scores=scores)
    assert float(scores[easy].max()) < float(scores[hard].min())
    assert float(scores[hard].min()) >= float(scores.sort(descending=True).values[49])
    ties = torch.zeros(1000)
    picked = [select("hard", 100, scores=ties, seed=s) for s in range(3)]
    assert not torch.equal(picked[0], picked[1])
    assert float(picked[0].float().mean()) > 300  # not simply the first indices


def test_ccs_cuts_the_hardest_and_covers_the_strata() -> None:
    scores = torch.linspace(0, 1, 1000)  # uniform: equal-width strata hold 100 each after no cut
    idx = select("ccs", 100, scores=scores, beta=0.2, strata=10)
    assert float(scores[idx].max()) <= float(scores.sort().values[799])  # hardest 20% cut
    kept = scores[:800]
    edges = torch.linspace(float(kept.min()), float(kept.max()), 11)
    per_stratum = torch.histc(scores[idx], bins=10, min=float(edges[0]), max=float(edges[-1]))
    assert per_stratum.tolist() == [10.0] * 10  # even across strata, not proportional to density
    skewed = torch.cat([torch.zeros(900), torch.linspace(0.5, 1.0, 100)])
    picked = select("ccs", 60, scores=skewed, beta=0.0, strata=5)
    assert int((skewed[picked] > 0).sum()) >= 40  # sparse strata are covered, not drowned
    assert select("ccs", 999, scores=scores, beta=0.5).numel() == 999  # the cut shrinks to fit


@pytest.mark.parametrize("method", ["random", "kcenter", "easy", "ccs"])
def test_seed_determines_the_result(method: str) -> None:
    features, labels = _classes(400)
    scores = torch.randint(0, 5, (400,)).float()  # integer scores: ties, broken by the seed
    kwargs = dict(features=features, scores=scores, labels=labels)
    a, b = select(method, 30, seed=1, **kwargs), select(method, 30, seed=1, **kwargs)
    c = select(method, 30, seed=2, **kwargs)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_select_leaves_the_thread_count_unchanged() -> None:
    before = torch.get_num_threads()
    select("kcenter", 5, features=torch.randn(50, 3))
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        (dict(method="random", budget=0, labels=torch.zeros(10, dtype=torch.long)), "budget"),
        (dict(method="random", budget=11, labels=torch.zeros(10, dtype=torch.long)), "budget"),
        (dict(method="random", budget=2.5, labels=torch.zeros(10, dtype=torch.long)), "budget"),
        (dict(method="random", budget=True, labels=torch.zeros(10, dtype=torch.long)), "budget"),
        (dict(method="herding", budget=3, features=torch.tensor([[0.0], [float("nan")], [1.0]])), "features"),
        (dict(method="kcenter", budget=1, features=torch.tensor([[0.0], [float("inf")]])), "features"),
        (dict(method="herding", budget=3, features=torch.randn(4, 2, 2)), "features"),
        (dict(method="herding", budget=3, features=torch.ones(4, 2, dtype=torch.long)), "features"),
        (dict(method="hard", budget=2, scores=torch.tensor([1.0, float("nan"), 0.0])), "scores"),
        (dict(method="hard", budget=2, scores=torch.ones(3, 2)), "scores"),
        (dict(method="hard", budget=2, features=torch.randn(5, 2)), "scores"),
        (dict(method="herding", budget=2, features=torch.randn(5, 2), labels=torch.zeros(4, dtype=torch.long)),
         "labels"),
        (dict(method="random", budget=2, labels=torch.zeros(4)), "labels"),
        (dict(method="random", budget=2, features=torch.randn(5, 2), balance=True), "balance"),
        (dict(method="random", budget=8, labels=torch.tensor([0] * 9 + [1] * 3), balance=True), "budget"),
        (dict(method="nosuch", budget=2, features=torch.randn(5, 2)), "method"),
        (dict(method="random", budget=2), "needs"),
        (dict(method="hard", budget=2, scores=torch.rand(5), beta=0.1), "option"),
        (dict(method="ccs", budget=2, scores=torch.rand(5), beta=1.5), "beta"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        select(kwargs.pop("method"), kwargs.pop("budget"), **kwargs)


def test_registry_lists_the_documented_methods() -> None:
    assert set(METHODS) == {"random", "herding", "kcenter", "easy", "hard", "ccs", "learned"}


def test_kcenter_first_mean_starts_at_the_class_mean() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g)
    y = torch.arange(300) % 3
    picked = select("kcenter", 3, features=x, labels=y, balance=True, first="mean")
    for c in range(3):
        rows = (y == c).nonzero().squeeze(1)
        nearest = rows[((x[rows] - x[rows].mean(0)) ** 2).sum(1).argmin()]
        assert int(nearest) in picked.tolist()
    # with first="mean" the start does not depend on the seed
    assert torch.equal(picked, select("kcenter", 3, features=x, labels=y, balance=True, first="mean", seed=5))
    with pytest.raises(ValueError, match="first"):
        select("kcenter", 3, features=x, first="centre")
