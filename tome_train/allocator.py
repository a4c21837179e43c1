"""Keep large CPU tensor buffers in the heap instead of mapping them fresh on every allocation.

glibc's ``malloc`` serves any request above its mmap threshold (at most 32 MiB when left
dynamic) with a new ``mmap`` and returns it with ``munmap`` when freed, and it trims the
top of the heap back to the system once 128 KiB are free there. Convolution activations of
a 256-image batch are about 130 MB, so every forward and backward pass of CPU training then
maps, page-faults (the kernel zeroes each page) and unmaps its largest buffers again. Raising
both thresholds lets freed buffers be reused: a DC iteration on Fashion-MNIST (one thread)
took 10.2 instead of 13.9 seconds, with the same peak memory in that run. The cost is that up
to ``threshold`` bytes of freed memory may stay with the process.

This is the CPU tuning PyTorch's performance guide reaches with jemalloc or tcmalloc
(``LD_PRELOAD``), done with the C library already loaded. It changes no result: only where
buffers live. Set ``TOME_TRAIN_SYSTEM_MALLOC=1`` to leave the C library's defaults alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["DEFAULT_THRESHOLD", "tune_cpu_allocator"]

DEFAULT_THRESHOLD = 512 * 1024 * 1024  # bytes: above the largest activation buffers of CPU runs here
_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_tuned: bool | None = None


def tune_cpu_allocator(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Raise glibc's mmap and trim thresholds to ``threshold`` bytes; True if applied.

    A no-op (False) off Linux/glibc, when ``TOME_TRAIN_SYSTEM_MALLOC=1``, or when glibc refuses
    the value. The first call decides; later calls return its outcome.
    """
    global _tuned
    if _tuned is not None:
        return _tuned
    if threshold <= 0 or threshold >= 2**31:
        raise ValueError(f"threshold must be in (0, 2**31) bytes, got {threshold}")
    _tuned = False
    if os.environ.get("TOME_TRAIN_SYSTEM_MALLOC", "") not in ("", "0") or not sys.platform.startswith("linux"):
        return _tuned
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries without mallopt
        return _tuned
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _tuned = bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold))
    return _tuned
