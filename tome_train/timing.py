"""Device synchronisation for wall-clock timing (the benchmarks share it)."""

from __future__ import annotations

import torch

__all__ = ["synchronize"]


def synchronize(device: torch.device | str) -> None:
    """Wait for queued kernels on ``device`` (CUDA); a no-op on the CPU, which runs eagerly."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
