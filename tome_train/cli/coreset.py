"""``tools/coreset.py``: coreset baselines under the dataset-condensation papers' protocol.

1. Train one ConvNet on the whole training set (``--embed-epochs``); its top-1 is the
   whole-data reference and its ``forward_features`` of every (unaugmented) training
   image is the embedding that herding and k-center select in.
2. Per method, budget (``--ipc`` images per class, or ``--fractions`` of the set) and
   selection seed (``--seeds``), choose a subset with :func:`tome_train.coreset.select`.
3. Train ``--models`` fresh ConvNets on each subset through ``tools/train.py``'s engine
   (``--subset``) and test them on the full test set.

Writes ``coreset.json`` (per method and budget: top-1 mean/std/list, budget, selection
and scoring seconds; the whole-data top-1) and ``coreset.png`` to ``--output-dir``.
Finished runs (their ``summary.json``, made with the same arguments and subset) are
reused unless ``--rerun``. The training recipe is fixed across methods; see
:func:`protocol_args`.

Methods: ``random``, ``herding``, ``kcenter``; a per-sample score of
:mod:`tome_train.scoring` (``forgetting``, ``el2n``, ...) keeps the most important
samples per class; ``easy:SCORE`` and ``ccs:SCORE`` use the other rules.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_save, atomic_write_text
from .common import exits_on_bad_input, one_line_errors

FEATURE_METHODS = ("random", "herding", "kcenter")
SCORE_RULES = ("hard", "easy", "ccs")  # "SCORE" alone means hard: the most important samples
DEFAULT_IMG_SIZE = {"digits": 16, "fashion-mnist": 28, "cifar10": 32}
DEFAULT_EMBED_EPOCHS = {"digits": 30}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coreset.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", help="digits, fashion-mnist, cifar10, imagefolder")
    p.add_argument("--data-path", default=None)
    p.add_argument("--methods", default="random,herding,kcenter",
                   help="comma-separated: random, herding, kcenter, a tome_train.scoring method "
                        "(e.g. forgetting), easy:SCORE or ccs:SCORE")
    p.add_argument("--ipc", default=None, help="images per class, comma-separated (default 1,10)")
    p.add_argument("--fractions", default=None, help="fractions of the training set instead of --ipc, e.g. 0.7")
    p.add_argument("--models", type=int, default=3, help="fresh networks trained per subset")
    p.add_argument("--seeds", default="0", help="selection seeds, comma-separated")
    p.add_argument("--model", default="convnet3")
    p.add_argument("--img-size", type=int, default=None, help="default: 16 digits, 28 fashion-mnist, 32 cifar10")
    p.add_argument("--embed-epochs", type=int, default=None,
                   help="epochs of the whole-data network (default 30 for digits, else 8)")
    p.add_argument("--eval-epochs", type=int, default=300, help="epochs of each network trained on a subset")
    p.add_argument("--score-epochs", type=int, default=None, help="epochs of the scoring runs (scoring's default)")
    p.add_argument("--train-args", default="", help="extra tools/train.py arguments for every run, quoted")
    p.add_argument("--device", default="cpu")
    p.add_argument("--output-dir", default="runs/coreset")
    p.add_argument("--rerun", action="store_true", help="ignore finished runs in --output-dir")
    return one_line_errors(p)


def _ints(text: str, name: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"{name}: comma-separated integers expected, got {text!r}") from None
    if not values:
        raise ValueError(f"{name}: at least one value expected, got {text!r}")
    return values


def parse_method(spec: str) -> tuple[str, str | None]:
    """``"herding"`` -> ("herding", None); ``"forgetting"`` -> ("hard", "forgetting");
    ``"ccs:el2n"`` -> ("ccs", "el2n")."""
    if spec in FEATURE_METHODS:
        return spec, None
    rule, _, score = spec.rpartition(":")
    rule = rule or "hard"
    if rule not in SCORE_RULES or not score:
        raise ValueError(f"--methods: unknown method {spec!r} (allowed: {', '.join(FEATURE_METHODS)}, a "
                         f"score of tome_train.scoring, or RULE:SCORE with RULE in {', '.join(SCORE_RULES)})")
    return rule, score


def check_args(args: argparse.Namespace) -> dict[str, Any]:
    """Validate everything that needs no data; return the parsed lists."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise ValueError("--methods: at least one method expected")
    parsed = {m: parse_method(m) for m in methods}
    scores = sorted({score for _, score in parsed.values() if score is not None})
    if scores:
        from .coreset_scores import check_scores

        check_scores(scores)
    if args.ipc is not None and args.fractions is not None:
        raise ValueError("--ipc and --fractions both set the budget: give one")
    if args.fractions is not None:
        try:
            fractions = [float(t) for t in args.fractions.split(",") if t.strip()]
        except ValueError:
            raise ValueError(f"--fractions: comma-separated numbers expected, got {args.fractions!r}") from None
        if not fractions or not all(0.0 < f <= 1.0 for f in fractions):
            raise ValueError(f"--fractions: numbers in (0, 1] expected, got {args.fractions!r}")
        budgets = [("fraction", f) for f in fractions]
    else:
        ipcs = _ints(args.ipc or "1,10", "--ipc")
        if min(ipcs) < 1:
            raise ValueError(f"--ipc: images per class must be >= 1, got {min(ipcs)}")
        budgets = [("ipc", k) for k in ipcs]
    seeds = _ints(args.seeds, "--seeds")
    if min(seeds) < 0:
        raise ValueError(f"--seeds: non-negative integers expected, got {args.seeds!r}")
    for name in ("models", "eval_epochs", "embed_epochs", "score_epochs", "img_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.dataset != "digits" and args.data_path is None:
        raise ValueError(f"--data-path is required for --dataset {args.dataset}")
    return {"methods": parsed, "scores": scores, "budgets": budgets, "seeds": seeds}


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


def train_or_reuse(argv: list[str], rerun: bool, hooks: tuple = (), subset_digest: str | None = None,
                   extra_file: Path | None = None) -> tuple[dict[str, Any], bool]:
    """``(summary, reused)``: a finished run with the same arguments (and subset) is reused."""
    from .compare import _same_training
    from .train import main as train_main

    run_dir = Path(argv[argv.index("--output-dir") + 1])
    summary_path = run_dir / "summary.json"
    if summary_path.exists() and not rerun and (extra_file is None or extra_file.exists()):
        summary = json.loads(summary_path.read_text())
        same_subset = subset_digest is None or (summary.get("subset") or {}).get("digest") == subset_digest
        if same_subset and _same_training(summary.get("args", {}), argv):
            return summary, True
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "train.log", "w") as log, contextlib.redirect_stdout(log):
        summary = train_main(argv, extra_hooks=hooks)
    return summary, False


