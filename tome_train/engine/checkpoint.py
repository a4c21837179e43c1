"""Atomic checkpoints and RNG-state capture, the two pieces an exact resume needs.

A checkpoint is written to a temporary file in the target folder and moved into
place with ``os.replace`` (atomic on POSIX), so a crash mid-write leaves either the
old checkpoint or the new one, never a truncated file that a resume would choke on.
"""

from __future__ import annotations

import os
import random
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` via a temp file in the same folder + ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as tmp:
            torch.save(obj, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write a small text file (summary, logs) atomically, for the same reason as checkpoints."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as tmp:
            tmp.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write a binary file (an image, ...) atomically, like :func:`atomic_write_text`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as tmp:
            tmp.write(data)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def capture_rng_state() -> dict[str, Any]:
    """States of python ``random``, numpy's global generator, torch CPU and all CUDA devices."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # The current device only: the _all variant creates a context on every GPU.
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states only when devices match)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None:
        if isinstance(cuda, (list, tuple)):  # older checkpoints held every device's state
            cuda = cuda[torch.cuda.current_device()] if torch.cuda.is_available() and cuda else None
        if cuda is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(cuda)
        else:
            warnings.warn("checkpoint holds a CUDA RNG state but CUDA is unavailable: "
                          "the resumed run is not bit-exact", stacklevel=2)


class preserve_rng_state:  # noqa: N801 - used like a function: ``with preserve_rng_state():``
    """Run a block without disturbing any global RNG (e.g. fvcore tracing a model with dropout).

    FLOP counting happens at different times in a fresh and a resumed run (the
    cache is cold after a resume); it must not shift the random streams.
    """

    def __enter__(self) -> preserve_rng_state:
        self._state = capture_rng_state()
        return self

    def __exit__(self, *exc: object) -> None:
        restore_rng_state(self._state)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint onto the CPU; a clear error if it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return torch.load(path, map_location="cpu", weights_only=False)
