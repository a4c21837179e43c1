"""Reusing finished training runs: a run directory whose ``summary.json`` records the same
training (every argument that changes what is computed) is not trained again."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

__all__ = ["finished_run", "same_training", "train_or_reuse"]

# Arguments that do not change what a run computes.
_NOT_COMPARED = {"output_dir", "resume", "no_progress", "num_workers", "threads"}


def same_training(saved: dict[str, Any], argv: list[str]) -> bool:
    """Whether a finished run's saved ``args`` compute what ``argv`` asks for."""
    from .args import parse_args, resolve_defaults
    from .train import _json_args

    wanted = _json_args(resolve_defaults(parse_args(argv)))
    keys = (set(saved) | set(wanted)) - _NOT_COMPARED
    # A None asked for is a default that the run resolved itself (e.g. img_size).
    return all(saved.get(k) == wanted.get(k) for k in keys if wanted.get(k) is not None)


def finished_run(argv: list[str], subset_digest: str | None = None,
                 extra_file: Path | None = None) -> dict[str, Any] | None:
    """The summary of the finished run in ``argv``'s ``--output-dir`` if it trained what
    ``argv`` asks for (on the subset of ``subset_digest``, and ``extra_file`` exists), else None."""
    summary_path = Path(argv[argv.index("--output-dir") + 1]) / "summary.json"
    if not summary_path.exists() or (extra_file is not None and not extra_file.exists()):
        return None
    summary = json.loads(summary_path.read_text())
    saved_args = dict(summary.get("args", {}))
    same_subset = subset_digest is None or (summary.get("subset") or {}).get("digest") == subset_digest
    if subset_digest is not None and "--subset" in argv:  # the digest decides: a moved run is still reused
        saved_args["subset"] = argv[argv.index("--subset") + 1]
    return summary if same_subset and same_training(saved_args, argv) else None


def train_or_reuse(argv: list[str], rerun: bool, hooks: tuple = (), subset_digest: str | None = None,
                   extra_file: Path | None = None) -> tuple[dict[str, Any], bool]:
    """``(summary, reused)``: a finished run with the same arguments (and subset) is reused."""
    from .train import main as train_main

    summary = None if rerun else finished_run(argv, subset_digest, extra_file)
    if summary is not None:
        return summary, True
    run_dir = Path(argv[argv.index("--output-dir") + 1])
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "train.log", "w") as log, contextlib.redirect_stdout(log):
        summary = train_main(argv, extra_hooks=hooks)
    return summary, False
