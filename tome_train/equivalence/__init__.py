"""Side-by-side checks against the authors' reference code (imported from a snapshot the
user provides, never vendored): EViT token pruning and Toneva et al.'s forgetting counts."""

from .evit import compare_pruning, compare_rounding, compare_schedule
from .forgetting import compare_forgetting, correctness_streams
from .reference import load_evit, load_toneva

__all__ = ["compare_forgetting", "compare_pruning", "compare_rounding", "compare_schedule",
           "correctness_streams", "load_evit", "load_toneva"]
