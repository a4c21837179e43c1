"""Fused block-sparse attention for CPU (fp32): a small C++ kernel, built on first use.

Why: the PyTorch-ops kernel (``block_sparse.py``) must gather the kept key/value blocks
and materialise every kept score block in memory, op after op; on a 2-core CPU that
traffic (and the page faults of fresh buffers) cost as much as the matmuls it saved, so
it stayed at 1.4-1.7x the dense flash kernel at N=577, keep 0.3. The C++ kernel in
``csrc/block_sparse_cpu.cpp`` reads the kept blocks in place through BLAS leading
dimensions and keeps each block's scores in an L2-sized scratch buffer, flash-style, and
its backward recomputes probabilities from the saved row log-sum-exp.

Build: ``torch.utils.cpp_extension.load`` compiles it once (about 45 s on 2 cores) into
torch's extension cache (``$TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``)
with ``-O3 -march=native``; the module name carries a hash of the source, the torch
version and this CPU's feature flags, so a cache shared between machines never loads a
binary built for another CPU, and of the source's and torch's locations, which the build
file names (checkouts or environments sharing the cache would otherwise rebuild each
other's copy on every load). Later runs load the cached build in well under a second. It needs a C++ compiler and the ``sgemm_`` that
``libtorch_cpu`` exports (MKL in the x86 wheels). If the build fails, or
``TOME_TRAIN_NO_CPU_EXT=1`` is set, :func:`is_available` is False and the dispatcher
uses the PyTorch-ops kernel instead (one warning says why).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from .layout import BlockLayout

__all__ = ["build_error", "can_build", "cpu_fused_attention", "is_available", "load_extension"]

_SOURCE = Path(__file__).with_name("csrc") / "block_sparse_cpu.cpp"
_DISABLE_ENV = "TOME_TRAIN_NO_CPU_EXT"
_lock = threading.Lock()
_state: dict[str, Any] = {"ext": None, "error": None}


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _module_name() -> str:
    digest = hashlib.sha1()
    for part in (_SOURCE.read_bytes(), torch.__version__.encode(), _cpu_flags().encode(),
                 os.path.abspath(_SOURCE).encode(), os.path.dirname(torch.__file__).encode()):
        digest.update(part)
    return f"tome_train_bsa_cpu_{digest.hexdigest()[:12]}"


def _is_built(name: str) -> bool:
    """True when torch's extension cache holds an up-to-date build of ``name``.

    ``cpp_extension.load`` then only loads the library (ninja finds nothing to do): the
    library exists in the build directory ``load`` uses and is newer than the source.
    Every other input of the build is part of ``name``.
    """
    try:
        from torch.utils.cpp_extension import LIB_EXT, _get_build_directory

        library = Path(_get_build_directory(name, verbose=False)) / f"{name}{LIB_EXT}"
        return library.stat().st_mtime >= _SOURCE.stat().st_mtime
    except Exception:  # private helper moved, no library yet, ...: assume a build
        return False


def _ninja_bin_dir() -> str | None:
    try:
        import ninja
    except ImportError:
        return None
    return getattr(ninja, "BIN_DIR", None)


def _prepend_to_path(*dirs: str | None) -> None:
    parts = os.environ.get("PATH", "").split(os.pathsep)
    new = [d for d in dirs if d and os.path.isdir(d) and d not in parts]
    if new:
        os.environ["PATH"] = os.pathsep.join([*new, *parts])


def load_extension(verbose: bool = False) -> Any | None:
    """Build (first call, ~45 s) or load the C++ kernel; None if it cannot be built here."""
    if _state["ext"] is not None or _state["error"] is not None:
        return _state["ext"]
    with _lock:
        if _state["ext"] is not None or _state["error"] is not None:
            return _state["ext"]
        if os.environ.get(_DISABLE_ENV, "") not in ("", "0"):
            _state["error"] = f"disabled by {_DISABLE_ENV}"
            return None
        logger = logging.getLogger("torch.utils.cpp_extension")  # "no CUDA runtime" noise
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            from torch.utils import cpp_extension

            name = _module_name()
            # The build step runs `ninja`; the pip-installed one lives next to the
            # interpreter, which is not on PATH when the venv is not activated.
            _prepend_to_path(os.path.dirname(sys.executable), _ninja_bin_dir())
            if not _is_built(name):
                print(f"tome_train: compiling the fused CPU attention kernel {name} "
                      "(cached for later runs; ~45 s)", file=sys.stderr, flush=True)
            _state["ext"] = cpp_extension.load(
                name=name, sources=[str(_SOURCE)],
                extra_cflags=["-O3", "-march=native", "-fopenmp"],
                extra_ldflags=["-fopenmp"], verbose=verbose)
        except Exception as exc:  # no compiler, no sgemm_ export, ...: fall back, loudly once
            _state["error"] = f"{type(exc).__name__}: {str(exc).strip()[-500:]}"
            warnings.warn("tome_train: fused CPU attention kernel unavailable, using the "
                          f"PyTorch-ops block-sparse kernel instead ({_state['error']})",
                          RuntimeWarning, stacklevel=2)
        finally:
            logger.setLevel(level)
    return _state["ext"]


def build_error() -> str | None:
    """Why the kernel is unavailable (None if it loaded or was never tried)."""
    return _state["error"]


def is_available(dtype: torch.dtype = torch.float32) -> bool:
    """True when the fused kernel can run ``dtype`` on this machine. Builds it on the first
    call (~45 s): for a question that must not compile, use :func:`can_build`."""
    return dtype == torch.float32 and load_extension() is not None


def can_build() -> bool:
    """Cheap check, never compiles: the kernel is loaded, or a build would be attempted here
    (not disabled, no earlier failure, a C++ compiler and ninja found)."""
    if _state["ext"] is not None:
        return True
    if _state["error"] is not None or os.environ.get(_DISABLE_ENV, "") not in ("", "0"):
        return False
    compiler = os.environ.get("CXX", "c++")
    ninja_dir = _ninja_bin_dir()
    has_ninja = bool(ninja_dir and os.path.isfile(os.path.join(ninja_dir, "ninja"))) or bool(
        shutil.which("ninja") or shutil.which("ninja", path=os.path.dirname(sys.executable)))
    return bool(shutil.which(compiler)) and has_ninja


class _CpuFusedAttn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, kv_blocks, block_size: int, num_prefix: int, scale: float):
        ext = load_extension()
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        out, lse = ext.forward(q, k, v, kv_blocks, block_size, num_prefix, scale)
        ctx.save_for_backward(q, k, v, kv_blocks, lse)
        ctx.meta = (block_size, num_prefix, scale)
        return out

    @staticmethod
    @once_differentiable  # no double backward: raise rather than return a constant
    def backward(ctx, grad_out):
        q, k, v, kv_blocks, lse = ctx.saved_tensors
        block_size, num_prefix, scale = ctx.meta
        dq, dk, dv = load_extension().backward(grad_out.contiguous(), q, k, v, kv_blocks, lse,
                                               block_size, num_prefix, scale)
        return dq, dk, dv, None, None, None, None


def cpu_fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        layout: BlockLayout, scale: float | None = None) -> torch.Tensor:
    """Attention over the blocks kept by ``layout``; q, k, v ``[B, H, N, D]`` fp32 on CPU."""
    if q.device.type != "cpu" or q.dtype != torch.float32:
        raise ValueError(f"impl='cpu_fused' needs float32 CPU tensors, got {q.dtype} on {q.device}")
    if k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(f"q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}")
    bsz, _, n, d = q.shape
    if layout.num_tokens != n or layout.batch_size != bsz:
        raise ValueError(f"layout is for B={layout.batch_size}, N={layout.num_tokens} but q is "
                         f"{tuple(q.shape)}")
    if load_extension() is None:
        raise RuntimeError(f"the fused CPU attention kernel is unavailable: {build_error()}")
    kv = layout.kv_blocks.to(device="cpu", dtype=torch.long).contiguous()
    return _CpuFusedAttn.apply(q, k, v, kv, layout.block_size, layout.num_prefix_tokens,
                               float(d**-0.5 if scale is None else scale))
