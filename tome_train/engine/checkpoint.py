"""Checkpoint files: atomic writes, safe loading and RNG-state capture.

Checkpoints are written with :func:`atomic_save` (``tome_train.atomic``): a crash
mid-write leaves the old checkpoint or the new one, never a truncated file.

Checkpoints are loaded with ``torch.load(..., weights_only=True)``: only tensors and
plain containers (dict, list, tuple, str, int, float, bool, None) are unpickled, so a
checkpoint from elsewhere cannot run code. Everything a checkpoint holds is kept to
those types, the RNG states included.
"""

from __future__ import annotations

import pickle
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_save, atomic_write_bytes, atomic_write_text

__all__ = [
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_text",
    "capture_rng_state",
    "load_checkpoint",
    "preserve_rng_state",
    "restore_rng_state",
]


def capture_rng_state() -> dict[str, Any]:
    """States of python ``random``, numpy's global generator, torch CPU and the current CUDA device.

    Held as tensors and plain values (loadable with ``weights_only=True``): python's
    state is its ``(version, tuple of ints, gauss)`` tuple; numpy's MT19937 key array
    becomes an int64 tensor.
    """
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64).copy()),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # The current device only: the _all variant creates a context on every GPU.
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states only when devices match)."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state((
        numpy_state["kind"],
        np.asarray(numpy_state["keys"].numpy(), dtype=np.uint32),
        int(numpy_state["pos"]),
        int(numpy_state["has_gauss"]),
        float(numpy_state["cached_gaussian"]),
    ))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None:
        if torch.cuda.is_available():
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


_UNSUPPORTED_GLOBAL = re.compile(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)")


def load_checkpoint(path: str | Path) -> Any:
    """Load a file written by :func:`atomic_save` onto the CPU, tensors and plain containers only.

    Raises ``FileNotFoundError`` when ``path`` is not a file, and ``ValueError`` naming the
    file when it is truncated or corrupt, or holds other objects (a pickle that would run
    code on load is refused without running it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist or is not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = _UNSUPPORTED_GLOBAL.search(str(err))
        if found:
            raise ValueError(f"checkpoint {path} holds a {found.group(1)} object; refusing to unpickle "
                             "it (only tensors and plain containers are loaded, so a file cannot run "
                             "code)") from None
        raise ValueError(f"checkpoint {path} is corrupt or holds objects other than tensors and "
                         "plain containers") from None
    except Exception as err:  # torch raises RuntimeError, EOFError, KeyError, ... on damaged files
        first = str(err).strip().split(". ")[0].splitlines()
        detail = f": {first[0][:120]}" if first and first[0] else ""
        raise ValueError(f"checkpoint {path} is truncated or not a torch checkpoint "
                         f"({type(err).__name__}{detail})") from None
