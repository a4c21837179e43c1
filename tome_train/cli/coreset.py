"""``tools/coreset.py``: coreset baselines under the dataset-condensation papers' protocol.

1. Train one ConvNet on the whole training set (``--embed-epochs``); its top-1 is the
   whole-data reference and its ``forward_features`` of every (unaugmented) training
   image is the embedding that herding and k-center select in.
2. Per method, budget (``--ipc`` images per class, or ``--fractions`` of the set) and
   selection seed (``--seeds``), choose a subset with :func:`tome_train.coreset.select`.
3. Train ``--models`` fresh ConvNets on each subset through ``tools/train.py``'s engine
   (``--subset``) and test them on the full test set.

``--limit-train N`` works within a fixed random N of the training set (the pool
``tools/train.py --limit-train N`` uses): the whole-data run trains and scores on it, the
subsets are chosen from it, and their index files hold whole-set indices.

Writes ``coreset.json`` (per method and budget: top-1 mean/std/list, budget, selection
and scoring seconds; the whole-data top-1) and ``coreset.png`` to ``--output-dir``.
Finished runs (their ``summary.json``, made with the same arguments and subset) and
selections (``selection.json``: same rule, budget, seed and inputs) are reused unless
``--rerun``. The training recipe is fixed across methods; see
:func:`protocol_args`.

Methods: ``random``, ``herding``, ``kcenter``; ``learned`` (the learned multi-metric
selector of :mod:`tome_train.coreset.learned.pipeline`, fed by the whole-data run; its ``score_s`` is the
pipeline's time, and ``select_gflops`` its FLOPs beyond the whole-data run); ``spectral-random``
(learned's spectral clusters and proportional rule with uniformly drawn scores, an ablation
that separates the clusters' effect from the scores'); a per-sample score of
:mod:`tome_train.scoring` (``forgetting``, ``el2n``, ...) keeps the most important
samples per class; ``easy:SCORE`` and ``ccs:SCORE`` use the other rules.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from tome_train.validation import writable_output_dir

from ..atomic import atomic_save, atomic_write_text, load_cache
from ..job.reuse import train_or_reuse
from .common import exits_on_bad_input
from .coreset_args import (  # noqa: F401 (parse_method: part of this module's interface)
    DEFAULT_EMBED_EPOCHS,
    DEFAULT_IMG_SIZE,
    check_args,
    parse_method,
)
from .coreset_args import build_parser as _build_parser


def build_parser() -> argparse.ArgumentParser:
    return _build_parser(__doc__)

# The one recipe of every network here (whole data and subsets): the condensation papers'
# SGD (lr 0.01, momentum 0.9, weight decay 5e-4, batch 256, plain cross-entropy), with the
# engine's cosine decay (no warm-up) in place of their step at half the epochs.
PROTOCOL = {"opt": "sgd", "lr": "0.01", "momentum": "0.9", "weight-decay": "5e-4", "batch-size": "256",
            "warmup-epochs": "0", "min-lr": "0", "smoothing": "0"}


def protocol_args(args: argparse.Namespace, epochs: int, seed: int, run_dir: Path) -> list[str]:
    """``tools/train.py`` arguments of one network: :data:`PROTOCOL`, tested once after the last epoch."""
    argv = ["--dataset", args.dataset, "--model", args.model, "--img-size", str(args.img_size)]
    for flag, value in PROTOCOL.items():
        argv += [f"--{flag}", value]
    argv += ["--epochs", str(epochs), "--eval-every", str(epochs), "--seed", str(seed),
             "--device", args.device, "--output-dir", str(run_dir), "--no-progress"]
    if args.data_path is not None:
        argv += ["--data-path", str(args.data_path)]
    return argv + shlex.split(args.train_args)


def whole_data(args: argparse.Namespace, seed: int, out: Path, plain: Any, scores: list[str]) -> dict[str, Any]:
    """Train (or reuse) the whole-data network. Returns its ``summary``, the ``features`` and
    ``labels`` of ``plain`` (the training set without augmentation) and the raw values of
    the ``scores`` measured on the same run (with their extra ``score_s``)."""
    from ..coreset.embed import EmbeddingHook
    from .coreset_scores import ScoreHooks

    run_dir = out / "whole" / f"seed{seed}"
    saved_path = run_dir / "features.pt"
    argv = protocol_args(args, args.embed_epochs, seed, run_dir)
    if args.limit_train is not None:
        argv += ["--limit-train", str(args.limit_train)]
    saved = None if args.rerun else load_cache(saved_path)
    readable = saved is not None and {"features", "labels", "scores"} <= set(saved)
    missing = sorted(set(scores) - set(saved["scores"])) if readable else []
    if saved_path.exists() and not args.rerun and (not readable or missing):
        _log(f"whole data: rerun to add scores {missing}" if readable else f"whole data: rerun, {saved_path} unreadable")
        return whole_data(argparse.Namespace(**{**vars(args), "rerun": True}), seed, out, plain, scores)
    embedding = EmbeddingHook(plain)
    scoring = ScoreHooks(scores, plain, seed)
    _log(f"whole data: train.py {' '.join(argv)}")
    summary, reused = train_or_reuse(argv, args.rerun, (embedding, *scoring.hooks), extra_file=saved_path)
    if not reused:
        values, seconds = scoring.results()
        saved = {"features": embedding.features, "labels": embedding.labels, "scores": values,
                 "score_s": seconds}
        atomic_save(saved, saved_path)
    return {"summary": summary, **saved}


def _log(message: str) -> None:
    print(f"[coreset] {message}", file=sys.stderr, flush=True)


def budget_name(kind: str, value: float) -> str:
    return f"ipc{value}" if kind == "ipc" else f"frac{value:g}"


def choose(rule: str, kind: str, value: float, seed: int, features: torch.Tensor, labels: torch.Tensor,
           scores: torch.Tensor | None) -> torch.Tensor:
    """One subset: ``value`` images per class (equal counts), or a ``value`` fraction split
    across classes in proportion to their sizes."""
    from ..coreset import select

    num_classes = int(torch.unique(labels).numel())
    if kind == "ipc":
        budget, balance = int(value) * num_classes, True
    else:
        budget, balance = max(1, round(value * labels.numel())), False
    if rule == "learned":
        return select(rule, budget, features=features, scores=scores, labels=labels, balance=balance, seed=seed,
                      cluster_seed=seed)
    if rule == "spectral-random":  # the learned rule's clusters (same seed) with uniform scores: what they alone give
        uniform = torch.rand(labels.numel(), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        return select("learned", budget, features=features, scores=uniform, labels=labels, balance=balance,
                      seed=seed, cluster_seed=seed)
    if rule == "kcenter-mean":
        return select("kcenter", budget, features=features, labels=labels, balance=balance, seed=seed, first="mean")
    return select(rule, budget, features=features if scores is None else None, scores=scores,
                  labels=labels, balance=balance, seed=seed)


def check_ipc(budgets: list[tuple[str, float]], labels: torch.Tensor) -> None:
    smallest = int(torch.bincount(labels).min())
    for kind, value in budgets:
        if kind == "ipc" and value > smallest:
            raise ValueError(f"--ipc {value} exceeds the smallest class of the training set ({smallest} images)")


@exits_on_bad_input
def main(argv: list[str] | None = None) -> int:
    from ..engine import index_digest
    from ..scoring.passes import dataset_labels
    from .coreset_report import add_paired, aggregate, format_table, plot
    from .coreset_selection import choose_or_reuse, inputs_digest, tensor_digest

    args = build_parser().parse_args(argv)
    lists = check_args(args)
    args.img_size = args.img_size or DEFAULT_IMG_SIZE.get(args.dataset, 32)
    args.embed_epochs = args.embed_epochs or DEFAULT_EMBED_EPOCHS.get(args.dataset, 8)
    out = writable_output_dir(args.output_dir)
    start = time.perf_counter()
    plain, pool, num_samples = _plain_train_set(args)
    check_ipc(lists["budgets"], dataset_labels(plain))
    run = whole_data(args, lists["seeds"][0], out, plain, lists["scores"])
    whole, features, labels, score_s = run["summary"], run["features"], run["labels"], run["score_s"]
    _log(f"whole data: top-1 {whole['top1']:.2f}% after {args.embed_epochs} epochs; "
         f"embedding {tuple(features.shape)}")
    scores = {}
    if lists["scores"]:
        from .coreset_scores import importance

        scores = {name: importance(name, run["scores"][name]) for name in lists["scores"]}
    learned_costs = {}
    if any(rule == "learned" for rule, _ in lists["methods"].values()):
        scores["learned"], learned_costs = learned_scores(args, lists["seeds"][0], out, plain, run)
    data_digest = tensor_digest(features, labels)
    rows: list[dict[str, Any]] = []
    for method, (rule, score) in lists["methods"].items():
        for kind, value in lists["budgets"]:
            top1, select_s, budget = [], [], 0
            for seed in lists["seeds"]:
                rule_scores = scores.get(score) if score else scores.get("learned") if rule == "learned" else None
                sel_dir = out / method.replace(":", "-") / budget_name(kind, value) / f"seed{seed}"
                indices, seconds, kept = choose_or_reuse(
                    lambda: in_whole_set(choose(rule, kind, value, seed, features, labels, rule_scores), pool),  # noqa: B023
                    inputs_digest(rule, kind, value, seed, data_digest, rule_scores),
                    sel_dir, num_samples, args.rerun)
                select_s.append(seconds)
                budget = int(indices.numel())
                if kept:
                    _log(f"{method} {budget_name(kind, value)} seed {seed}: selection reused ({seconds:.0f} s when made)")
                for m in range(args.models):
                    argv_m = protocol_args(args, args.eval_epochs, 1000 * seed + m, sel_dir / f"model{m}")
                    argv_m += ["--subset", str(sel_dir / "indices.pt")]
                    summary, reused = train_or_reuse(argv_m, args.rerun, subset_digest=index_digest(indices))
                    top1.append(float(summary["top1"]))
                    _log(f"{method} {budget_name(kind, value)} seed {seed} model {m}: top-1 {top1[-1]:.2f}%"
                         f"{' (reused)' if reused else ''}")
            rows.append({"method": method, "rule": rule, "score": score, kind: value, "budget": budget,
                         "top1": top1, "select_s": sum(select_s) / len(select_s),
                         "score_s": score_s.get(score, 0.0) if score else 0.0,
                         **(learned_costs if rule == "learned" else {})})
    results = aggregate(rows)
    add_paired(results, len(lists["seeds"]), lists["paired_with"])
    report = {
        "dataset": args.dataset, "model": args.model, "img_size": args.img_size, "seeds": lists["seeds"],
        "models": args.models, "limit_train": args.limit_train, "embed_epochs": args.embed_epochs,
        "eval_epochs": args.eval_epochs,
        "protocol": {**PROTOCOL, "schedule": "cosine", "train_args": args.train_args},
        "whole_data": {"top1": whole["top1"], "epochs": args.embed_epochs, "num_train": whole["num_train"],
                       "wall_s": whole["wall_s"]},
        "results": results, "total_wall_s": time.perf_counter() - start,
    }
    atomic_write_text(json.dumps(report, indent=2) + "\n", out / "coreset.json")
    plot(report, out / "coreset.png")
    print(format_table(report))
    _log(f"wrote {out / 'coreset.json'} and {out / 'coreset.png'}")
    return 0


def learned_scores(args: argparse.Namespace, seed: int, out: Path, plain: Any,
                   run: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
    """The learned selector's predicted scores from the whole-data ``run``, and its costs."""
    from ..coreset.learned.pipeline import LearnedConfig, predict_scores

    cfg = LearnedConfig(dataset=args.dataset, data_path=args.data_path, img_size=args.img_size, seed=seed,
                        device=args.device, probe_clusters=args.probe_clusters, probe_epochs=args.probe_epochs,
                        probe_grouping=args.probe_grouping, vit_epochs=args.vit_epochs)
    result = predict_scores(cfg, plain, run, out / "learned" / "pipeline" / f"seed{seed}", rerun=args.rerun)
    extra = [row for row in result["ledger"] if row["stage"] != "whole_data"]
    _log(f"learned: indicators {', '.join(result['indicators'])}; cluster labels "
         f"{[round(v, 3) for v in result['cluster_labels']]}")
    return result["scores"], {"score_s": sum(result["timings"].values()),
                              "select_gflops": sum(row["gflops"] for row in extra)}


def _plain_train_set(args: argparse.Namespace) -> tuple[Any, torch.Tensor | None, int]:
    """``(plain, pool, size)``: the training set in data set order without augmentation
    (what is embedded), restricted to ``--limit-train``'s fixed ``pool`` of indices when
    given (the same as tools/train.py's), and the whole set's size."""
    from torch.utils.data import Subset

    from ..data import build_dataset, default_in_chans, fixed_subset

    train, _ = build_dataset(args.dataset, args.data_path, "train", args.img_size, default_in_chans(args.dataset),
                             augment=False)
    size = len(train)
    if args.limit_train is None or args.limit_train >= size:
        return train, None, size
    pool = torch.tensor(fixed_subset(size, args.limit_train), dtype=torch.long)
    return Subset(train, pool.tolist()), pool, size


def in_whole_set(positions: torch.Tensor, pool: torch.Tensor | None) -> torch.Tensor:
    """Selected ``positions`` within ``pool`` as sorted indices of the whole training set."""
    return positions if pool is None else torch.sort(pool[positions]).values


if __name__ == "__main__":
    raise SystemExit(main())
