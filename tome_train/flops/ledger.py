"""The FLOPs ledger: one row per pass over data, by kind, so equal-budget comparisons add up.

Kinds:

* ``train``: training epochs, forward + backward: 3 forward-equivalents per sample
  (backward about 2 forwards; the same factor for dense and sparse runs, so ratios
  between runs are exact in forward FLOPs);
* ``score``: scoring passes (EL2N, forgetting evaluation, curvature, ...);
* ``select``: feature extraction for coreset selection (embedding the training set);
* ``condense``: dataset condensation.

Forward-only passes count 1 forward-equivalent per sample; a pass that also runs a
backward (GraNd, curvature's input gradients, condensation's matching loss) says so
with ``passes``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

KINDS = ("train", "score", "select", "condense")
TRAIN_FLOPS_PER_FORWARD = 3  # forward + backward (about 2x forward: grads of inputs and weights)


def _non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


@dataclass
class TrainingFlopsLedger:
    """What a run spent, one row per pass: kind, epoch (or step), samples, forward GFLOPs
    per sample, forward-equivalents per sample, GFLOPs of the row, wall seconds."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def record(
        self,
        kind: str = "train",
        *,
        samples: int,
        forward_gflops: float,
        wall_s: float,
        epoch: int | None = None,
        step: int | None = None,
        passes: float | None = None,
    ) -> dict[str, Any]:
        """Add a row: ``gflops = passes * forward_gflops * samples``.

        ``passes`` (forward-equivalents per sample) defaults to 3 for ``train`` and 1
        for the other kinds. ``epoch`` or ``step`` says when the pass ran (either, both
        or neither).
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
            raise ValueError(f"samples must be an int >= 0, got {samples!r}")
        forward_gflops = float(_non_negative("forward_gflops", forward_gflops))
        wall_s = float(_non_negative("wall_s", wall_s))
        if passes is None:
            passes = TRAIN_FLOPS_PER_FORWARD if kind == "train" else 1
        if _non_negative("passes", passes) == 0:
            raise ValueError("passes must be > 0")
        row: dict[str, Any] = {"kind": kind}
        if epoch is not None:
            row["epoch"] = int(epoch)
        if step is not None:
            row["step"] = int(step)
        row.update({
            "samples": int(samples),
            "forward_gflops_per_sample": forward_gflops,
            "passes": passes,
            "gflops": passes * forward_gflops * samples,
            "wall_s": wall_s,
        })
        self.rows.append(row)
        return row

    def totals(self) -> dict[str, Any]:
        """Training totals (``train_gflops``, ``samples``, ``wall_s``, ``epochs``: train rows only),
        ``gflops`` over every kind, and ``by_kind``: ``{kind: {gflops, samples, wall_s, rows}}``."""
        by_kind: dict[str, dict[str, float]] = {}
        for row in self.rows:
            entry = by_kind.setdefault(row["kind"], {"gflops": 0.0, "samples": 0, "wall_s": 0.0, "rows": 0})
            entry["gflops"] += row["gflops"]
            entry["samples"] += row["samples"]
            entry["wall_s"] += row["wall_s"]
            entry["rows"] += 1
        train = by_kind.get("train", {"gflops": 0.0, "samples": 0, "wall_s": 0.0, "rows": 0})
        return {
            "train_gflops": train["gflops"],
            "samples": train["samples"],
            "wall_s": train["wall_s"],
            "epochs": train["rows"],
            "gflops": sum(entry["gflops"] for entry in by_kind.values()),
            "by_kind": by_kind,
        }

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        """Add rows of another ledger (e.g. ``summary.json["ledger"]`` of the runs a comparison
        paid for); rows written before kinds existed count as ``train``."""
        for row in rows:
            kind = row.get("kind", "train")
            passes = row.get("passes", TRAIN_FLOPS_PER_FORWARD if kind == "train" else 1)
            self.record(kind, samples=int(row["samples"]), forward_gflops=row["forward_gflops_per_sample"],
                        wall_s=row["wall_s"], epoch=row.get("epoch"), step=row.get("step"), passes=passes)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or "rows" not in state:
            raise ValueError("ledger state must be a dict holding 'rows'")
        self.rows = [dict(r) for r in state["rows"]]
