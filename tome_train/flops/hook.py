"""Engine hook of the FLOPs ledger: one ``train`` row per epoch, and a door for other passes.

Forward GFLOPs are measured by tracing the model (fvcore) at its current knobs, per
batch, since a keep-rate schedule moves the knobs every iteration; the epoch's row
holds the sample-weighted mean. Tracing costs seconds, and the token counts a keep
rate produces take few distinct values, so results are cached by the token counts
(not the keep rate itself). Tracing runs inside ``preserve_rng_state``: a resumed run starts
with a cold cache and must not consume random numbers that the uninterrupted run did not.

Other hooks that run passes of their own during training (a scoring pass at some
epoch, say) find this hook in ``state.shared[LEDGER_KEY]`` and call
:meth:`FlopsLedgerHook.record_pass`, so the run's ledger holds every kind of cost.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.distributed as dist

from .. import distributed as tdist
from ..engine.checkpoint import preserve_rng_state
from ..engine.hooks import BatchResult, Hook, TrainState
from .count import forward_gflops
from .ledger import TRAIN_FLOPS_PER_FORWARD, TrainingFlopsLedger

#: key of the ledger hook in ``TrainState.shared``
LEDGER_KEY = "flops_ledger"


def _fused_kernel_possible() -> bool:
    from ..attention import cpu_fused

    return cpu_fused.can_build()  # a cheap check: never compiles the kernel


class FlopsLedgerHook(Hook):
    """Record training cost per epoch into a ``TrainingFlopsLedger`` (training FLOPs = 3x forward)."""

    name = "ledger"

    def __init__(self, ledger: TrainingFlopsLedger, input_size: tuple[int, int, int]) -> None:
        self.ledger = ledger
        self.input_size = input_size
        self.cache: dict[str, float] = {}
        self._samples = 0
        self._gflops_sum = 0.0  # sum over this epoch's batches of samples x forward GFLOPs
        self._start = 0.0

    @staticmethod
    def knob_key(model: torch.nn.Module) -> str:
        keep = getattr(model, "keep_rate", 1.0)
        attn = getattr(model, "attn_keep", None)
        counts = getattr(model, "stage_token_counts", None)  # a token-pruning patched model
        if callable(counts):
            keep_part = "tokens=" + "/".join(map(str, counts()))
        else:
            keep_part = f"keep={float(keep):.6g}"
        # Everything that changes the count: the auto kernel choice depends on the device
        # and, on CPU, on whether the fused kernel can be used (it then goes sparse at
        # sizes where the PyTorch-ops kernel would not pay).
        layers = ",".join(str(i) for i in getattr(model, "prune_layers", ()))
        param = next(model.parameters(), None)
        device = param.device.type if param is not None else "cpu"
        fused = attn is not None and device == "cpu" and _fused_kernel_possible()
        return (f"{keep_part},attn={'none' if attn is None else f'{float(attn):.6g}'},"
                f"fuse={bool(getattr(model, 'fuse', False))},layers={layers},"
                f"impl={getattr(model, 'attn_impl', 'auto')},device={device}"
                f"{',cpu_fused' if fused else ''}")

    def forward_gflops(self, model: torch.nn.Module) -> float:
        """Forward GFLOPs per sample at the model's current knobs (cached)."""
        key = self.knob_key(model)
        if key not in self.cache:
            was_training = model.training
            with preserve_rng_state(), torch.no_grad():
                self.cache[key] = float(forward_gflops(model, self.input_size))
            model.train(was_training)
        return self.cache[key]

    def record_pass(
        self, state: TrainState, kind: str, samples: int, wall_s: float, passes: float | None = None
    ) -> dict[str, Any]:
        """Add a row for a pass another hook ran over ``samples`` samples (all ranks together)
        with the model at its current knobs; ``passes``: forward-equivalents per sample."""
        return self.ledger.record(kind, samples=samples, forward_gflops=self.forward_gflops(state.model),
                                  wall_s=wall_s, epoch=state.epoch, passes=passes)

    def on_train_start(self, state: TrainState) -> None:
        state.shared[LEDGER_KEY] = self

    def on_epoch_start(self, state: TrainState) -> None:
        self._samples = 0
        self._gflops_sum = 0.0
        self._start = time.perf_counter()

    def on_batch_end(self, state: TrainState, batch: BatchResult) -> None:
        n = int(batch.indices.numel())
        self._samples += n
        self._gflops_sum += n * self.forward_gflops(state.model)

    def on_epoch_end(self, state: TrainState) -> None:
        wall = time.perf_counter() - self._start
        samples, gflops_sum = self._samples, self._gflops_sum
        if tdist.is_dist():
            # Samples add up over ranks; the epoch lasts as long as the slowest rank.
            counts = torch.tensor([float(samples), gflops_sum], dtype=torch.float64)
            dist.all_reduce(counts)
            walls = torch.tensor([wall], dtype=torch.float64)
            dist.all_reduce(walls, op=dist.ReduceOp.MAX)
            samples, gflops_sum, wall = int(counts[0].item()), float(counts[1].item()), float(walls.item())
        gflops = gflops_sum / samples if samples else self.forward_gflops(state.model)
        self.ledger.record("train", epoch=state.epoch, samples=samples, forward_gflops=gflops, wall_s=wall)
        state.metrics["samples"] = samples
        state.metrics["forward_gflops"] = gflops
        state.metrics["epoch_train_gflops"] = samples * gflops * TRAIN_FLOPS_PER_FORWARD
        state.metrics["train_wall_s"] = wall

    def state_dict(self) -> dict[str, Any]:
        return {"ledger": self.ledger.state_dict(), "cache": dict(self.cache)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ledger.load_state_dict(state["ledger"])
        self.cache = dict(state.get("cache", {}))
