"""``tools/compare.py``: hierarchical sparsity against dense training and random pruning.

Runs, on one data set and model, for every seed:

* ``dense``     all data, all tokens;
* ``random``    a fixed random subset of ``--data-keep`` (same sample presentations as the selector);
* ``selector``  the forgetting-driven example selector at ``--data-keep``;
* ``tokens``    token pruning at ``--keep-rate`` alone;
* ``all``       every level together (selector + tokens, + attention with ``--attn-keep``).

Prints a table, writes ``compare.json`` (top-1 mean/std over seeds, training GFLOPs,
wall time, ratios to dense) and ``compare.png`` (top-1 against training FLOPs) to
``--output-dir``. Finished runs (their ``summary.json``) are reused unless ``--rerun``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from .common import fraction

VARIANTS = ("dense", "random", "selector", "tokens", "all")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data-path", default=None)
    p.add_argument("--model", default=None, help="default: the data set's default model")
    p.add_argument("--epochs", type=int, default=None, help="default: 8 for digits, else 30")
    p.add_argument("--seeds", default="0", help="comma-separated, e.g. 0,1")
    p.add_argument("--keep-rate", type=fraction("--keep-rate"), default=0.7)
    p.add_argument("--data-keep", type=fraction("--data-keep"), default=0.8)
    p.add_argument("--attn-keep", type=fraction("--attn-keep"), default=None)
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"subset of {','.join(VARIANTS)}")
    p.add_argument("--device", default="cpu")
    p.add_argument("--output-dir", default="runs/compare")
    p.add_argument("--train-args", default="", help="extra tools/train.py arguments, quoted")
    p.add_argument("--rerun", action="store_true", help="ignore finished runs in --output-dir")
    return p


def variant_args(variant: str, args: argparse.Namespace) -> list[str]:
    token = ["--keep-rate", str(args.keep_rate)]
    data = ["--data-keep", str(args.data_keep)]
    if variant == "dense":
        return ["--keep-rate", "1.0", "--data-keep", "1.0"]
    if variant == "random":
        return ["--keep-rate", "1.0", *data, "--random-subset"]
    if variant == "selector":
        return ["--keep-rate", "1.0", *data]
    if variant == "tokens":
        return [*token, "--data-keep", "1.0"]
    if variant == "all":
        attn = ["--attn-keep", str(args.attn_keep)] if args.attn_keep is not None else []
        return [*token, *data, *attn]
    raise ValueError(f"--variants: unknown variant {variant!r} (allowed: {', '.join(VARIANTS)})")


def run_one(variant: str, seed: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from .train import main as train_main

    run_dir = out / variant / f"seed{seed}"
    summary_path = run_dir / "summary.json"
    argv = ["--dataset", args.dataset, "--seed", str(seed), "--device", args.device,
            "--output-dir", str(run_dir), "--no-progress", *variant_args(variant, args)]
    for flag, value in (("--data-path", args.data_path), ("--model", args.model), ("--epochs", args.epochs)):
        if value is not None:
            argv += [flag, str(value)]
    argv += shlex.split(args.train_args)
    # Reuse a finished run only if it was made with the same training arguments.
    if summary_path.exists() and not args.rerun:
        summary = json.loads(summary_path.read_text())
        if _same_training(summary.get("args", {}), argv):
            return summary
    print(f"[compare] {variant} seed {seed}: train.py {' '.join(argv)}", file=sys.stderr, flush=True)
    train_main(argv)
    return json.loads(summary_path.read_text())


# Arguments that do not change what a run computes.
_NOT_COMPARED = {"output_dir", "resume", "no_progress", "num_workers", "threads"}


def _same_training(saved: dict[str, Any], argv: list[str]) -> bool:
    from .train import _json_args
    from .train_args import parse_args, resolve_defaults

    wanted = _json_args(resolve_defaults(parse_args(argv)))
    keys = (set(saved) | set(wanted)) - _NOT_COMPARED
    # A None asked for is a default that the run resolved itself (e.g. img_size).
    return all(saved.get(k) == wanted.get(k) for k in keys if wanted.get(k) is not None)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for variant, runs in results.items():
        top1, top1_std = _mean_std([r["top1"] for r in runs])
        gflops, _ = _mean_std([r["train_gflops"] for r in runs])
        wall, _ = _mean_std([r["wall_s"] for r in runs])
        table[variant] = {"top1_mean": top1, "top1_std": top1_std, "top1": [r["top1"] for r in runs],
                          "train_gflops": gflops, "wall_s": wall, "seeds": len(runs)}
    dense = table.get("dense")
    for row in table.values():
        row["gflops_ratio"] = row["train_gflops"] / dense["train_gflops"] if dense else None
        row["wall_ratio"] = row["wall_s"] / dense["wall_s"] if dense else None
        row["top1_delta"] = row["top1_mean"] - dense["top1_mean"] if dense else None
    return table


def format_table(table: dict[str, dict[str, Any]]) -> str:
    lines = [f"{'variant':<10} {'top-1 %':>14} {'train GFLOPs':>13} {'x dense':>8} {'wall s':>8} {'x dense':>8}"]
    for name, r in table.items():
        ratio = f"{r['gflops_ratio']:.3f}" if r["gflops_ratio"] is not None else "-"
        wall_ratio = f"{r['wall_ratio']:.3f}" if r["wall_ratio"] is not None else "-"
        lines.append(f"{name:<10} {r['top1_mean']:>8.2f} ± {r['top1_std']:<4.2f} {r['train_gflops']:>13.1f} "
                     f"{ratio:>8} {r['wall_s']:>8.1f} {wall_ratio:>8}")
    return "\n".join(lines)


def plot(table: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, r in table.items():
        x = r["gflops_ratio"] if r["gflops_ratio"] is not None else r["train_gflops"]
        ax.errorbar(x, r["top1_mean"], yerr=r["top1_std"], fmt="o", capsize=3, label=name)
        ax.annotate(name, (x, r["top1_mean"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("training FLOPs (x dense)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds: comma-separated ints, got {args.seeds!r}")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if not seeds or not variants or bad:
        parser.error(f"--variants: allowed {', '.join(VARIANTS)}; --seeds: at least one (got {args.seeds!r}, {bad})")
    if args.epochs is None:
        args.epochs = 8 if args.dataset == "digits" else 30
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = {v: [run_one(v, s, args, out) for s in seeds] for v in variants}
    table = aggregate(results)
    report = {
        "dataset": args.dataset, "model": args.model or results[variants[0]][0].get("args", {}).get("model"),
        "epochs": args.epochs, "seeds": seeds, "keep_rate": args.keep_rate, "data_keep": args.data_keep,
        "attn_keep": args.attn_keep, "variants": table, "total_wall_s": time.perf_counter() - start,
    }
    (out / "compare.json").write_text(json.dumps(report, indent=2))
    title = (f"{args.dataset}, {report['model']}, {args.epochs} ep, seeds {args.seeds}; "
             f"keep {args.keep_rate}, data {args.data_keep}")
    plot(table, out / "compare.png", title)
    print(format_table(table))
    print(f"[compare] wrote {out / 'compare.json'} and {out / 'compare.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
