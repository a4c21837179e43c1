"""Dataset condensation (DC, DSA, DM, CAFE, IDM) on one shared core.

Shared parts: :mod:`.augment` (differentiable Siamese augmentation), :mod:`.real`
(real images by class), :mod:`.networks` (seeded networks), :mod:`.matching`
(distances), :mod:`.synthetic` (the container), :mod:`.evaluate` (the evaluation
protocol through the engine), :mod:`.cost` (pass counts -> GFLOPs), :mod:`.base`
(the loop). One module per method; :func:`get_method` maps names to classes.
"""

from .augment import DEFAULT_STRATEGY, AugmentParams, DiffAugment
from .base import Condenser, MethodConfig
from .cost import CostMeter
from .evaluate import EvalProtocol, StepSchedule, evaluate_set, train_and_test
from .matching import gradient_distance, layer_gradient_distance, mean_embedding_distance
from .real import RealPool, dataset_tensors
from .registry import METHODS, get_method
from .synthetic import SyntheticSet, expand_partitions

__all__ = [
    "DEFAULT_STRATEGY", "METHODS", "AugmentParams", "Condenser", "CostMeter", "DiffAugment", "EvalProtocol",
    "MethodConfig", "RealPool", "StepSchedule", "SyntheticSet", "dataset_tensors", "evaluate_set",
    "expand_partitions", "get_method", "gradient_distance", "layer_gradient_distance",
    "mean_embedding_distance", "train_and_test",
]
