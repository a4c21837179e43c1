"""The one train/eval engine: loop, hooks, optimizer/schedule, checkpoints, logs.

The engine knows hooks only through :class:`Hook`; each feature's hook lives beside the
feature (``tome_train.patch.hook``, ``tome_train.selection.hook``, ``tome_train.flops.hook``).
"""

from .checkpoint import (
    atomic_save,
    atomic_write_text,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
)
from .hooks import BatchResult, Hook, TrainState
from .loop import evaluate, train_one_epoch
from .losses import PerSampleCrossEntropy
from .optim import OPTIMIZERS, WarmupCosineSchedule, build_optimizer
from .samplers import ShardedIndexSampler, index_digest, random_subset
from .trainer import CHECKPOINT_NAME, Trainer, check_checkpoint

__all__ = [
    "BatchResult",
    "CHECKPOINT_NAME",
    "Hook",
    "OPTIMIZERS",
    "PerSampleCrossEntropy",
    "ShardedIndexSampler",
    "TrainState",
    "Trainer",
    "WarmupCosineSchedule",
    "atomic_save",
    "atomic_write_text",
    "build_optimizer",
    "capture_rng_state",
    "check_checkpoint",
    "evaluate",
    "index_digest",
    "load_checkpoint",
    "random_subset",
    "restore_rng_state",
    "train_one_epoch",
]
