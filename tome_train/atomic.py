"""Atomic file writes for every layer (checkpoints, summaries, logs, index files).

A file is written to a temporary file in the target folder, flushed to disk and moved
into place with ``os.replace`` (atomic on POSIX), so a crash mid-write leaves either the
old file or the new one, never a truncated file that a later read would choke on.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_save", "atomic_write", "atomic_write_bytes", "atomic_write_text"]


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write`` on a binary temp file beside ``path``, fsync it, and move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    # Make the rename itself durable (best effort: not every file system allows it).
    try:
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder)
    except OSError:
        pass
    finally:
        os.close(folder)


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save(obj)`` to ``path`` atomically."""
    import torch

    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write a binary file (an image, an archive) atomically."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write a text file (summary, logs) atomically, UTF-8."""
    atomic_write_bytes(text.encode("utf-8"), path)


def atomic_savefig(fig: Any, path: str | Path, dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG atomically."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))


def load_cache(path: str | Path) -> dict | None:
    """A cache file written with :func:`atomic_save` (a dict), or None when it is missing,
    damaged or of another shape: a cache that cannot be read is recomputed, never fatal."""
    import sys

    import torch

    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, foreign, or holding objects outside the allow-list
        print(f"note: ignoring unreadable cache {path} ({type(err).__name__}); recomputing",
              file=sys.stderr, flush=True)
        return None
    return data if isinstance(data, dict) else None
