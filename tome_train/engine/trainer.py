"""Epoch driver: train, hooks, evaluate, log, checkpoint; plus exact resume.

Order inside an epoch (identical in fresh and resumed runs, which is what makes
resumes exact): set sampler epoch -> ``on_epoch_start`` hooks -> batches ->
``on_epoch_end`` hooks (selector swap, ledger row) -> evaluation -> logs ->
checkpoint (RNG states captured last, after everything that consumes them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from .. import distributed as tdist
from .checkpoint import atomic_save, capture_rng_state, load_checkpoint, restore_rng_state
from .hooks import Hook, TrainState
from .loop import evaluate, train_one_epoch
from .metrics_log import write_epoch_logs
from .optim import WarmupCosineSchedule

CHECKPOINT_NAME = "checkpoint.pt"
# 2: every value loadable with weights_only=True (RNG states as tensors and tuples of ints).
CHECKPOINT_VERSION = 2
CHECKPOINT_KEYS = ("version", "epoch", "global_step", "model", "optimizer", "scheduler", "hooks", "rng")


def check_checkpoint(checkpoint: Any, path: str | Path) -> dict[str, Any]:
    """Return ``checkpoint`` if it is a training checkpoint of this version, else a ValueError naming ``path``."""
    if not isinstance(checkpoint, dict):
        raise ValueError(f"checkpoint {path} holds a {type(checkpoint).__name__}, not a training "
                         "checkpoint (a dict written by tools/train.py)")
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise ValueError(f"checkpoint {path} is not a training checkpoint written by tools/train.py "
                         f"(it lacks {', '.join(missing)})")
    if checkpoint["version"] != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path} has format version {checkpoint['version']!r}; this "
                         f"version reads {CHECKPOINT_VERSION} (retrain, or resume with the version that wrote it)")
    return checkpoint


class Trainer:
    """Owns the loop's moving parts; ``model`` is the plain module, ``train_model`` maybe DDP."""

    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: WarmupCosineSchedule,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        train_loader: DataLoader,
        test_loader: DataLoader,
        device: torch.device,
        hooks: Sequence[Hook] = (),
        train_model: nn.Module | None = None,
        output_dir: str | Path | None = None,
        args: dict[str, Any] | None = None,
        mixup_fn: Callable[..., Any] | None = None,
        amp: bool = True,
        clip_grad: float | None = None,
        progress: bool = False,
        is_main: bool = True,
        eval_every: int = 1,
    ) -> None:
        if eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {eval_every}")
        names = [hook.name for hook in hooks]
        if len(set(names)) != len(names):
            raise ValueError(f"hook names must be unique, got {names}")
        self.model = model
        self.train_model = train_model if train_model is not None else model
        self.optimizer = optimizer
        self.schedule = schedule
        self.criterion = criterion
        self.train_loader = train_loader
        self.test_loader = test_loader
        self.hooks = list(hooks)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.args = dict(args or {})
        self.mixup_fn = mixup_fn
        self.amp = amp
        self.clip_grad = clip_grad
        self.progress = progress and is_main
        self.is_main = is_main
        #: test every this many epochs and after the last one (short runs on tiny sets
        #: would otherwise spend most of their time testing)
        self.eval_every = eval_every
        self.state = TrainState(model=model, device=device, num_samples=len(train_loader.dataset))
        self.start_epoch = 0
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ state
    def _gather_rng(self) -> list[dict[str, Any]]:
        state = capture_rng_state()
        if not tdist.is_dist():
            return [state]
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, state)
        return gathered

    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs; collective under DDP (RNG states of all ranks)."""
        return {
            "version": CHECKPOINT_VERSION,
            "epoch": self.state.epoch + 1,  # next epoch to run
            "global_step": self.state.global_step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "hooks": {hook.name: hook.state_dict() for hook in self.hooks},
            "history": list(self.history),
            "args": self.args,
            "rng": self._gather_rng(),
        }

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        """Restore model, optimizer, LR progress, hooks, counters, history and this rank's RNG.

        The LR schedule object is the caller's (built for the *new* ``--epochs``);
        only its progress is loaded. Call this last, after everything that draws
        random numbers during set-up, since it restores the RNG states.
        """
        self.model.load_state_dict(checkpoint["model"])
        # torch loads another optimizer's state without complaint and fails at the first step
        saved_keys = {k for group in checkpoint["optimizer"]["param_groups"] for k in group}
        own_keys = {k for group in self.optimizer.state_dict()["param_groups"] for k in group}
        if saved_keys != own_keys:
            saved_opt = (checkpoint.get("args") or {}).get("opt", "another")
            raise ValueError(f"the optimizer differs from the saved one ({saved_opt!r}): resume with the same --opt")
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.schedule.load_state_dict(checkpoint["scheduler"])
        for hook in self.hooks:
            if hook.name in checkpoint["hooks"]:
                hook.load_state_dict(checkpoint["hooks"][hook.name])
        self.start_epoch = int(checkpoint["epoch"])
        self.state.epoch = self.start_epoch
        self.state.global_step = int(checkpoint["global_step"])
        self.history = list(checkpoint.get("history", []))
        rng = checkpoint["rng"]
        rank = tdist.rank()
        if rank < len(rng):
            restore_rng_state(rng[rank])
        else:  # more ranks than when saved: derive a distinct, reproducible state
            torch.manual_seed(int(self.args.get("seed", 0)) + 1000 * rank + self.start_epoch)

    def resume(self, path: str | Path) -> dict[str, Any]:
        """Load ``path`` (see :func:`check_checkpoint`) and restore it; ValueError naming the file
        when it is not a checkpoint of this trainer's kind or does not fit the model/optimizer."""
        checkpoint = check_checkpoint(load_checkpoint(path), path)
        try:
            self.load_state_dict(checkpoint)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
            lines = str(err).strip().splitlines()
            detail = lines[0][:200] if lines else type(err).__name__
            raise ValueError(f"checkpoint {path} does not fit this run (other model, optimizer or "
                             f"hooks?): {detail}") from None
        return checkpoint

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoint.pt`` atomically on rank 0 (every rank must call: RNG gather)."""
        state = self.state_dict()
        if self.output_dir is None or not self.is_main:
            return None
        path = self.output_dir / CHECKPOINT_NAME
        atomic_save(state, path)
        return path

    # ------------------------------------------------------------------ loop
    def evaluate(self) -> dict[str, float]:
        return evaluate(self.model, self.test_loader, self.state.device, amp=self.amp)

    def _log(self, row: dict[str, Any]) -> None:
        if not self.is_main:
            return
        if self.output_dir is not None:
            write_epoch_logs(self.history, self.output_dir)
        # Significant digits, not decimals: a late-cosine LR of 1e-05 must not print as 0.0.
        shown = {k: (f"{v:.5g}" if isinstance(v, float) else v) for k, v in row.items()}
        print(" ".join(f"{k}={v}" for k, v in shown.items()), flush=True)

    def fit(self, epochs: int) -> list[dict[str, Any]]:
        """Run epochs ``start_epoch .. epochs-1``; returns the full per-epoch history."""
        state = self.state
        state.epochs = epochs
        for hook in self.hooks:
            hook.on_train_start(state)
        sampler = self.train_loader.sampler
        for epoch in range(self.start_epoch, epochs):
            state.epoch = epoch
            state.metrics = {}
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            for hook in self.hooks:
                hook.on_epoch_start(state)
            start = time.perf_counter()
            train_stats = train_one_epoch(
                self.train_model,
                self.train_loader,
                self.optimizer,
                self.schedule,
                self.criterion,
                state,
                self.hooks,
                mixup_fn=self.mixup_fn,
                amp=self.amp,
                clip_grad=self.clip_grad,
                progress=self.progress,
            )
            for hook in self.hooks:
                hook.on_epoch_end(state)
            last = epoch == epochs - 1
            eval_stats = self.evaluate() if last or (epoch + 1) % self.eval_every == 0 else {}
            row: dict[str, Any] = {
                "epoch": epoch,
                "lr": self.optimizer.param_groups[0]["lr"],
                **train_stats,
                **eval_stats,
                **state.metrics,
                "epoch_wall_s": time.perf_counter() - start,
            }
            self.history.append(row)
            self._log(row)
            self.save_checkpoint()
        self.start_epoch = max(self.start_epoch, epochs)
        for hook in self.hooks:
            hook.on_train_end(state)
        return self.history