def whole_data(args: argparse.Namespace, seed: int, out: Path, plain: Any, scores: list[str]) -> dict[str, Any]:
    """Train (or reuse) the whole-data network. Returns its ``summary``, the ``features`` and
    ``labels`` of ``plain`` (the training set without augmentation) and the raw values of
    the ``scores`` measured on the same run (with their extra ``score_s``)."""
    from ..coreset.embed import EmbeddingHook
    from .coreset_scores import ScoreHooks

    run_dir = out / "whole" / f"seed{seed}"
    saved_path = run_dir / "features.pt"
    argv = protocol_args(args, args.embed_epochs, seed, run_dir)
    if saved_path.exists() and not args.rerun:
        saved = torch.load(saved_path, map_location="cpu", weights_only=True)
        if not set(scores) <= set(saved["scores"]):
            args_rerun = argparse.Namespace(**{**vars(args), "rerun": True})
            _log(f"whole data: rerun to add scores {sorted(set(scores) - set(saved['scores']))}")
            return whole_data(args_rerun, seed, out, plain, scores)
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
    return select(rule, budget, features=features if scores is None else None, scores=scores,
                  labels=labels, balance=balance, seed=seed)


def check_ipc(budgets: list[tuple[str, float]], labels: torch.Tensor) -> None:
    smallest = int(torch.bincount(labels).min())
    for kind, value in budgets:
        if kind == "ipc" and value > smallest:
            raise ValueError(f"--ipc {value} exceeds the smallest class of the training set ({smallest} images)")


