"""Score a training set: train through the engine once per seed, with the scoring hooks.

:func:`score_training_set` is the programmatic entry (``tools/score.py`` calls it). Each
seed is one run of ``tools/train.py``'s training (the same argument list, after the flags
of the scoring recipe, :mod:`.recipe`) through :func:`tome_train.job.train.main` with the
hooks this package provides:

* ``forgetting`` counts events on the training batches of the run;
* post-training methods (``el2n``, ``grand``, ``curvature``, uncertainty, ``loss``) score
  the *unaugmented* training set (same ``--limit-train`` subset, data-set order) on the
  model after the run's ``--epochs`` epochs;
* ``random`` needs no run.

Several methods asked for together share each seed's run. Per-seed results are cached in
``work_dir/seed<S>/scores.pt`` with the exact arguments, so a later call with the same
arguments reuses them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from ..atomic import load_cache
from ..engine.checkpoint import atomic_save
from ..validation import flags_given
from .curvature import DEFAULT_H, DEFAULT_PROBES
from .forgetting import ForgettingScoreHook
from .methods import get_method
from .passes import PostTrainingScoreHook, dataset_labels
from .recipe import apply_recipe
from .result import Scores

__all__ = ["score_training_set", "score_training_set_many", "scoring_dataset"]

_CACHE_NAME = "scores.pt"
_CACHE_VERSION = 1
# Arguments the scoring runner sets itself.
_RESERVED = ("--seed", "--output-dir", "--resume")


def _default_img_size(model: str) -> int:
    from tome_train.models import default_img_size

    return int(default_img_size(model))


def scoring_dataset(train_argv: Sequence[str]) -> tuple[Any, Dataset]:
    """``(resolved training arguments, unaugmented training set)`` for ``train_argv``: the
    set the run trains on (same ``--subset`` / ``--limit-train`` selection, same order, as
    ``tome_train.job.train.run`` builds it), without augmentation."""
    from ..data import build_dataset, fixed_subset
    from ..job.args import parse_args, resolve_defaults

    args = resolve_defaults(parse_args(list(train_argv)), 1)
    img_size = args.img_size or _default_img_size(args.model)
    dataset, _ = build_dataset(args.dataset, args.data_path, "train", img_size, args.in_chans, augment=False)
    if getattr(args, "subset", None) is not None:
        from ..data.subset import load_indices

        dataset = Subset(dataset, load_indices(args.subset, len(dataset), arg="--subset").tolist())
    if args.limit_train is not None and args.limit_train < len(dataset):
        dataset = Subset(dataset, fixed_subset(len(dataset), args.limit_train))
    return args, dataset


def _check_argv(train_argv: Sequence[str]) -> list[str]:
    if isinstance(train_argv, str) or not all(isinstance(a, str) for a in train_argv):
        raise ValueError("train_argv must be a list of strings (tools/train.py arguments)")
    argv = list(train_argv)
    given = flags_given(argv)
    for flag in _RESERVED:
        if flag in given:
            raise ValueError(f"train_argv must not contain {flag}: the scoring runner sets it per seed")
    return argv


def _check_seeds(seeds: Iterable[int]) -> tuple[int, ...]:
    seeds = tuple(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints >= 0, got {list(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    return seeds


def _seed_run(
    methods: tuple[str, ...], argv: list[str], seed: int, dataset: Dataset, work_dir: Path,
    options: dict[str, Any], reuse: bool,
) -> dict[str, Any]:
    """One scoring run (cached): ``{"values": {method: [N]}, "cost": {...}, "seconds": s}``."""
    from ..job.train import main as train_main

    out = work_dir / f"seed{seed}"
    run_argv = [*argv, "--seed", str(seed), "--output-dir", str(out)]
    key = {"version": _CACHE_VERSION, "argv": run_argv, "options": dict(options)}
    cache = out / _CACHE_NAME
    old: dict[str, Any] = {}
    record = load_cache(cache) if reuse else None
    if record is not None:
        if record.get("key") == key:
            if all(m in record["values"] for m in methods):
                return record
            old = record["values"]  # same run, other methods: keep them beside the new ones
    hooks: list[Any] = []
    forgetting = ForgettingScoreHook() if "forgetting" in methods else None
    if forgetting is not None:
        hooks.append(forgetting)
    post = [m for m in methods if get_method(m).stage == "post"]
    passes = PostTrainingScoreHook(post, dataset, seed=seed, **options) if post else None
    if passes is not None:
        hooks.append(passes)
    started = time.perf_counter()
    summary = train_main(run_argv, extra_hooks=hooks)
    seconds = time.perf_counter() - started
    values = dict(old)
    if forgetting is not None:
        values["forgetting"] = forgetting.scores()
    if passes is not None:
        values.update(passes.values)
    equivalents = passes.cost["forward_equivalents"] if passes is not None else 0.0
    forward = summary.get("dense_forward_gflops")
    cost = {
        "train_gflops": float(summary["train_gflops"]),
        "train_wall_s": float(summary["wall_s"]),
        "score_forward_equivalents": float(equivalents),
        "score_gflops": float(equivalents * forward) if forward is not None else float("nan"),
        "score_wall_s": float(passes.cost["wall_s"]) if passes is not None else 0.0,
        "forward_gflops_per_sample": float(forward) if forward is not None else float("nan"),
    }
    record = {"key": key, "values": values, "cost": cost, "seconds": seconds}
    atomic_save(record, cache)
    return record


def score_training_set_many(
    methods: Iterable[str],
    train_argv: Sequence[str],
    seeds: Iterable[int] = (0,),
    work_dir: str | Path = "runs/score",
    *,
    reuse: bool = True,
    recipe: str = "auto",
    batch_size: int = 256,
    curvature_probes: int = DEFAULT_PROBES,
    curvature_h: float = DEFAULT_H,
) -> dict[str, Scores]:
    """Score the training set of ``train_argv`` with each of ``methods``, sharing one training
    run per seed among them; returns ``{method: Scores}``.

    ``train_argv``: ``tools/train.py`` arguments without ``--seed`` / ``--output-dir`` /
    ``--resume`` (set per seed; run ``S`` writes to ``work_dir/seed<S>``), run with the
    flags of ``recipe`` placed before them (:mod:`.recipe`: ``"auto"`` gives a CNN
    DeepCore's selection training, a ViT ``tools/train.py``'s defaults). Values are the
    mean over ``seeds`` (initialisations). ``batch_size``: samples per scoring pass batch;
    ``curvature_probes`` / ``curvature_h``: ``n`` and ``h`` of the curvature estimate.
    Each ``Scores.cost`` holds the shared runs' cost (training and all passes of the run).
    """
    names = tuple(dict.fromkeys(methods))
    if not names:
        raise ValueError("methods must name at least one scoring method")
    infos = [get_method(m) for m in names]
    recipe, argv = apply_recipe(_check_argv(train_argv), recipe)
    seeds = _check_seeds(seeds)
    args, dataset = scoring_dataset(argv)
    if args.data_policy != "full":
        raise ValueError(f"scoring runs train on the whole set; got --data-policy {args.data_policy}")
    labels = dataset_labels(dataset)
    n = len(dataset)
    trained = tuple(m.name for m in infos if m.stage != "none")
    options = {"batch_size": batch_size, "curvature_probes": curvature_probes, "curvature_h": curvature_h}
    per_seed: dict[str, dict[int, torch.Tensor]] = {m: {} for m in names}
    totals = dict.fromkeys(
        ("train_gflops", "train_wall_s", "score_forward_equivalents", "score_gflops", "score_wall_s"), 0.0
    )
    seconds = 0.0
    for seed in seeds:
        if trained:
            record = _seed_run(trained, argv, seed, dataset, Path(work_dir), options, reuse)
            seconds += float(record["seconds"])
            for key in totals:
                totals[key] += float(record["cost"][key])
            for m in trained:
                per_seed[m][seed] = record["values"][m].to(torch.float64)
        if "random" in names:
            per_seed["random"][seed] = torch.rand(n, generator=torch.Generator().manual_seed(seed),
                                                  dtype=torch.float64)
    results = {}
    for info in infos:
        runs = per_seed[info.name]
        values = torch.stack([runs[s] for s in seeds]).mean(dim=0)
        if values.shape != (n,) or bool(torch.isnan(values).any()):
            raise ValueError(f"{info.name} scores must be {n} non-NaN values, got shape {tuple(values.shape)}")
        results[info.name] = Scores(
            method=info.name, values=values, labels=labels, higher_is_important=info.higher_is_important,
            seeds=seeds, per_seed=runs, epochs=args.epochs if info.stage != "none" else 0,
            seconds=seconds if info.stage != "none" else 0.0,
            cost=dict(totals) if info.stage != "none" else {},
            recipe=recipe if info.stage != "none" else "", train_argv=tuple(argv) if info.stage != "none" else (),
        )
    return results


def score_training_set(
    method: str,
    train_argv: Sequence[str],
    seeds: Iterable[int] = (0,),
    work_dir: str | Path = "runs/score",
    **options: Any,
) -> Scores:
    """Score the training set of ``train_argv`` with one method (see :func:`score_training_set_many`)."""
    get_method(method)
    return score_training_set_many([method], train_argv, seeds, work_dir, **options)[method]
