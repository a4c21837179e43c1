"""FLOPs accounting: one ledger row per epoch (samples, forward GFLOPs/sample, wall time).

Forward GFLOPs are measured by tracing the model (fvcore) at its current knobs.
Tracing costs seconds, and the knobs take few distinct values, so results are
cached by ``(keep_rate, attn_keep)``. Tracing runs inside ``preserve_rng_state``:
a resumed run starts with a cold cache and must not consume random numbers that
the uninterrupted run did not.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.distributed as dist

from .checkpoint import preserve_rng_state
from .hooks import BatchResult, Hook, TrainState


def _fused_available() -> bool:
    from tome_train.attention import cpu_fused

    return cpu_fused.is_available()


def _dist_ready() -> bool:
    return dist.is_available() and dist.is_initialized()


class FlopsLedgerHook(Hook):
    """Record training cost per epoch into a ``TrainingFlopsLedger`` (training FLOPs = 3x forward)."""

    name = "ledger"

    def __init__(self, ledger: Any, input_size: tuple[int, int, int]) -> None:
        self.ledger = ledger
        self.input_size = input_size
        self.cache: dict[str, float] = {}
        self._samples = 0
        self._start = 0.0

    @staticmethod
    def knob_key(model: torch.nn.Module) -> str:
        keep = getattr(model, "keep_rate", 1.0)
        attn = getattr(model, "attn_keep", None)
        # Everything that changes the count: the auto kernel choice depends on the device
        # and, on CPU, on whether the fused kernel could be built (it then goes sparse at
        # sizes where the PyTorch-ops kernel would not pay).
        layers = ",".join(str(i) for i in getattr(model, "prune_layers", ()))
        param = next(model.parameters(), None)
        device = param.device.type if param is not None else "cpu"
        return (f"keep={float(keep):.6g},attn={'none' if attn is None else f'{float(attn):.6g}'},"
                f"fuse={bool(getattr(model, 'fuse', False))},layers={layers},"
                f"impl={getattr(model, 'attn_impl', 'auto')},device={device}"
                f"{',cpu_fused' if attn is not None and device == 'cpu' and _fused_available() else ''}")

    def forward_gflops(self, model: torch.nn.Module) -> float:
        """Forward GFLOPs per sample at the model's current knobs (cached)."""
        key = self.knob_key(model)
        if key not in self.cache:
            from tome_train.flops import forward_gflops

            was_training = model.training
            with preserve_rng_state(), torch.no_grad():
                self.cache[key] = float(forward_gflops(model, self.input_size))
            model.train(was_training)
        return self.cache[key]

    def on_epoch_start(self, state: TrainState) -> None:
        self._samples = 0
        self._start = time.perf_counter()

    def on_batch_end(self, state: TrainState, batch: BatchResult) -> None:
        self._samples += int(batch.indices.numel())

    def on_epoch_end(self, state: TrainState) -> None:
        wall = time.perf_counter() - self._start
        samples = self._samples
        if _dist_ready():
            # Samples add up over ranks; the epoch lasts as long as the slowest rank.
            counts = torch.tensor([float(samples)], dtype=torch.float64)
            dist.all_reduce(counts)
            walls = torch.tensor([wall], dtype=torch.float64)
            dist.all_reduce(walls, op=dist.ReduceOp.MAX)
            samples, wall = int(counts.item()), float(walls.item())
        gflops = self.forward_gflops(state.model)
        self.ledger.record(epoch=state.epoch, samples=samples, forward_gflops=gflops, wall_s=wall)
        state.metrics["samples"] = samples
        state.metrics["forward_gflops"] = gflops
        state.metrics["epoch_train_gflops"] = samples * gflops * 3
        state.metrics["train_wall_s"] = wall

    def state_dict(self) -> dict[str, Any]:
        return {"ledger": self.ledger.state_dict(), "cache": dict(self.cache)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ledger.load_state_dict(state["ledger"])
        self.cache = dict(state.get("cache", {}))
