"""``tools/select.py``: choose a subset of a training set once and write it for ``tools/train.py --subset``.

``--method learned`` runs the learned multi-metric selector (:mod:`tome_train.coreset.learned.pipeline`):
one whole-data ConvNet run gives the embedding and the per-sample scores, a small ViT the
CLS-attention statistics, probe models the cluster labels, an MLP the predicted score of
every sample; the subset is the top predicted samples of each spectral cluster (within
each class, in proportion to its size). ``random``, ``herding`` and ``kcenter`` select
from the same run's embedding.

``--output-dir`` receives ``indices.pt`` (``{"indices": LongTensor}``), ``recipe.json``
(indicators used, cluster labels, timings per stage, FLOPs-ledger rows of kind
``select``) and, for ``learned``, ``scores.pt`` (predicted score per sample),
``clusters.pt`` (spectral cluster per sample; k-means probe cluster, -1 for validation
samples) and ``regressor_curve.json``. Training runs live under ``DIR/work``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch

from tome_train.argtypes import one_line_errors
from tome_train.validation import writable_output_dir

from ..atomic import atomic_save, atomic_write_text
from ..data.registry import DATASETS
from ..engine.runtime import DEVICES
from .common import exits_on_bad_input
from .coreset_args import add_probe_arguments

METHODS = ("learned", "random", "herding", "kcenter")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="select.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", default="learned", choices=METHODS)
    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data-path", default=None)
    p.add_argument("--budget", required=True, help="samples to keep: a count (431) or a fraction (0.3)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run and of the selection")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--clusters", type=int, default=None, help="spectral clusters per class (default: the class's budget / 3, at most n/10)")
    p.add_argument("--model", default="convnet3", help="the whole-data network (embedding and scores)")
    p.add_argument("--img-size", type=int, default=None, help="default: 16 digits, 28 fashion-mnist, 32 cifar10")
    p.add_argument("--embed-epochs", type=int, default=None, help="whole-data epochs (default 30 digits, else 8)")
    add_probe_arguments(p)
    p.add_argument("--vit-epochs", type=int, default=3)
    p.add_argument("--validation-fraction", type=float, default=0.2,
                   help="share of each class held out of the training set to judge the probes")
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--rerun", action="store_true", help="ignore finished runs under DIR/work")
    return one_line_errors(p)


def parse_budget(text: str, num: int) -> int:
    """``"431"`` -> 431; ``"0.3"`` -> ``round(0.3 * num)`` (at least 1). ValueError names ``--budget``."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--budget: a count or a fraction expected, got {text!r}") from None
    is_count = text.strip().lstrip("+").isdigit()
    if is_count:
        budget = int(text)
    elif 0.0 < value <= 1.0:
        budget = max(1, round(value * num))
    else:
        raise ValueError(f"--budget: a fraction must be in (0, 1], got {text!r}")
    if not 0 < budget <= num:
        raise ValueError(f"--budget {text} must be in [1, {num}] (the training set size)")
    return budget


def _check(args: argparse.Namespace) -> None:
    for name in ("clusters", "embed_epochs", "img_size", "probe_clusters", "probe_epochs", "vit_epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if not 0.0 < args.validation_fraction < 1.0:
        raise ValueError(f"--validation-fraction must be in (0, 1), got {args.validation_fraction}")
    if args.dataset != "digits" and args.data_path is None:
        raise ValueError(f"--data-path is required for --dataset {args.dataset}")


@exits_on_bad_input
def main(argv: list[str] | None = None) -> int:
    from ..coreset import select
    from ..coreset.learned.pipeline import INDICATOR_SCORES, LearnedConfig, predict_scores
    from ..data import save_indices
    from ..scoring.passes import dataset_labels
    from .coreset import DEFAULT_EMBED_EPOCHS, DEFAULT_IMG_SIZE, _plain_train_set, whole_data

    args = build_parser().parse_args(argv)
    _check(args)
    args.img_size = args.img_size or DEFAULT_IMG_SIZE.get(args.dataset, 32)
    args.embed_epochs = args.embed_epochs or DEFAULT_EMBED_EPOCHS.get(args.dataset, 8)
    args.train_args, args.limit_train = "", None  # the whole-data run of tools/coreset.py, on the whole set
    out = writable_output_dir(args.output_dir)
    start = time.perf_counter()
    plain, _, _ = _plain_train_set(args)
    labels = dataset_labels(plain)
    budget = parse_budget(args.budget, labels.numel())
    if args.clusters is not None and args.clusters > int(torch.bincount(labels).min()):
        raise ValueError(f"--clusters {args.clusters} exceeds the samples of the smallest class "
                         f"({int(torch.bincount(labels).min())})")
    if args.method == "learned":
        from ..coreset.learned import validation_split

        validation_split(labels, args.validation_fraction, args.seed)  # an empty class fails before any training
    if args.method == "random":
        run: dict[str, Any] = {"features": None, "summary": None}
    else:
        scores_needed = list(INDICATOR_SCORES) if args.method == "learned" else []
        run = whole_data(args, args.seed, out / "work", plain, scores_needed)
    recipe: dict[str, Any] = {"method": args.method, "dataset": args.dataset, "budget": budget, "seed": args.seed,
                              "num_samples": int(labels.numel())}
    options: dict[str, Any] = {}
    if args.method == "learned":
        cfg = LearnedConfig(dataset=args.dataset, data_path=args.data_path, img_size=args.img_size, seed=args.seed,
                            device=args.device, probe_clusters=args.probe_clusters, probe_epochs=args.probe_epochs,
                            probe_grouping=args.probe_grouping, vit_epochs=args.vit_epochs,
                            validation_fraction=args.validation_fraction)
        result = predict_scores(cfg, plain, run, out / "work" / "learned", rerun=args.rerun)
        options = {"clusters": args.clusters, "cluster_seed": args.seed}
        recipe.update({key: result[key] for key in ("indicators", "indicator_columns", "cluster_labels", "config",
                                                    "timings", "ledger")})
        atomic_save({"scores": result["scores"]}, out / "scores.pt")
        atomic_write_text(json.dumps(result["regressor_curve"]) + "\n", out / "regressor_curve.json")
    t0 = time.perf_counter()
    indices = select(args.method, budget, features=run["features"], labels=labels, seed=args.seed,
                     scores=result["scores"] if args.method == "learned" else None, **options)
    recipe.setdefault("timings", {})["selection_s"] = time.perf_counter() - t0
    if args.method == "learned":
        from ..coreset.learned import class_clusters

        spectral = class_clusters(run["features"], labels, args.seed, args.clusters, selected=indices)
        atomic_save({"spectral": spectral, "probe": result["probe_clusters"]}, out / "clusters.pt")
    save_indices(indices, out / "indices.pt")
    recipe["total_s"] = time.perf_counter() - start
    recipe["select_gflops"] = sum(row["gflops"] for row in recipe.get("ledger", []))
    atomic_write_text(json.dumps(recipe, indent=2) + "\n", out / "recipe.json")
    print(f"[select] {args.method}: {indices.numel()} of {labels.numel()} samples -> {out / 'indices.pt'} "
          f"({recipe['total_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
