"""Per-epoch logs as CSV (for spreadsheets/plots) and JSON lines (for scripts).

Both files are rewritten from the full history each epoch. The history travels in
the checkpoint, so a run resumed into a new output folder still has complete logs.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checkpoint import atomic_write_text

CSV_NAME = "log.csv"
JSONL_NAME = "log.jsonl"


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns


def write_epoch_logs(rows: Sequence[dict[str, Any]], output_dir: str | Path) -> None:
    """Write ``log.csv`` and ``log.jsonl`` under ``output_dir`` (columns: union of row keys)."""
    output_dir = Path(output_dir)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(rows), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(buffer.getvalue(), output_dir / CSV_NAME)
    lines = "".join(json.dumps(row, sort_keys=False) + "\n" for row in rows)
    atomic_write_text(lines, output_dir / JSONL_NAME)
