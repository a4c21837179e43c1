"""The one training/evaluation loop.

``train_one_epoch`` does forward, loss, backward and step for each batch of
``(image, label, index)`` and hands the results to hooks; it knows nothing about
token, attention or example pruning. ``evaluate`` shards the test set across
ranks and sums counts, so every rank gets the exact whole-set accuracy.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from .. import distributed as tdist
from .hooks import BatchResult, Hook, TrainState
from .optim import WarmupCosineSchedule


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``amp``; plain fp32 elsewhere (CPU autocast is slow)."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _all_reduce(values: list[float]) -> list[float]:
    if not tdist.is_dist():
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def _all_reduce_max(value: int) -> int:
    if not tdist.is_dist():
        return value
    t = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def _hook_weights(hooks: Sequence[Hook], state: TrainState, batch: BatchResult) -> torch.Tensor | None:
    """Product of the per-sample weights the hooks return (``None`` when no hook re-weights)."""
    weights = None
    for hook in hooks:
        w = hook.reweight(state, batch)
        if w is None:
            continue
        if w.shape != batch.losses.shape:
            raise ValueError(f"hook {hook.name!r}: reweight must return shape {tuple(batch.losses.shape)}, "
                             f"got {tuple(w.shape)}")
        w = w.to(batch.losses.device, batch.losses.dtype)
        weights = w if weights is None else weights * w
        batch.weights = weights
    return weights


class _FeatureCapture:
    """Record the classifier's input (the penultimate features) of every forward pass.

    A forward pre-hook on the model's classifier works the same for ViTs and CNNs and
    under DDP (the wrapped module's forward still runs the classifier).
    """

    def __init__(self, model: nn.Module) -> None:
        head = model.get_classifier() if hasattr(model, "get_classifier") else None
        if not isinstance(head, nn.Module):
            raise ValueError(f"a hook needs features, but {type(model).__name__} has no get_classifier()")
        self.head = head
        self.features: torch.Tensor | None = None
        self._handle: Any = None

    def _record(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.features = args[0]

    def __enter__(self) -> _FeatureCapture:
        self._handle = self.head.register_forward_pre_hook(self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    schedule: WarmupCosineSchedule,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    state: TrainState,
    hooks: Sequence[Hook] = (),
    mixup_fn: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    amp: bool = True,
    clip_grad: float | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """One pass over ``loader``; ``model`` may be DDP-wrapped (then uneven shards are joined).

    ``criterion`` returns per-sample losses (``reduction="none"``); the loss that is
    back-propagated is their mean after the hooks' weights (see :mod:`.hooks`).
    """
    device = state.device
    model.train()
    # Shards may differ by one sample, so ranks may differ by one batch: the LR schedule
    # uses the longest shard's count so every rank sees the same LR at the same step.
    steps = _all_reduce_max(len(loader))
    if steps == 0:
        raise ValueError(
            "no training batch this epoch: the active set is smaller than --batch-size and the "
            "last partial batch is dropped (mixup/cutmix need full batches); lower --batch-size"
        )
    loss_sum, correct, seen = 0.0, 0.0, 0
    join = model.join() if isinstance(model, DistributedDataParallel) else contextlib.nullcontext()
    batches: Any = loader
    if progress:
        from tqdm import tqdm

        batches = tqdm(loader, total=steps, desc=f"epoch {state.epoch}", leave=False, dynamic_ncols=True)
    capture = _FeatureCapture(state.model) if any(h.needs_features for h in hooks) else None
    state.steps_in_epoch = steps
    with join, (capture or contextlib.nullcontext()):
        for index, (images, targets, indices) in enumerate(batches):
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            indices = indices.to(device, non_blocking=True)
            schedule.step(state.epoch, index, steps)
            state.step_in_epoch = index
            for hook in hooks:
                hook.on_batch_start(state)
            inputs, loss_targets = images, targets
            if mixup_fn is not None:
                inputs, loss_targets = mixup_fn(images, targets)
            with autocast(device, amp):
                logits = model(inputs)
                losses = criterion(logits, loss_targets)
            if losses.ndim != 1 or losses.shape[0] != images.shape[0]:
                raise ValueError(f"criterion must return one loss per sample (reduction='none'), "
                                 f"got shape {tuple(losses.shape)} for a batch of {images.shape[0]}")
            losses = losses.float()
            batch = BatchResult(indices=indices, logits=logits, targets=targets, loss_targets=loss_targets,
                                losses=losses, features=capture.features if capture else None)
            batch.weights = _hook_weights(hooks, state, batch)
            loss = (losses * batch.weights).mean() if batch.weights is not None else losses.mean()
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {state.epoch}, step {index}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
            state.global_step += 1
            batch = batch.detached()
            for hook in hooks:
                hook.on_batch_end(state, batch)
            loss_sum += losses.detach().sum().item()
            correct += (batch.logits.argmax(dim=-1) == targets).sum().item()
            seen += images.shape[0]
    loss_sum, correct, total = _all_reduce([loss_sum, correct, float(seen)])
    total = max(total, 1.0)
    return {"train_loss": loss_sum / total, "train_top1": 100.0 * correct / total}


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: DataLoader, device: torch.device, amp: bool = True
) -> dict[str, float]:
    """Top-1 (percent) and mean cross-entropy over all ranks' shards of the test set.

    Pass the *unwrapped* model: each rank evaluates its own shard without DDP
    synchronisation, and the sums are all-reduced afterwards.
    """
    was_training = model.training
    model.eval()
    loss_sum, correct, seen = 0.0, 0.0, 0.0
    for batch in loader:
        images, targets = batch[0].to(device), batch[1].to(device)
        with autocast(device, amp):
            logits = model(images)
        logits = logits.float()
        loss_sum += nn.functional.cross_entropy(logits, targets, reduction="sum").item()
        correct += (logits.argmax(dim=-1) == targets).sum().item()
        seen += targets.shape[0]
    model.train(was_training)
    loss_sum, correct, seen = _all_reduce([loss_sum, correct, seen])
    seen = max(seen, 1.0)
    return {"top1": 100.0 * correct / seen, "test_loss": loss_sum / seen, "test_count": int(seen)}
