"""Process set-up: device choice, torchrun/DDP initialisation and seeding.

``torchrun`` exports ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; a single process has
none of them, so the same script runs plain or distributed without flags.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch
import torch.distributed as dist

DEVICES = ("cpu", "cuda", "auto")  # what resolve_device accepts: the tools' --device choices


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when available). Under torchrun, one GPU per local rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device: cuda requested but CUDA is not available here (use cpu or auto)")
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    if name != "cpu":
        raise ValueError(f"--device: unknown device {name!r} (cpu, cuda or auto)")
    return torch.device("cpu")


def init_distributed(device: torch.device) -> bool:
    """Join the process group from env vars when ``WORLD_SIZE`` > 1 (nccl on CUDA, else gloo)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        # CUDA: nccl for the model, gloo for the few CPU scalars the loop all-reduces.
        backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://")
    return True


def shutdown_distributed() -> None:
    """Leave the process group cleanly so torchrun does not report hung ranks."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) so that a run is a function of its seed."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def set_cpu_threads(threads: int, world_size: int) -> None:
    """Set intra-op CPU threads; ``0`` keeps torch's default, shared between local ranks."""
    if threads > 0:
        torch.set_num_threads(threads)
    elif world_size > 1 and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
