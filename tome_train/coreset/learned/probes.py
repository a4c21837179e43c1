"""Cluster labels: k-means clusters of the embedding, each labelled by a probe's validation top-1.

The probe models train through the engine (:mod:`.pipeline`); this module holds
what they need around it: the seeded, class-stratified validation split carved from the
*training* set, the k-means clusters of the remaining samples, and the hook that
measures a trained probe on the validation split.

Two ways to form the probe clusters: ``global`` k-means over all samples, and
``class`` (the default), where each probe cluster holds one k-means group of *every*
class. Global clusters of a classifier's embedding follow the classes, and a probe
trained on samples of one or two classes can predict nothing else: its validation top-1
then says how many classes its cluster spans, not what its samples are worth.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ...engine.hooks import Hook, TrainState


def validation_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train_rows, validation_rows)``, sorted: ``round(fraction * n_c)`` samples of each
    class ``c`` drawn with ``seed`` for validation. A class left without a validation
    sample, or without a training sample, raises ``ValueError`` naming ``validation_fraction``."""
    labels = torch.as_tensor(labels).long()
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {fraction!r}")
    generator = torch.Generator().manual_seed(int(seed))
    train, val = [], []
    for c in torch.unique(labels).tolist():
        rows = torch.nonzero(labels == c).flatten()
        rows = rows[torch.randperm(rows.numel(), generator=generator)]
        count = round(fraction * rows.numel())
        if count == 0:
            raise ValueError(f"validation_fraction {fraction} leaves class {c} ({rows.numel()} samples) "
                             "without a validation sample")
        if count == rows.numel():
            raise ValueError(f"validation_fraction {fraction} leaves class {c} ({rows.numel()} samples) "
                             "without a training sample")
        val.append(rows[:count])
        train.append(rows[count:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def kmeans_clusters(embedding: torch.Tensor, clusters: int, seed: int) -> torch.Tensor:
    """k-means (scikit-learn) cluster of each row of ``embedding``, ``torch.long [N]``.
    More clusters than rows raises ``ValueError`` naming ``clusters``."""
    from sklearn.cluster import KMeans

    embedding = torch.as_tensor(embedding).detach().cpu().double()
    if isinstance(clusters, bool) or not isinstance(clusters, int) or clusters < 1:
        raise ValueError(f"clusters must be an int >= 1, got {clusters!r}")
    if clusters > embedding.shape[0]:
        raise ValueError(f"clusters ({clusters}) must not exceed the number of samples ({embedding.shape[0]})")
    model = KMeans(n_clusters=clusters, n_init=4, random_state=int(seed))
    return torch.from_numpy(model.fit_predict(embedding.numpy())).long()


def class_covering_clusters(embedding: torch.Tensor, labels: torch.Tensor, clusters: int,
                            seed: int) -> torch.Tensor:
    """Probe cluster of each row, ``torch.long [N]``, every cluster holding part of every class.

    Each class is split by k-means into ``clusters`` groups, ranked by the distance of the
    group's centre from the class mean (most typical first); probe cluster ``j`` is every
    class's ``j``-th group, so the clusters run from the typical to the atypical samples
    of all classes. A class with fewer samples than ``clusters`` raises ``ValueError``
    naming ``clusters``."""
    embedding = torch.as_tensor(embedding).detach().cpu().double()
    labels = torch.as_tensor(labels).long()
    if labels.shape != (embedding.shape[0],):
        raise ValueError(f"labels must have one entry per row of embedding ({embedding.shape[0]}), "
                         f"got shape {tuple(labels.shape)}")
    assignment = torch.empty(embedding.shape[0], dtype=torch.long)
    for c in torch.unique(labels).tolist():
        rows = torch.nonzero(labels == c).flatten()
        if isinstance(clusters, int) and not isinstance(clusters, bool) and clusters > rows.numel():
            raise ValueError(f"clusters ({clusters}) must not exceed the samples of class {c} ({rows.numel()})")
        points = embedding[rows]
        groups = kmeans_clusters(points, clusters, seed)
        centre = points.mean(dim=0)
        # an empty group (duplicate points) ranks last
        distance = [float((points[groups == k].mean(dim=0) - centre).norm()) if bool((groups == k).any())
                    else float("inf") for k in range(clusters)]
        rank = torch.empty(clusters, dtype=torch.long)
        rank[torch.tensor(distance).argsort(stable=True)] = torch.arange(clusters)
        assignment[rows] = rank[groups]
    return assignment


@torch.no_grad()
def top1(model: torch.nn.Module, dataset: Dataset, device: torch.device | str = "cpu",
         batch_size: int = 500) -> float:
    """Top-1 (%) of ``model`` on ``dataset`` in eval mode (mode restored afterwards)."""
    was_training = model.training
    model.eval()
    correct = total = 0
    try:
        for images, targets in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            logits = model(images.to(device))
            correct += int((logits.argmax(dim=1).cpu() == torch.as_tensor(targets)).sum())
            total += len(targets)
    finally:
        model.train(was_training)
    return 100.0 * correct / max(total, 1)


class ValidationTop1Hook(Hook):
    """The trained model's top-1 on ``rows`` of ``dataset`` (the validation split), at train end."""

    name = "validation_top1"

    def __init__(self, dataset: Dataset, rows: torch.Tensor) -> None:
        self.dataset = Subset(dataset, torch.as_tensor(rows).tolist())
        self.top1: float | None = None
        self.seconds = 0.0

    def on_train_end(self, state: TrainState) -> None:
        start = time.perf_counter()
        self.top1 = top1(state.model, self.dataset, state.device)
        self.seconds = time.perf_counter() - start

    def state_dict(self) -> dict[str, Any]:
        return {}
