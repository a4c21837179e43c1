"""The learned selector's parts: indicators, validation split, clusters, regressor, the
selection rule behind ``select("learned", ...)`` and its proportional, capped allocation."""

from __future__ import annotations

import math

import pytest
import timm
import torch
from torch.utils.data import TensorDataset

from tome_train.coreset import select
from tome_train.coreset.learned import (
    capped_split,
    class_clusters,
    class_covering_clusters,
    cls_attention_stats,
    default_clusters,
    fit_regressor,
    indicator_matrix,
    kmeans_clusters,
    spectral_clusters,
    validation_split,
)
from tome_train.patch import is_patched


def _blobs(per: int = 40, classes: int = 3, dim: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(per)
    features = torch.randn(per * classes, dim, generator=g) + 4 * labels[:, None].float()
    return features, labels


def test_capped_split_is_proportional_and_passes_on_what_a_short_group_cannot_take() -> None:
    g = torch.Generator().manual_seed(0)
    assert capped_split(30, [10, 20, 30], g) == [5, 10, 15]
    # Weights ask for 10 from groups holding 1 and 2 samples: they give all they have, the rest moves on.
    counts = capped_split(20, [1, 2, 50], g, weights=[10, 10, 1])
    assert counts == [1, 2, 17] and sum(counts) == 20
    assert capped_split(53, [1, 2, 50], g, weights=[0, 0, 1]) == [1, 2, 50]
    assert sum(capped_split(7, [3, 0, 4, 1], g)) == 7
    with pytest.raises(ValueError, match="budget"):
        capped_split(60, [10, 20, 29], g)


def test_learned_selects_exactly_budget_deterministically_and_per_class() -> None:
    features, labels = _blobs()
    scores = torch.linspace(0, 1, labels.numel(), dtype=torch.float64)
    a = select("learned", 37, features=features, scores=scores, labels=labels, seed=3)
    b = select("learned", 37, features=features, scores=scores, labels=labels, seed=3)
    assert torch.equal(a, b) and a.numel() == 37 and a.unique().numel() == 37
    assert sorted(torch.bincount(labels[a]).tolist()) == [12, 12, 13]
    everything = select("learned", 120, features=features, scores=scores, labels=labels, seed=0)
    assert torch.equal(everything, torch.arange(120))


def test_learned_takes_the_top_scores_of_each_cluster_in_proportion() -> None:
    features, labels = _blobs(per=30, classes=2)
    scores = torch.randn(60, generator=torch.Generator().manual_seed(1)).double()
    picked = select("learned", 20, features=features, scores=scores, seed=0, clusters=2)
    assignment = spectral_clusters(features, 2, 0)
    assert all(assignment[labels == c].unique().numel() == 1 for c in range(2))
    for k in range(2):
        rows = torch.nonzero(assignment == k).flatten()
        top = rows[scores[rows].argsort(descending=True)[:10]]
        assert set(top.tolist()) == set(picked.tolist()) & set(rows.tolist())
    # One cluster: the global top scores.
    single = select("learned", 5, features=features, scores=scores, seed=0, clusters=1)
    assert set(single.tolist()) == set(scores.argsort(descending=True)[:5].tolist())


def test_class_clusters_reproduce_the_clusters_the_selection_used() -> None:
    features, labels = _blobs()
    assignment = class_clusters(features, labels, cluster_seed=5, clusters=3)
    assert assignment.shape == (120,) and sorted(assignment.unique().tolist()) == list(range(9))
    for c in range(3):
        assert set(assignment[labels == c].tolist()) == {3 * c, 3 * c + 1, 3 * c + 2}
    assert torch.equal(assignment, class_clusters(features, labels, cluster_seed=5, clusters=3))


def test_default_cluster_count_follows_the_budget_and_class_clusters_can_rebuild_it() -> None:
    assert [default_clusters(6000, b) for b in (600, 1800, 6000)] == [200, 600, 600]
    assert [default_clusters(14, 1), default_clusters(5, 4)] == [1, 1]
    features, labels = _blobs(per=60)
    scores = torch.linspace(0, 1, labels.numel(), dtype=torch.float64)
    picked = select("learned", 18, features=features, scores=scores, labels=labels, seed=0, cluster_seed=2)
    assignment = class_clusters(features, labels, cluster_seed=2, selected=picked)
    for c in range(3):  # 6 of 60 per class: 2 clusters of about 30, each giving its top scores
        groups = assignment[labels == c].unique()
        assert groups.numel() == 2
        for k in groups.tolist():
            rows = torch.nonzero(assignment == k).flatten()
            mine = picked[(assignment[picked] == k)]
            assert set(mine.tolist()) == set(rows[scores[rows].argsort(descending=True)[: mine.numel()]].tolist())
    with pytest.raises(ValueError, match="selected"):
        class_clusters(features, labels, cluster_seed=2)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(budget=200), "budget"),
        (dict(budget=5, clusters=50), "clusters"),
        (dict(budget=5, scores=None), "features and scores"),
        (dict(budget=5, colour=1), "colour"),
    ],
)
def test_learned_bad_input_names_the_argument(kwargs: dict, needle: str) -> None:
    features, labels = _blobs()
    args = dict(features=features, scores=torch.zeros(120, dtype=torch.float64), labels=labels)
    args.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        select("learned", args.pop("budget"), **args)


