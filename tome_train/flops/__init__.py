"""FLOPs: counting a model's forward pass (fvcore plus handles), and the ledger of a run's cost.

``count_flops`` / ``forward_gflops`` count one sample's forward pass at the model's
current knobs; ``TrainingFlopsLedger`` records what a run spent, by kind (training,
scoring passes, selection, condensation). The ledger's engine hook lives in
:mod:`tome_train.flops.hook` (imported on its own, so counting FLOPs never imports the engine).
"""

from .count import (
    EXTRA_HANDLES,
    FlopReport,
    count_flops,
    default_input_size,
    forward_gflops,
    register_flop_handle,
    sdpa_flop_jit,
)
from .ledger import KINDS, TRAIN_FLOPS_PER_FORWARD, TrainingFlopsLedger

__all__ = [
    "EXTRA_HANDLES",
    "FlopReport",
    "KINDS",
    "TRAIN_FLOPS_PER_FORWARD",
    "TrainingFlopsLedger",
    "count_flops",
    "default_input_size",
    "forward_gflops",
    "register_flop_handle",
    "sdpa_flop_jit",
]
