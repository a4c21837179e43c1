"""Arguments of ``tools/coreset.py``: the parser and the checks that need no data."""

from __future__ import annotations

import argparse
from typing import Any

from tome_train.argtypes import one_line_errors

from ..coreset.learned.pipeline import PROBE_GROUPINGS
from ..data.registry import DATASETS
from ..engine.runtime import DEVICES
from .common import flags_taken

# learned: features and its predicted scores; kcenter-mean: k-center started at the class mean
FEATURE_METHODS = ("random", "herding", "kcenter", "kcenter-mean", "learned", "spectral-random")
SCORE_RULES = ("hard", "easy", "ccs")  # "SCORE" alone means hard: the most important samples
DEFAULT_IMG_SIZE = {"digits": 16, "fashion-mnist": 28, "cifar10": 32}
DEFAULT_EMBED_EPOCHS = {"digits": 30}


def build_parser(description: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coreset.py", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data-path", default=None)
    p.add_argument("--methods", default="random,herding,kcenter",
                   help="comma-separated: random, herding, kcenter, kcenter-mean (first centre at the class mean), learned, "
                        "spectral-random (learned's clusters, uniform scores), a tome_train.scoring method "
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
    p.add_argument("--limit-train", type=int, default=None,
                   help="work within a fixed random N of the training set (tools/train.py's --limit-train, the "
                        "same N for every seed): the whole-data run trains on them, subsets are chosen among them "
                        "and saved as indices of the whole set")
    p.add_argument("--score-epochs", type=int, default=None, help="epochs of the scoring runs (scoring's default)")
    p.add_argument("--paired-with", default="random,learned",
                   help="methods every other one is compared with per selection seed (row minus it, 95%% "
                        "t-interval); those not in --methods are skipped")
    p.add_argument("--train-args", default="", help="extra tools/train.py arguments for every run, quoted")
    g = p.add_argument_group("learned selector (tome_train.coreset.learned.pipeline)")
    add_probe_arguments(g)
    g.add_argument("--vit-epochs", type=int, default=3, help="epochs of the ViT giving CLS-attention statistics")
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--output-dir", default="runs/coreset")
    p.add_argument("--rerun", action="store_true", help="ignore finished runs in --output-dir")
    return one_line_errors(p)


def add_probe_arguments(parser: Any) -> None:
    """The learned selector's probe options, shared by tools/coreset.py and tools/select.py."""
    parser.add_argument("--probe-clusters", type=int, default=8, help="k-means clusters, one probe model each")
    parser.add_argument("--probe-epochs", type=int, default=15, help="epochs of each probe model")
    parser.add_argument("--probe-grouping", choices=PROBE_GROUPINGS, default="class",
                        help="probe clusters: one k-means group of every class each (class), or k-means over all")


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


# tools/train.py flags set per network here; repeated in --train-args they would silently win.
OWN_TRAIN_FLAGS = frozenset({"--seed", "--output-dir", "--resume", "--epochs", "--dataset", "--data-path",
                             "--model", "--device", "--img-size", "--subset", "--eval-every"})


def check_args(args: argparse.Namespace) -> dict[str, Any]:
    """Validate everything that needs no data; return the parsed lists."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise ValueError("--methods: at least one method expected")
    parsed = {m: parse_method(m) for m in methods}
    needed = {score for _, score in parsed.values() if score is not None}
    if any(rule == "learned" for rule, _ in parsed.values()):
        from ..coreset.learned.pipeline import INDICATOR_SCORES

        needed |= set(INDICATOR_SCORES)  # the learned selector's indicators come from the whole-data run
    scores = sorted(needed)
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
    if args.limit_train is not None and any(rule == "learned" for rule, _ in parsed.values()):
        raise ValueError("--limit-train: not available with the learned method (its pipeline reads the whole "
                         "training set)")
    for name in ("models", "eval_epochs", "embed_epochs", "score_epochs", "limit_train", "img_size", "probe_clusters",
                 "probe_epochs", "vit_epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.dataset != "digits" and args.data_path is None:
        raise ValueError(f"--data-path is required for --dataset {args.dataset}")
    taken = flags_taken(args.train_args, OWN_TRAIN_FLAGS)
    if taken:
        raise ValueError(f"--train-args: {', '.join(taken)} is set per network by coreset.py itself")
    paired_with = [m.strip() for m in args.paired_with.split(",") if m.strip()]
    for name in paired_with:
        try:
            _, score = parse_method(name)
            if score is not None:
                from .coreset_scores import check_scores

                check_scores([score])
        except ValueError:
            raise ValueError(f"--paired-with: {name!r} is not a method (names as in --methods expected)") from None
    return {"methods": parsed, "scores": scores, "budgets": budgets, "seeds": seeds, "paired_with": paired_with}