def test_indicator_matrix_standardises_and_names_columns() -> None:
    matrix, names = indicator_matrix({"loss": torch.tensor([1.0, 2.0, 3.0, 6.0]), "flat": torch.ones(4),
                                      "pca": torch.randn(4, 2)})
    assert names == ["loss", "flat", "pca_0", "pca_1"] and matrix.shape == (4, 4)
    assert torch.allclose(matrix.mean(0), torch.zeros(4), atol=1e-6)
    assert torch.allclose(matrix[:, [0, 2, 3]].std(0, unbiased=False), torch.ones(3), atol=1e-5)
    assert torch.equal(matrix[:, 1], torch.zeros(4))
    with pytest.raises(ValueError, match="'el2n' contains NaN"):
        indicator_matrix({"loss": torch.ones(3), "el2n": torch.tensor([1.0, math.nan, 2.0])})
    with pytest.raises(ValueError, match="'margin' has 2 rows"):
        indicator_matrix({"loss": torch.ones(3), "margin": torch.ones(2)})


def test_validation_split_is_stratified_disjoint_and_refuses_an_empty_class() -> None:
    labels = torch.tensor([0] * 10 + [1] * 20 + [2] * 5)
    train, val = validation_split(labels, 0.2, seed=0)
    assert torch.bincount(labels[val]).tolist() == [2, 4, 1]
    assert set(train.tolist()).isdisjoint(val.tolist()) and train.numel() + val.numel() == 35
    assert torch.equal(val, validation_split(labels, 0.2, seed=0)[1])
    with pytest.raises(ValueError, match="validation_fraction .* class 2 .*without a validation sample"):
        validation_split(torch.tensor([0] * 10 + [2] * 2), 0.2, seed=0)
    with pytest.raises(ValueError, match="validation_fraction"):
        validation_split(labels, 1.0, seed=0)


def test_kmeans_clusters_and_their_limit() -> None:
    features, labels = _blobs()
    found = kmeans_clusters(features, 3, seed=0)
    assert all(found[labels == c].unique().numel() == 1 for c in range(3))
    assert torch.equal(found, kmeans_clusters(features, 3, seed=0))
    with pytest.raises(ValueError, match="clusters"):
        kmeans_clusters(features[:4], 5, seed=0)


