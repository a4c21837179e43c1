"""Condensation checkpoints: a long run saved atomically and continued exactly.

A checkpoint holds what the next iteration depends on: the synthetic images and their
optimiser's momentum, the run's random generator, the loss history, the pass counts,
the seconds spent so far and each method's own state (IDM's queue of partly trained
networks, CAFE's loop counts). Continuing from it gives the bitwise same images as an
uninterrupted run of the same total length, on the same machine and device.

It also records what made the run (method, ipc, seed, network, hyper-parameters, the
real data's size and checksum): continuing with anything different is refused, naming
the difference, since the result would be neither run. The requested iteration count
is not part of it, so a finished run can be extended.

Files are written through :func:`tome_train.atomic.atomic_save` and read with
``torch.load(weights_only=True)`` (tensors and plain containers only).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tome_train.atomic import atomic_save

from .synthetic import plain_values

if TYPE_CHECKING:
    from .base import Condenser

FORMAT = "tome_train.condense/1"
STATE_FILE = "condense_state.pt"


def run_signature(condenser: Condenser) -> dict[str, Any]:
    """Everything that, changed, would make a continued run a different run."""
    return plain_values({"method": condenser.name, "ipc": condenser.ipc, "model": condenser.model_name,
                         "model_kwargs": condenser.model_kwargs, "init": condenser.init, "seed": condenser.seed,
                         "num_classes": condenser.num_classes, "config": condenser.config.as_dict(),
                         "real_data": condenser.pool.fingerprint})


def _differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{name}.")
        elif isinstance(a, float) and isinstance(b, float):
            if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6):
                out.append(f"{name}: checkpoint {a!r}, now {b!r}")
        elif a != b:
            out.append(f"{name}: checkpoint {a!r}, now {b!r}")
    return out


def save_state(condenser: Condenser, path: str | Path) -> None:
    """Write ``condenser``'s state to ``path`` atomically (the old file survives a crash mid-write)."""
    state = condenser.state_dict()
    state.update(format=FORMAT, signature=run_signature(condenser))
    atomic_save(state, path)


def load_state(condenser: Condenser, path: str | Path) -> int:
    """Restore ``condenser`` from ``path``; returns the iterations already run.

    Raises ``FileNotFoundError`` when there is no such file and ``ValueError`` naming the
    file when it is damaged, not a condensation checkpoint, or made by a different run.
    """
    from tome_train.engine.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"--resume: {path} is not a condensation checkpoint (format {FORMAT!r})")
    # Top-level differences (method, seed, ...) first: they explain the nested ones.
    differences = sorted(_differences(state["signature"], run_signature(condenser)),
                         key=lambda d: "." in d.split(":")[0])
    if differences:
        shown = "; ".join(differences[:3]) + ("; ..." if len(differences) > 3 else "")
        raise ValueError(f"--resume: {path} was made by a different run ({shown}); "
                         "use the same arguments, or another --output-dir to start afresh")
    condenser.load_state_dict(state)
    return len(condenser.history)
