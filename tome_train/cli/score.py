"""``tools/score.py``: score every training sample with one method.

Example::

    python tools/score.py --dataset digits --model convnet3 --method el2n --epochs 2 --seeds 0,1 \\
        --output-dir runs/score-el2n

Each seed trains through the engine (``tools/train.py``; options this tool does not know,
e.g. ``--lr`` or ``--limit-train``, go to it unchanged) and is then scored. Writes to
``--output-dir``: ``scores.npz`` (``scores``: float64, one per training sample in data-set
order, ``+inf`` allowed for ``forgetting``; ``labels``: int64), ``scores.png`` (histogram)
and ``scores.json`` (method, direction, epochs, seeds, seconds, cost, per-class
statistics). The training runs live in ``--output-dir/runs/seed<S>`` and are reused when
the arguments match.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tome_train.argtypes import bounded, int_list, one_line_errors
from tome_train.validation import writable_output_dir

from ..atomic import atomic_savefig, atomic_write_bytes
from ..data.registry import DATASETS
from .common import exits_on_bad_input


def build_parser() -> argparse.ArgumentParser:
    from ..scoring import METHODS

    p = argparse.ArgumentParser(
        prog="score.py",
        description="Per-sample scores over a training set (unknown options go to tools/train.py).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--method", required=True, help=f"one of {', '.join(METHODS)}")
    p.add_argument("--dataset", choices=DATASETS, default="digits")
    p.add_argument("--data-path", default=None)
    p.add_argument("--model", default="convnet3", help="timm model name")
    p.add_argument("--epochs", type=bounded(int, "--epochs"), default=10,
                   help="epochs of each scoring run (post-training methods score the model after them)")
    p.add_argument("--seeds", type=int_list, default=(0,), help="comma-separated seeds (initialisations)")
    p.add_argument("--output-dir", default="runs/score")
    p.add_argument("--score-batch-size", type=bounded(int, "--score-batch-size"), default=256,
                   help="samples per batch of the scoring passes")
    p.add_argument("--curvature-probes", type=bounded(int, "--curvature-probes"), default=10,
                   help="curvature: Rademacher probes n")
    p.add_argument("--curvature-h", type=bounded(float, "--curvature-h"), default=1e-3,
                   help="curvature: finite-difference step h")
    p.add_argument("--recipe", choices=("auto", "deepcore", "train"), default="auto",
                   help="training recipe of the scoring runs: deepcore (SGD 0.1, momentum 0.9, weight decay "
                        "5e-4, batch 128, no warm-up, no label smoothing), train (tools/train.py's defaults), "
                        "auto (train for ViTs, deepcore for CNNs); flags given here override single settings")
    p.add_argument("--no-reuse", action="store_true", help="retrain even when a finished run matches")
    return p


def plot_histogram(scores: Any, path: Path, title: str) -> None:
    """Histogram of the finite scores, one stacked colour per class; infinities counted in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values, labels = scores.values.numpy(), scores.labels.numpy()
    finite = np.isfinite(values)
    classes = np.unique(labels)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if finite.any():
        ax.hist([values[finite & (labels == c)] for c in classes], bins=40, stacked=True,
                label=[str(c) for c in classes])
        ax.legend(title="class", fontsize=7, ncol=2)
    inf = int((~finite).sum())
    ax.set_xlabel(f"{scores.method} ({scores.more_important} = more important)"
                  + (f"; {inf} samples at inf, not shown" if inf else ""))
    ax.set_ylabel("samples")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


@exits_on_bad_input
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from ..atomic import atomic_write_text
    from ..scoring import get_method, score_training_set
    from ..scoring.recipe import apply_recipe

    args, train_extra = one_line_errors(build_parser()).parse_known_args(argv)
    method = get_method(args.method)
    if not args.seeds:
        raise ValueError(f"--seeds must list at least one seed, got {args.seeds!r}")
    out = writable_output_dir(args.output_dir)
    train_argv = ["--dataset", args.dataset, "--model", args.model, "--epochs", str(args.epochs),
                  "--no-progress", *train_extra]
    if args.data_path is not None:
        train_argv[2:2] = ["--data-path", args.data_path]
    recipe, run_argv = apply_recipe(train_argv, args.recipe)
    recipe_flags = run_argv[:len(run_argv) - len(train_argv)]
    print(f"[score] recipe {recipe}" + (f" (from --recipe auto, {args.model})" if args.recipe == "auto" else "")
          + f": {' '.join(recipe_flags) or 'tools/train.py defaults'}"
          + (f"; then {' '.join(train_extra)}" if train_extra else ""), flush=True)
    scores = score_training_set(
        method.name, train_argv, args.seeds, out / "runs", reuse=not args.no_reuse, recipe=recipe,
        batch_size=args.score_batch_size, curvature_probes=args.curvature_probes,
        curvature_h=args.curvature_h,
    )
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, scores=scores.values.numpy().astype(np.float64), labels=scores.labels.numpy().astype(np.int64))
    atomic_write_bytes(buffer.getvalue(), out / "scores.npz")
    summary = {**scores.summary(), "dataset": args.dataset, "model": args.model,
               "description": method.description}
    if method.name == "curvature":
        summary["curvature"] = {"probes": args.curvature_probes, "h": args.curvature_h}
    atomic_write_text(json.dumps(summary, indent=2) + "\n", out / "scores.json")
    title = f"{args.dataset}, {args.model}, {method.name}, {args.epochs} ep, seeds {list(args.seeds)}"
    plot_histogram(scores, out / "scores.png", title)
    overall = summary["overall"]
    print(f"{method.name}: {overall['count']} samples ({overall['inf_count']} inf), "
          f"mean {overall.get('mean', float('nan')):.4g}, {scores.more_important} = more important, "
          f"{scores.seconds:.1f} s -> {out / 'scores.npz'}", flush=True)
    return summary


def cli(argv: Sequence[str] | None = None) -> int:
    """Entry of ``tools/score.py`` and ``tome-score``: exit status 0 after a good run."""
    main(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
