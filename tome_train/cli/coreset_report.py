"""Tables and the plot of ``tools/coreset.py`` (top-1 per method and budget).

Selection seed ``s`` of every method starts its networks from the same initialisations
(network seed ``1000 s + m``), so methods are compared per seed: the difference of the
seed's mean top-1 to a reference method, summarised as a mean with a 95% Student-t
interval over the seeds.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from ..atomic import atomic_savefig
from .compare_report import interval


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and population standard deviation (as the condensation papers report them)."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _budget_key(row: dict[str, Any]) -> str:
    return f"ipc{row['ipc']}" if "ipc" in row else f"frac{row['fraction']:g}"


def aggregate(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{method: {"ipc1": {method, budget, top1_mean, top1_std, top1, select_s, score_s, ...}}}``."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        mean, std = mean_std(row["top1"])
        table.setdefault(row["method"], {})[_budget_key(row)] = {
            **row, "top1_mean": mean, "top1_std": std, "runs": len(row["top1"]),
        }
    return table


def per_seed_top1(row: dict[str, Any], seeds: int) -> list[float]:
    """Mean top-1 of each selection seed (``row["top1"]`` lists seed by seed, model by model)."""
    if seeds < 1 or len(row["top1"]) % seeds:
        raise ValueError(f"seeds: {len(row['top1'])} runs do not split into {seeds} seeds")
    models = len(row["top1"]) // seeds
    return [statistics.fmean(row["top1"][i * models:(i + 1) * models]) for i in range(seeds)]


def add_paired(table: dict[str, dict[str, dict[str, Any]]], seeds: int, references: list[str]) -> None:
    """Add ``row["paired"][ref] = {"mean", "ci95", "values"}``: the row minus ``ref`` per seed,
    for every reference method in ``table`` and every budget both ran."""
    for ref in (r for r in references if r in table):
        for method, per in table.items():
            for key, row in per.items():
                if method == ref or key not in table[ref]:
                    continue
                diffs = [a - b for a, b in zip(per_seed_top1(row, seeds), per_seed_top1(table[ref][key], seeds))]
                row.setdefault("paired", {})[ref] = interval(diffs)


def _difference(cell: dict[str, Any]) -> str:
    if cell["ci95"] is None:
        return f"{cell['mean']:+.2f}"
    return f"{cell['mean']:+.2f} [{cell['mean'] - cell['ci95']:+.2f}, {cell['mean'] + cell['ci95']:+.2f}]"


def format_table(report: dict[str, Any]) -> str:
    results = report["results"]
    budgets = list(dict.fromkeys(key for per in results.values() for key in per))
    lines = [f"{'method':<16}" + "".join(f"{b:>16}" for b in budgets)]
    for method, per in results.items():
        cells = [f"{per[b]['top1_mean']:7.2f} ± {per[b]['top1_std']:5.2f}" if b in per else "-" for b in budgets]
        lines.append(f"{method:<16}" + "".join(f"{c:>16}" for c in cells))
    lines.append(f"{'whole data':<16}{report['whole_data']['top1']:>16.2f}")
    references = list(dict.fromkeys(ref for per in results.values() for row in per.values()
                                    for ref in row.get("paired", {})))
    for ref in references:
        lines.append(f"\nrow minus {ref}, paired by selection seed (mean [95% t-interval]):")
        lines.append(f"{'method':<16}" + "".join(f"{b:>24}" for b in budgets))
        for method, per in results.items():
            if method == ref:
                continue
            cells = [_difference(per[b]["paired"][ref]) if ref in per.get(b, {}).get("paired", {}) else "-"
                     for b in budgets]
            lines.append(f"{method:<16}" + "".join(f"{c:>24}" for c in cells))
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """Top-1 against budget, one line per method, the whole-data top-1 dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    by_ipc = True
    for method, per in report["results"].items():
        rows = sorted(per.values(), key=lambda r: r["budget"])
        by_ipc = "ipc" in rows[0]
        x = [r["ipc"] if by_ipc else r["fraction"] for r in rows]
        ax.errorbar(x, [r["top1_mean"] for r in rows], yerr=[r["top1_std"] for r in rows],
                    marker="o", capsize=3, label=method)
    ax.axhline(report["whole_data"]["top1"], color="grey", linestyle="--", label="whole data")
    if by_ipc:
        ax.set_xscale("log")
    ax.set_xlabel("images per class" if by_ipc else "fraction of the training set")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(f"{report['dataset']}, {report['model']}: {report['models']} nets x "
                 f"{len(report['seeds'])} selections, {report['eval_epochs']} ep", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