def test_class_covering_clusters_hold_every_class_ranked_from_typical_to_atypical() -> None:
    features, labels = _blobs(per=60)
    # An outlying group in each class: 10 samples pushed far from their class mean.
    outliers = torch.cat([torch.nonzero(labels == c).flatten()[:10] for c in range(3)])
    features[outliers] += 25.0
    found = class_covering_clusters(features, labels, 2, seed=0)
    for k in range(2):
        assert set(labels[found == k].tolist()) == {0, 1, 2}  # every probe cluster spans all classes
    assert bool((found[outliers] == 1).all()) and int((found == 1).sum()) == 30  # the atypical groups last
    assert torch.equal(found, class_covering_clusters(features, labels, 2, seed=0))
    with pytest.raises(ValueError, match=r"clusters \(5\) .* class 2 \(4\)"):
        class_covering_clusters(features[:124], labels[:124], 5, seed=0)


def test_regressor_matches_cluster_means_seeded_with_a_falling_curve() -> None:
    g = torch.Generator().manual_seed(0)
    indicators = torch.randn(90, 4, generator=g)
    clusters = torch.arange(3).repeat_interleave(30)
    labels = torch.tensor([0.2, 0.5, 0.9])
    model, curve = fit_regressor(indicators + clusters[:, None].float(), clusters, labels, seed=1, steps=300)
    predicted = model(indicators + clusters[:, None].float()).squeeze(1).detach()
    means = torch.stack([predicted[clusters == k].mean() for k in range(3)])
    assert torch.allclose(means, labels, atol=0.05) and curve[-1] < curve[0]
    _, again = fit_regressor(indicators + clusters[:, None].float(), clusters, labels, seed=1, steps=300)
    assert again == curve


def test_cls_attention_stats_on_a_small_vit() -> None:
    model = timm.create_model("deit_micro_patch2_16", img_size=8)
    data = TensorDataset(torch.randn(6, 1, 8, 8), torch.zeros(6, dtype=torch.long))
    stats = cls_attention_stats(model, data, keep_rate=0.7)
    assert set(stats) == {"cls_entropy", "cls_kept_share"} and stats["cls_entropy"].shape == (6,)
    assert bool((stats["cls_entropy"] <= math.log(16) + 1e-6).all()) and bool((stats["cls_entropy"] > 0).all())
    assert bool((stats["cls_kept_share"] >= 0.7 - 1e-6).all()) and bool((stats["cls_kept_share"] <= 1 + 1e-6).all())
    assert not is_patched(model)
    shallow = timm.create_model("deit_micro_patch2_16", img_size=8, depth=2)
    assert cls_attention_stats(shallow, data)["cls_entropy"].shape == (6,)
    with pytest.raises(ValueError, match="timm ViT"):
        cls_attention_stats(torch.nn.Linear(2, 2), data)


def test_spectral_clusters_are_computed_once_per_rows_count_and_seed(monkeypatch) -> None:
    from sklearn.cluster import SpectralClustering

    features, labels = _blobs(per=40)
    features = features + 1e-3 * torch.arange(features.numel()).reshape(features.shape)  # rows no other test uses
    calls = []
    fit_predict = SpectralClustering.fit_predict
    monkeypatch.setattr(SpectralClustering, "fit_predict", lambda self, x: calls.append(1) or fit_predict(self, x))
    scores = torch.linspace(0, 1, labels.numel(), dtype=torch.float64)
    picked = select("learned", 12, features=features, scores=scores, labels=labels, seed=0, cluster_seed=4)
    assert len(calls) == 3  # one clustering per class
    assignment = class_clusters(features, labels, cluster_seed=4, selected=picked)
    assert len(calls) == 3  # the selection's clusters are reused, not recomputed
    assignment[:] = -1  # a caller's edit does not reach the kept result
    assert int(class_clusters(features, labels, cluster_seed=4, selected=picked).min()) == 0
    class_clusters(features, labels, cluster_seed=5, selected=picked)
    assert len(calls) == 6  # another seed is another clustering
