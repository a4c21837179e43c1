"""``select``: one entry point from a method name to the indices of a coreset."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from . import geometric, scored
from .learned.rule import learned_select


@dataclass(frozen=True)
class Method:
    """A method's function ``run(data, budget, generator, **options)`` and what ``data`` is:
    ``"features"``, ``"scores"``, ``"features+scores"`` (a ``(features, scores)`` pair), or
    ``None`` (then ``data`` is the number of candidates)."""

    run: Callable[..., torch.Tensor]
    needs: str | None
    options: tuple[str, ...] = ()


def _random(num: int, budget: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randperm(num, generator=generator)[:budget]


def _herding(features: torch.Tensor, budget: int, generator: torch.Generator) -> torch.Tensor:
    return geometric.herding(features, budget)  # deterministic: no draws


METHODS: dict[str, Method] = {
    "random": Method(_random, None),
    "herding": Method(_herding, "features"),
    "kcenter": Method(geometric.kcenter_greedy, "features", options=("first",)),
    "easy": Method(scored.easy, "scores"),
    "hard": Method(scored.hard, "scores"),
    "ccs": Method(scored.ccs, "scores", options=("beta", "strata")),
    "learned": Method(learned_select, "features+scores", options=("clusters", "cluster_seed")),
}


def select(
    method: str,
    budget: int,
    *,
    features: torch.Tensor | None = None,
    scores: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    balance: bool = False,
    seed: int = 0,
    **options: Any,
) -> torch.Tensor:
    """Indices (sorted, unique, ``torch.long``) of a ``budget``-sized coreset.

    Methods (see :data:`METHODS`):

    * ``random``: uniform without replacement.
    * ``herding``: greedily matches the mean of ``features`` (argmin; deterministic).
    * ``kcenter``: greedy k-center on ``features``; the first centre is drawn from ``seed``
      (option ``first="mean"``: the point nearest the (class) mean instead).
    * ``easy`` / ``hard``: the lowest / highest ``scores``; ties broken at random.
    * ``ccs``: coverage-centric selection on ``scores``; options ``beta`` (hardest
      fraction cut, default 0.1) and ``strata`` (default 50).
    * ``learned``: spectral clusters of ``features``, each giving its highest ``scores``
      (a learned selector's predicted quality) in proportion to its size; option
      ``clusters`` (default: a group's budget / 3, at most ``n // 10`` for ``n`` candidates) and
      ``cluster_seed`` (the clustering's seed; default drawn from ``seed``).

    ``features``: ``N x D`` float embeddings. ``scores``: ``N`` floats where a **higher
    score means a more important sample** (harder, more often forgotten, larger error);
    callers orient a score that runs the other way (e.g. negate it) before passing it.

    ``labels`` (``N`` ints) make the selection run within each class: the budget is
    split across classes in proportion to their sizes, or, with ``balance=True``, into
    equal counts per class, the remainder going to classes drawn with ``seed``. Without
    labels the selection is class-agnostic, and ``balance=True`` is an error.

    The same arguments and ``seed`` give the same indices. Bad input raises ``ValueError``
    naming the argument. Runs on one intra-op thread (restored afterwards): every step is
    too small to gain from more, and shared cores make spin-waiting threads far slower.
    """
    with geometric.single_thread():
        return _select(method, budget, features, scores, labels, balance, seed, options)


def _select(
    method: str, budget: int, features: Any, scores: Any, labels: Any, balance: bool, seed: int,
    options: dict[str, Any],
) -> torch.Tensor:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    spec = METHODS[method]
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        allowed = ", ".join(spec.options) or "none"
        raise ValueError(f"{method} takes no option(s) {', '.join(unknown)} (allowed: {allowed})")
    features, scores, labels, num = _check_inputs(method, spec, features, scores, labels)
    budget = _check_budget(budget, num)
    if balance and labels is None:
        raise ValueError("balance=True needs labels (the per-class counts come from them)")
    generator = torch.Generator().manual_seed(int(seed))

    if labels is None:
        groups, budgets = [torch.arange(num)], [budget]
    else:
        sorted_labels, order = torch.sort(labels, stable=True)
        classes, counts = torch.unique_consecutive(sorted_labels, return_counts=True)
        sizes = counts.tolist()
        groups = list(order.split(sizes))  # each class's rows, in data set order
        if balance:
            budgets = equal_split(budget, sizes, generator, [int(c) for c in classes])
        else:
            budgets = proportional_split(budget, sizes, generator)

    picked = []
    for rows, count in zip(groups, budgets):
        if count == 0:
            continue
        if spec.needs == "features":
            data: Any = features[rows]
        elif spec.needs == "scores":
            data = scores[rows]
        elif spec.needs == "features+scores":
            data = (features[rows], scores[rows])
        else:
            data = rows.numel()
        local = spec.run(data, count, generator, **options)
        picked.append(rows[local])
    indices = torch.cat(picked).sort().values
    if indices.numel() != budget or bool((indices[1:] == indices[:-1]).any()):  # a bug, not bad input
        raise RuntimeError(f"{method} returned {indices.numel()} indices with repeats, wanted {budget} unique")
    return indices


def equal_split(budget: int, sizes: list[int], generator: torch.Generator, names: list[int]) -> list[int]:
    """``budget // C`` per class, one more for ``budget % C`` classes drawn with ``generator``."""
    base, extra = divmod(budget, len(sizes))
    counts = [base] * len(sizes)
    for c in torch.randperm(len(sizes), generator=generator)[:extra].tolist():
        counts[c] += 1
    for count, size, name in zip(counts, sizes, names):
        if count > size:
            raise ValueError(
                f"budget {budget} with balance=True needs {count} samples of class {name}, which has {size}"
            )
    return counts


def proportional_split(budget: int, sizes: list[int], generator: torch.Generator) -> list[int]:
    """Largest-remainder split of ``budget`` in proportion to ``sizes``; equal remainders
    are ordered with ``generator``. With ``budget <= sum(sizes)`` no share exceeds its size
    (sizes may also be weights, as the learned rule's clusters use them)."""
    total = sum(sizes)
    if budget < 0 or min(sizes, default=0) < 0 or (budget > 0 and total <= 0):
        raise ValueError(f"budget must be >= 0 and sizes >= 0 with a positive sum, got budget {budget} "
                         f"and sizes {sizes}")
    counts = [budget * s // total for s in sizes]
    remainders = [budget * s % total for s in sizes]
    tie = torch.randperm(len(sizes), generator=generator).tolist()
    order = sorted(range(len(sizes)), key=lambda c: (-remainders[c], tie[c]))
    for c in order[: budget - sum(counts)]:
        counts[c] += 1
    return counts


def _all_finite(values: torch.Tensor) -> bool:
    # min and max propagate NaN and expose +-inf: one pass, no N x D temporary.
    low, high = torch.aminmax(values)
    return bool(torch.isfinite(low)) and bool(torch.isfinite(high))


def _check_budget(budget: Any, num: int) -> int:
    try:
        if isinstance(budget, bool):
            raise TypeError
        value = operator.index(budget)
    except TypeError:
        raise ValueError(f"budget must be an int, got {budget!r}") from None
    if not 0 < value <= num:
        raise ValueError(f"budget must be in [1, {num}] (the data set size), got {value}")
    return value


def _check_inputs(
    method: str, spec: Method, features: Any, scores: Any, labels: Any
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, int]:
    sizes: dict[str, int] = {}
    if features is not None:
        features = torch.as_tensor(features)
        if features.ndim != 2 or not features.is_floating_point():
            raise ValueError(f"features must be a 2-D float tensor (N x D), got {features.dtype} "
                             f"of shape {tuple(features.shape)}")
        if features.shape[0] == 0 or features.shape[1] == 0:
            raise ValueError(f"features must be non-empty, got shape {tuple(features.shape)}")
        if not _all_finite(features):
            raise ValueError("features contain NaN or inf")
        features = features.detach().cpu()
        sizes["features"] = features.shape[0]
    if scores is not None:
        scores = torch.as_tensor(scores)
        if scores.ndim != 1 or scores.is_complex() or scores.dtype == torch.bool:
            raise ValueError(f"scores must be a 1-D real tensor (one per sample), got {scores.dtype} "
                             f"of shape {tuple(scores.shape)}")
        scores = scores.detach().cpu().double()
        if not _all_finite(scores):
            raise ValueError("scores contain NaN or inf")
        sizes["scores"] = scores.numel()
    if labels is not None:
        labels = torch.as_tensor(labels)
        if labels.ndim != 1 or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"labels must be a 1-D integer tensor, got {labels.dtype} of shape "
                             f"{tuple(labels.shape)}")
        labels = labels.detach().cpu().long()
        if labels.numel() and int(labels.min()) < 0:
            raise ValueError(f"labels must be class indices >= 0, got {int(labels.min())}")
        sizes["labels"] = labels.numel()
    for needed in (spec.needs or "").split("+"):
        if needed and sizes.get(needed) is None:
            raise ValueError(f"{method} needs {spec.needs.replace('+', ' and ')}")
    if not sizes:
        raise ValueError(f"{method} needs features, scores or labels (to know the data set size)")
    if len(set(sizes.values())) > 1:
        described = ", ".join(f"{name} {size}" for name, size in sizes.items())
        raise ValueError(f"labels, features and scores must have one entry per sample; got {described}")
    num = next(iter(sizes.values()))
    if num == 0:
        raise ValueError("the data set is empty (features, scores or labels of length 0)")
    return features, scores, labels, num

