"""Token-level patches. ``tome_train.patch.timm(model, keep_rate=0.7)`` patches a timm ViT."""

from .attention_level import attention_level_notice, attention_level_status
from .prune import kept_token_count, prune_tokens, stage_token_counts, validate_keep_rate
from .timm import DEFAULT_PRUNE_LAYERS, apply_patch, is_patched, patchable, unpatch

timm = apply_patch  # ToMe-style spelling: tome_train.patch.timm(model, ...)

__all__ = [
    "DEFAULT_PRUNE_LAYERS",
    "apply_patch",
    "attention_level_notice",
    "attention_level_status",
    "is_patched",
    "kept_token_count",
    "stage_token_counts",
    "patchable",
    "prune_tokens",
    "timm",
    "unpatch",
    "validate_keep_rate",
]