@exits_on_bad_input
def main(argv: list[str] | None = None) -> int:
    from ..data import save_indices
    from ..engine import index_digest
    from .coreset_report import aggregate, format_table, plot

    args = build_parser().parse_args(argv)
    lists = check_args(args)
    args.img_size = args.img_size or DEFAULT_IMG_SIZE.get(args.dataset, 32)
    args.embed_epochs = args.embed_epochs or DEFAULT_EMBED_EPOCHS.get(args.dataset, 8)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    plain = _plain_train_set(args)
    check_ipc(lists["budgets"], torch.as_tensor(plain.targets).long())
    run = whole_data(args, lists["seeds"][0], out, plain, lists["scores"])
    whole, features, labels, score_s = run["summary"], run["features"], run["labels"], run["score_s"]
    _log(f"whole data: top-1 {whole['top1']:.2f}% after {args.embed_epochs} epochs; "
         f"embedding {tuple(features.shape)}")
    scores = {}
    if lists["scores"]:
        from .coreset_scores import importance

        scores = {name: importance(name, run["scores"][name]) for name in lists["scores"]}
    rows: list[dict[str, Any]] = []
    for method, (rule, score) in lists["methods"].items():
        for kind, value in lists["budgets"]:
            top1, select_s, budget = [], [], 0
            for seed in lists["seeds"]:
                t0 = time.perf_counter()
                indices = choose(rule, kind, value, seed, features, labels, scores.get(score))
                select_s.append(time.perf_counter() - t0)
                budget = int(indices.numel())
                sel_dir = out / method.replace(":", "-") / budget_name(kind, value) / f"seed{seed}"
                save_indices(indices, sel_dir / "indices.pt")
                for m in range(args.models):
                    argv_m = protocol_args(args, args.eval_epochs, 1000 * seed + m, sel_dir / f"model{m}")
                    argv_m += ["--subset", str(sel_dir / "indices.pt")]
                    summary, reused = train_or_reuse(argv_m, args.rerun, subset_digest=index_digest(indices))
                    top1.append(float(summary["top1"]))
                    _log(f"{method} {budget_name(kind, value)} seed {seed} model {m}: top-1 {top1[-1]:.2f}%"
                         f"{' (reused)' if reused else ''}")
            rows.append({"method": method, "rule": rule, "score": score, kind: value, "budget": budget,
                         "top1": top1, "select_s": sum(select_s) / len(select_s),
                         "score_s": score_s.get(score, 0.0) if score else 0.0})
    report = {
        "dataset": args.dataset, "model": args.model, "img_size": args.img_size, "seeds": lists["seeds"],
        "models": args.models, "embed_epochs": args.embed_epochs, "eval_epochs": args.eval_epochs,
        "protocol": {**PROTOCOL, "schedule": "cosine", "train_args": args.train_args},
        "whole_data": {"top1": whole["top1"], "epochs": args.embed_epochs, "num_train": whole["num_train"],
                       "wall_s": whole["wall_s"]},
        "results": aggregate(rows), "total_wall_s": time.perf_counter() - start,
    }
    atomic_write_text(json.dumps(report, indent=2) + "\n", out / "coreset.json")
    plot(report, out / "coreset.png")
    print(format_table(report))
    _log(f"wrote {out / 'coreset.json'} and {out / 'coreset.png'}")
    return 0


def _plain_train_set(args: argparse.Namespace) -> Any:
    """The training set in data set order, without augmentation (what is embedded)."""
    from ..data import build_dataset, default_in_chans

    train, _ = build_dataset(args.dataset, args.data_path, "train", args.img_size, default_in_chans(args.dataset),
                             augment=False)
    return train


if __name__ == "__main__":
    raise SystemExit(main())
