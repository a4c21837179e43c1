"""Tables, statistics and the plot of ``tools/compare.py``.

Seeds pair the runs: seed ``s`` of every variant sees the same initialisation and data
order, so differences are reported per seed and summarised as a mean with a 95% interval
(Student's t over the seeds), which separates methods far better than two overlapping
mean +- std bars.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from ..atomic import atomic_savefig


def t_quantile_975(dof: int) -> float:
    """Two-sided 95% Student-t quantile (scipy, a dependency of scikit-learn)."""
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def interval(values: list[float]) -> dict[str, Any]:
    """Mean and 95% confidence half-width over seeds (``None`` with a single seed)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": mean, "ci95": None, "values": values}
    half = t_quantile_975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return {"mean": mean, "ci95": half, "values": values}


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def backward_fraction(summary: dict[str, Any]) -> float | None:
    done, dense = summary.get("backward_samples"), summary.get("dense_backward_samples")
    return done / dense if done is not None and dense else None


def attention_active(summary: dict[str, Any]) -> bool | None:
    """Whether the run's attention level ran sparse; None when no run asked for it (or the
    run predates the record)."""
    level = summary.get("attention_level") or {}
    return level.get("active") if level.get("requested") is not None else None


def paired(runs: list[dict[str, Any]], reference: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Top-1 differences to ``reference`` over the seeds both ran."""
    ref = {r["args"]["seed"]: r["top1"] for r in reference}
    diffs = [r["top1"] - ref[r["args"]["seed"]] for r in runs if r["args"]["seed"] in ref]
    return interval(diffs) if diffs else None


def aggregate(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """One row per variant: top-1 over seeds, cost, and paired differences to dense / dynamic random."""
    table: dict[str, dict[str, Any]] = {}
    for variant, runs in results.items():
        top1, top1_std = _mean_std([r["top1"] for r in runs])
        fractions = [backward_fraction(r) for r in runs]
        known = [f for f in fractions if f is not None]
        attention = [attention_active(r) for r in runs]
        reasons = sorted({(r.get("attention_level") or {}).get("reason") or "" for r in runs
                          if attention_active(r) is False} - {""})
        table[variant] = {
            "top1_mean": top1, "top1_std": top1_std, "top1": [r["top1"] for r in runs],
            "seeds": [r["args"]["seed"] for r in runs],
            "backward_fraction": statistics.fmean(known) if known else None,
            "backward_fractions": fractions,
            "train_gflops": statistics.fmean(r["train_gflops"] for r in runs),
            "wall_s": statistics.fmean(r["wall_s"] for r in runs),
            "attn_active": attention[0] if len(set(attention)) == 1 else attention,
            "attn_dense_reason": "; ".join(reasons) or None,
        }
    dense, dynamic = table.get("dense"), table.get("dynamic-random")
    for variant, row in table.items():
        row["gflops_ratio"] = row["train_gflops"] / dense["train_gflops"] if dense else None
        row["wall_ratio"] = row["wall_s"] / dense["wall_s"] if dense else None
        row["top1_delta"] = row["top1_mean"] - dense["top1_mean"] if dense else None
        row["vs_dense"] = paired(results[variant], results["dense"]) if dense else None
        row["vs_dynamic_random"] = (paired(results[variant], results["dynamic-random"])
                                    if dynamic and variant != "dynamic-random" else None)
    return table


def _delta(d: dict[str, Any] | None) -> str:
    if d is None:
        return "-"
    return f"{d['mean']:+.2f}" + (f" ±{d['ci95']:.2f}" if d["ci95"] is not None else "")


def format_table(table: dict[str, dict[str, Any]]) -> str:
    """The printed table; differences are paired over seeds, ± the 95% interval."""
    head = (f"{'variant':<16} {'top-1 %':>14} {'vs dense':>14} {'vs dyn-random':>14} {'backward':>9} "
            f"{'GFLOPs x':>9} {'wall x':>7}")
    lines = [head]
    for name, r in table.items():
        frac = f"{r['backward_fraction']:.3f}" if r["backward_fraction"] is not None else "-"
        ratio = f"{r['gflops_ratio']:.3f}" if r["gflops_ratio"] is not None else "-"
        wall = f"{r['wall_ratio']:.3f}" if r["wall_ratio"] is not None else "-"
        attn = " (attention dense)" if r.get("attn_active") is False else ""
        lines.append(f"{name:<16} {r['top1_mean']:>8.2f} ± {r['top1_std']:<4.2f} {_delta(r['vs_dense']):>14} "
                     f"{_delta(r['vs_dynamic_random']):>14} {frac:>9} {ratio:>9} {wall:>7}{attn}")
    return "\n".join(lines)


def plot(table: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for name, r in table.items():
        x = r["gflops_ratio"] if r["gflops_ratio"] is not None else r["train_gflops"]
        ax.errorbar(x, r["top1_mean"], yerr=r["top1_std"], fmt="o", capsize=3, label=name)
        ax.annotate(name, (x, r["top1_mean"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("training FLOPs (x dense)")
    ax.set_ylabel("top-1 (%), mean ± std over seeds")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
