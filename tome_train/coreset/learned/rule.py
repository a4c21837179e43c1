"""The learned selection rule: spectral clusters of the embedding, and in each the samples
with the highest predicted score, in proportion to the cluster's size.

``select("learned", budget, features=embedding, scores=predicted, ...)`` runs
:func:`learned_select`; the scores come from :func:`.pipeline.predict_scores`.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections import OrderedDict

import torch

from .. import scored

PICKS_PER_CLUSTER = 3  # the default count gives each cluster about this many of the budget
MIN_CLUSTER_SIZE = 10  # ... and keeps clusters of about this many samples or more

# Spectral clustering is the slow step (minutes per class on a large set) and is asked for
# the same rows twice: by the selection, then by ``class_clusters`` for the saved assignment,
# or by ``learned`` and ``spectral-random`` at the same seed. It is deterministic for a given
# input and seed, so results are kept per (rows' digest, count, seed).
_CLUSTER_CACHE: OrderedDict[tuple[str, int, int], torch.Tensor] = OrderedDict()
_CLUSTER_CACHE_SIZE = 256


def default_clusters(num: int, budget: int) -> int:
    """``ceil(budget / 3)`` clusters, at most ``num // 10``, at least 1.

    Tied to the budget, so that the selection spreads over the whole embedding: with a
    fixed ten clusters, each gives its top tenth, and the top of a cluster is a tight
    group of near-duplicates (Fashion-MNIST at 10%, measured in the README)."""
    return max(1, min(math.ceil(budget / PICKS_PER_CLUSTER), num // MIN_CLUSTER_SIZE))


def spectral_clusters(features: torch.Tensor, clusters: int, seed: int) -> torch.Tensor:
    """Spectral clustering (scikit-learn; k-nearest-neighbour affinity, QR label assignment)
    of the rows of ``features``, ``torch.long [N]``. ``clusters`` above ``N`` raises ``ValueError``.
    Repeated calls with the same rows, count and seed return the kept result."""
    from sklearn.cluster import SpectralClustering

    num = features.shape[0]
    if isinstance(clusters, bool) or not isinstance(clusters, int) or clusters < 1:
        raise ValueError(f"clusters must be an int >= 1, got {clusters!r}")
    if clusters > num:
        raise ValueError(f"clusters ({clusters}) must not exceed the number of samples ({num})")
    if clusters == 1:
        return torch.zeros(num, dtype=torch.long)
    if clusters == num:
        return torch.arange(num)
    rows = features.detach().cpu().double().contiguous()
    key = (hashlib.blake2b(rows.numpy().tobytes(), digest_size=16).hexdigest() + str(tuple(rows.shape)),
           clusters, int(seed))
    if key in _CLUSTER_CACHE:
        _CLUSTER_CACHE.move_to_end(key)
        return _CLUSTER_CACHE[key].clone()
    model = SpectralClustering(n_clusters=clusters, affinity="nearest_neighbors", n_neighbors=min(10, num - 1),
                               assign_labels="cluster_qr", random_state=int(seed))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        found = torch.from_numpy(model.fit_predict(rows.numpy())).long()
    _CLUSTER_CACHE[key] = found
    if len(_CLUSTER_CACHE) > _CLUSTER_CACHE_SIZE:
        _CLUSTER_CACHE.popitem(last=False)
    return found.clone()


def capped_split(budget: int, sizes: list[int], generator: torch.Generator,
                 weights: list[int] | None = None) -> list[int]:
    """Split ``budget`` over groups in proportion to ``weights`` (default: ``sizes``), never
    giving a group more than its size: a group too small for its share takes all it has
    and the rest is split again over the others. Sums to ``budget`` exactly."""
    weights = list(sizes) if weights is None else list(weights)
    if len(weights) != len(sizes) or any(w < 0 for w in weights) or any(s < 0 for s in sizes):
        raise ValueError("weights and sizes must be non-negative, one per group")
    if not 0 <= budget <= sum(sizes):
        raise ValueError(f"budget must be in [0, {sum(sizes)}] (the groups' total size), got {budget}")
    from ..select import proportional_split

    counts = [0] * len(sizes)
    open_groups = [g for g, size in enumerate(sizes) if size > 0]
    remaining = budget
    while remaining > 0:
        open_weights = [weights[g] for g in open_groups]
        if sum(open_weights) == 0:  # only weightless groups have room left: share evenly by room
            open_weights = [sizes[g] - counts[g] for g in open_groups]
        shares = proportional_split(remaining, open_weights, generator)
        still_open = []
        for g, share in zip(open_groups, shares):
            take = min(share, sizes[g] - counts[g])
            counts[g] += take
            remaining -= take
            if counts[g] < sizes[g]:
                still_open.append(g)
        open_groups = still_open
    return counts


def learned_select(data: tuple[torch.Tensor, torch.Tensor], budget: int, generator: torch.Generator,
                   clusters: int | None = None, cluster_seed: int | None = None) -> torch.Tensor:
    """``budget`` rows: spectral clusters of ``features`` (``clusters`` of them, default
    :func:`default_clusters` of the rows and ``budget``), each giving its highest-``scores``
    rows (ties at random) in proportion to its size. ``data`` is ``(features [N, D],
    scores [N])``. The clustering's seed is ``cluster_seed``, or drawn from ``generator``
    (then :func:`class_clusters` cannot reproduce the clusters)."""
    features, scores = data
    num = features.shape[0]
    count = default_clusters(num, budget) if clusters is None else clusters
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator)) if cluster_seed is None else cluster_seed
    assignment = spectral_clusters(features, count, seed)
    groups = [torch.nonzero(assignment == k).flatten() for k in range(int(assignment.max()) + 1)]
    groups = [rows for rows in groups if rows.numel() > 0]
    shares = capped_split(budget, [rows.numel() for rows in groups], generator)
    picked = [rows[scored.hard(scores[rows], share, generator)] for rows, share in zip(groups, shares) if share]
    return torch.cat(picked)


def class_clusters(features: torch.Tensor, labels: torch.Tensor | None, cluster_seed: int,
                   clusters: int | None = None, selected: torch.Tensor | None = None) -> torch.Tensor:
    """The spectral clusters that ``select("learned", ..., labels=labels, cluster_seed=S)``
    selects from: within each class (or over all rows without labels), numbered
    consecutively across classes, ``torch.long [N]``. The default count depends on each
    class's share of the budget, so it needs ``selected``, the indices that were chosen."""
    features = torch.as_tensor(features).detach().cpu()
    num = features.shape[0]
    if clusters is None and selected is None:
        raise ValueError("selected (the chosen indices) is needed when clusters is None")
    chosen = torch.zeros(num, dtype=torch.bool)
    if selected is not None:
        chosen[torch.as_tensor(selected).long()] = True
    if labels is None:
        groups = [torch.arange(num)]
    else:
        labels = torch.as_tensor(labels).long()
        groups = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels).tolist()]
    assignment = torch.empty(num, dtype=torch.long)
    offset = 0
    for rows in groups:
        count = default_clusters(rows.numel(), int(chosen[rows].sum())) if clusters is None else clusters
        found = spectral_clusters(features[rows], count, cluster_seed)
        assignment[rows] = found + offset
        offset += int(found.max()) + 1
    return assignment
