"""One subset of ``tools/coreset.py``, kept on disk beside its index file.

A selection is a deterministic function of its rule, budget, seed and inputs (embedding,
labels, scores), and some are slow (the learned rule's spectral clustering: minutes per
selection on CIFAR-10). ``selection.json`` records a digest of those inputs and the
seconds the selection took; a rerun with the same inputs reads ``indices.pt`` back and
reports the recorded seconds, so adding seeds or methods to a run directory does not
redo the selections it holds. ``--rerun`` (or any change of the inputs) selects again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Callable

import torch

from ..atomic import atomic_write_text

RECORD = "selection.json"


def tensor_digest(*tensors: torch.Tensor | None) -> str:
    """sha256 of ``tensors`` by dtype, shape and bytes (``None`` included as such)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        if tensor is None:
            digest.update(b"none")
            continue
        array = tensor.detach().cpu().contiguous()
        digest.update(f"{array.dtype}{tuple(array.shape)}".encode())
        digest.update(memoryview(array.numpy()).cast("B"))
    return digest.hexdigest()


def inputs_digest(rule: str, kind: str, value: float, seed: int, data_digest: str,
                  scores: torch.Tensor | None) -> str:
    """sha256 of everything a selection depends on; ``data_digest`` is :func:`tensor_digest`
    of the embedding and labels, computed once per run (hundreds of MB on CIFAR-10)."""
    return hashlib.sha256(json.dumps([rule, kind, float(value), int(seed), data_digest,
                                      tensor_digest(scores)]).encode()).hexdigest()


def choose_or_reuse(choose: Callable[[], torch.Tensor], digest: str, sel_dir: Path, num_samples: int,
                    rerun: bool) -> tuple[torch.Tensor, float, bool]:
    """``(indices, select_s, reused)``: the subset of ``num_samples`` kept in ``sel_dir`` when
    its recorded inputs ``digest`` matches (and ``rerun`` is False), else ``choose()``, saved
    with its record."""
    from ..data import load_indices, save_indices
    from ..engine import index_digest

    record_path, index_path = sel_dir / RECORD, sel_dir / "indices.pt"
    if not rerun and record_path.is_file() and index_path.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):  # an unreadable record: select again
            record = json.loads(record_path.read_text())
            if record.get("inputs") == digest:
                indices = load_indices(index_path, num_samples, arg="kept selection")
                if index_digest(indices) == record.get("indices"):
                    return indices, float(record["select_s"]), True
    t0 = time.perf_counter()
    indices = choose()
    seconds = time.perf_counter() - t0
    save_indices(indices, index_path)
    record = {"inputs": digest, "indices": index_digest(indices), "select_s": seconds}
    atomic_write_text(json.dumps(record, indent=2) + "\n", record_path)
    return indices, seconds, False
