"""The training job of ``tools/train.py``, as a library: :func:`main` takes its argument
list (:mod:`tome_train.job.args`) and optional extra engine hooks, trains, and returns the
summary. The scoring runner and the comparison tools run training through it.

Writes ``checkpoint.pt`` (last epoch), ``log.csv``, ``log.jsonl`` and ``summary.json``
to ``--output-dir`` (rank 0 only). ``--resume PATH`` continues a run, possibly with
a larger ``--epochs``; see :mod:`tome_train.engine.optim` for when that is exact.
Under ``torchrun`` every rank calls :func:`main` (gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset

import tome_train  # noqa: F401  (registers the project's timm models)
from tome_train.data import IndexedDataset, build_dataset, fixed_subset, load_indices, skipped_files
from tome_train.engine import (
    Hook,
    ShardedIndexSampler,
    Trainer,
    WarmupCosineSchedule,
    build_optimizer,
    index_digest,
    random_subset,
)
from tome_train.engine.checkpoint import atomic_write_text
from tome_train.engine.runtime import (
    init_distributed,
    resolve_device,
    seed_everything,
    set_cpu_threads,
    shutdown_distributed,
)
from tome_train.flops import TrainingFlopsLedger
from tome_train.flops.hook import FlopsLedgerHook
from tome_train.job.args import parse_args, resolve_defaults
from tome_train.job.checks import attention_level_report, check_model
from tome_train.job.data_args import imagefolder_notice, resolve_augmentation_args
from tome_train.job.model import build_criterion, build_model, dense_forward_gflops
from tome_train.models import default_img_size
from tome_train.validation import writable_output_dir

SUMMARY_NAME = "summary.json"
# Arguments that may legitimately change when resuming.
_RESUME_MUTABLE = {"epochs", "resume", "output_dir", "no_progress", "num_workers", "device"}


def build_example_level(
    args: argparse.Namespace, num_samples: int, device: torch.device, world: int, rank: int
) -> tuple[Any, Any, torch.Tensor, Hook | None]:
    """``(selector or policy or None, sampler, fixed index set, hook or None)`` for ``--data-policy``."""
    policy_name = args.data_policy
    if policy_name == "forgetting-swap":
        from tome_train.selection import ActiveSetSampler, ExampleSelector
        from tome_train.selection.hook import SelectorHook

        kwargs = dict(ExampleSelector.default_schedule(args.epochs, num_samples, args.data_keep))
        if args.swap_every is not None:
            kwargs["swap_every"] = args.swap_every
        if args.swap_fraction is not None:
            kwargs["swap_fraction"] = args.swap_fraction
            kwargs.pop("swap_n", None)  # an explicit count would override the fraction
        kwargs.pop("data_keep", None)
        selector = ExampleSelector(
            num_samples, data_keep=args.data_keep, seed=args.seed, device=str(device), **kwargs
        )
        sampler = ActiveSetSampler(selector, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
        return selector, sampler, torch.arange(num_samples), SelectorHook(selector)
    if policy_name in ("dynamic-random", "infobatch", "seta"):
        from tome_train.selection import ActiveSetSampler
        from tome_train.selection.policies import DataPolicyHook, build_policy

        policy = build_policy(
            policy_name, num_samples, seed=args.seed, keep=args.data_keep, device=device,
            prune_ratio=args.prune_ratio, delta=args.delta, num_groups=args.seta_groups,
            window_scale=args.seta_window,
        )
        sampler = ActiveSetSampler(policy, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
        return policy, sampler, torch.arange(num_samples), DataPolicyHook(policy)
    if policy_name == "static-random":
        indices = random_subset(num_samples, args.data_keep, args.seed)
    else:
        indices = torch.arange(num_samples)
    sampler = ShardedIndexSampler(indices, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    return None, sampler, indices, None


def selector_summary(selector: Any, indices: torch.Tensor, num_samples: int) -> dict[str, Any]:
    """The example level at the end of the run (a policy reports its last epoch's subset)."""
    if selector is not None and hasattr(selector, "swaps"):
        summary = dict(selector.summary())
        return {key: summary[key] for key in ("active_count", "removed_count", "swaps", "active_digest")}
    if selector is not None:
        active = selector.active_indices
        return {**selector.summary(), "active_count": int(active.numel()),
                "removed_count": int(num_samples - active.numel()), "swaps": 0,
                "active_digest": index_digest(active)}
    return {
        "active_count": int(indices.numel()),
        "removed_count": int(num_samples - indices.numel()),
        "swaps": 0,
        "active_digest": index_digest(indices),
    }


def _warn_resume_differences(saved: dict[str, Any], current: dict[str, Any]) -> None:
    changed = sorted(
        key for key in set(saved) | set(current)
        if key not in _RESUME_MUTABLE and saved.get(key) != current.get(key)
    )
    if changed:
        warnings.warn(f"resuming with arguments that differ from the checkpoint: {changed}", stacklevel=2)


def _json_args(args: argparse.Namespace) -> dict[str, Any]:
    return {key: (list(value) if isinstance(value, tuple) else value) for key, value in vars(args).items()}


def run(
    args: argparse.Namespace, device: torch.device, rank: int, world: int, extra_hooks: Sequence[Hook] = ()
) -> dict[str, Any]:
    """Build everything, train, evaluate, and return (rank 0: also write) the summary.

    ``extra_hooks`` run after the built-in ones (scoring runs plug in here).
    """
    started = time.perf_counter()
    seed_everything(args.seed + rank)
    check_model(args)  # before the data loads
    img_size = args.img_size or default_img_size(args.model)
    args.img_size = img_size
    augmentation = resolve_augmentation_args(args)
    if rank == 0:
        if args.dataset == "imagefolder":
            print(imagefolder_notice(args), flush=True)
        print(f"[train] {args.dataset}: model {args.model} at {img_size} px, {args.in_chans} channel(s); "
              f"{args.opt} lr {args.lr:g} weight decay {args.weight_decay:g}"
              f"{f' momentum {args.momentum:g}' if args.momentum is not None else ''}; "
              f"batch {args.batch_size}, {args.epochs} epochs", flush=True)
    train_set, num_classes = build_dataset(
        args.dataset, args.data_path, "train", img_size, args.in_chans, augmentation=augmentation
    )
    test_set, _ = build_dataset(args.dataset, args.data_path, "test", img_size, args.in_chans)
    full_sets = (train_set, test_set)  # their skipped_files grow if a file fails mid-run
    subset = None
    if args.subset is not None:
        subset = load_indices(args.subset, len(train_set), arg="--subset")
        train_set = Subset(train_set, subset.tolist())
    if args.limit_train is not None and args.limit_train < len(train_set):
        train_set = Subset(train_set, fixed_subset(len(train_set), args.limit_train))
    if args.limit_test is not None and args.limit_test < len(test_set):
        test_set = Subset(test_set, fixed_subset(len(test_set), args.limit_test))
    input_size = (args.in_chans, img_size, img_size)

    model = build_model(args, num_classes, img_size)
    dense_forward = dense_forward_gflops(args, num_classes, img_size)
    hooks: list[Hook] = []
    if args.keep_rate < 1.0 or args.attn_keep is not None:
        from tome_train.patch import timm as patch_timm
        from tome_train.patch.hook import KeepRateHook

        model = patch_timm(model, keep_rate=args.keep_rate, prune_layers=args.prune_layers, fuse=args.fuse,
                           attn_keep=args.attn_keep, attn_impl=args.attn_impl)
        hooks.append(KeepRateHook(args.keep_rate, args.keep_rate_warmup, args.keep_rate_decay, args.attn_keep))
    model.to(device)
    attention = attention_level_report(model, args, input_size, announce=rank == 0)
    train_model: nn.Module = model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        train_model = DistributedDataParallel(model, device_ids=ids)

    num_samples = len(train_set)
    selector, sampler, indices, example_hook = build_example_level(args, num_samples, device, world, rank)
    if example_hook is not None:
        hooks.append(example_hook)
    ledger = TrainingFlopsLedger()
    hooks.append(FlopsLedgerHook(ledger, input_size))
    hooks.extend(extra_hooks)

    criterion, mixup_fn = build_criterion(args, num_classes)
    pin = device.type == "cuda"
    train_loader = DataLoader(
        IndexedDataset(train_set), batch_size=args.batch_size, sampler=sampler,
        num_workers=args.num_workers, drop_last=mixup_fn is not None, pin_memory=pin,
    )
    test_shard = Subset(test_set, list(range(rank, len(test_set), world)))
    test_loader = DataLoader(
        test_shard, batch_size=args.eval_batch_size, shuffle=False, num_workers=args.num_workers,
        pin_memory=pin,
    )
    optimizer = build_optimizer(model, args.lr, args.weight_decay, args.opt,
                                args.momentum if args.momentum is not None else 0.9)
    schedule = WarmupCosineSchedule(optimizer, args.lr, args.epochs, args.warmup_epochs, args.min_lr)
    trainer = Trainer(
        model=model, train_model=train_model, optimizer=optimizer, schedule=schedule,
        criterion=criterion, train_loader=train_loader, test_loader=test_loader, device=device,
        hooks=hooks, output_dir=args.output_dir, args=_json_args(args), mixup_fn=mixup_fn,
        amp=not args.no_amp, clip_grad=args.clip_grad, progress=not args.no_progress,
        is_main=rank == 0, eval_every=args.eval_every,
    )
    if args.resume:
        checkpoint = trainer.resume(args.resume)  # last: restores the RNG states
        if rank == 0:
            _warn_resume_differences(checkpoint.get("args", {}), trainer.args)

    history = trainer.fit(args.epochs)
    final = history[-1] if history and history[-1]["epoch"] == args.epochs - 1 else trainer.evaluate()
    totals = ledger.totals()
    dense_train = dense_forward * 3 * num_samples * args.epochs
    summary: dict[str, Any] = {
        "top1": float(final["top1"]),
        "test_loss": float(final["test_loss"]),
        "train_gflops": float(totals["train_gflops"]),
        "dense_train_gflops": float(dense_train),
        "gflops_ratio": float(totals["train_gflops"]) / dense_train if dense_train else None,
        "total_gflops": float(totals["gflops"]),
        "gflops_by_kind": {kind: float(entry["gflops"]) for kind, entry in totals["by_kind"].items()},
        "dense_forward_gflops": dense_forward,
        "samples": int(totals["samples"]),
        "wall_s": float(totals["wall_s"]),
        "run_wall_s": time.perf_counter() - started,
        "epochs": args.epochs,
        "num_train": num_samples,
        "num_test": len(test_set),
        "ledger": list(ledger.rows),
        "attention_level": attention,
        "selector": selector_summary(selector, indices, num_samples),
        "data_policy": args.data_policy,
        "backward_samples": int(totals["samples"]),
        "dense_backward_samples": int(num_samples * args.epochs),
        "subset": None if subset is None else {"path": str(args.subset), "count": int(subset.numel()),
                                               "digest": index_digest(subset)},
        "history": history,
        "args": trainer.args,
        "world_size": world,
        "skipped_files": skipped_files(*full_sets),
    }
    if rank == 0:
        out = Path(args.output_dir)
        atomic_write_text(json.dumps(summary, indent=2, default=float) + "\n", out / SUMMARY_NAME)
        print(
            f"top1={summary['top1']:.2f}% train_gflops={summary['train_gflops']:.3f} "
            f"dense={dense_train:.3f} ratio={summary['gflops_ratio']:.3f} "
            f"selector={summary['selector']} -> {out / SUMMARY_NAME}",
            flush=True,
        )
    return summary


def main(argv: Sequence[str] | None = None, extra_hooks: Sequence[Hook] = ()) -> dict[str, Any]:
    """Train from ``tools/train.py`` arguments and return the summary."""
    args = parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    resolve_defaults(args, world)
    writable_output_dir(args.output_dir)
    device = resolve_device(args.device)
    distributed = init_distributed(device)
    rank = dist.get_rank() if distributed else 0
    if device.type == "cpu":
        set_cpu_threads(args.threads, world)
    try:
        return run(args, device, rank, world, extra_hooks)
    finally:
        shutdown_distributed()
