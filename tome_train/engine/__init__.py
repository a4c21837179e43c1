"""The one train/eval engine: loop, hooks, optimizer/schedule, checkpoints, logs."""

from .checkpoint import atomic_save, capture_rng_state, load_checkpoint, restore_rng_state
from .hooks import BatchResult, Hook, TrainState
from .keep_rate_hook import KeepRateHook
from .ledger_hook import FlopsLedgerHook
from .loop import evaluate, train_one_epoch
from .losses import PerSampleCrossEntropy
from .optim import WarmupCosineSchedule, build_optimizer
from .samplers import ShardedIndexSampler, index_digest, random_subset
from .selector_hook import SelectorHook
from .trainer import CHECKPOINT_NAME, Trainer

__all__ = [
    "BatchResult",
    "PerSampleCrossEntropy",
    "CHECKPOINT_NAME",
    "FlopsLedgerHook",
    "Hook",
    "KeepRateHook",
    "SelectorHook",
    "ShardedIndexSampler",
    "TrainState",
    "Trainer",
    "WarmupCosineSchedule",
    "atomic_save",
    "build_optimizer",
    "capture_rng_state",
    "evaluate",
    "index_digest",
    "load_checkpoint",
    "random_subset",
    "restore_rng_state",
    "train_one_epoch",
]
