"""Per-sample indicators and their standardised matrix.

* :func:`indicator_matrix`: named columns -> ``N x D`` standardised (zero mean, unit
  variance; a constant column stays all zero) with the names kept in order.
* :func:`pca_embedding`: a reduced embedding (scikit-learn PCA of penultimate features).
* :func:`cls_attention_stats` / :class:`ClsAttentionHook`: from a ViT patched by
  :mod:`tome_train.patch`, per image the entropy of the CLS attention over the patch
  tokens at the first pruning block, and the share of that attention held by the
  tokens that pruning at ``keep_rate`` would keep. (The *count* of kept tokens is the
  same ``ceil(keep_rate * P)`` for every image; the attention they hold is what varies:
  near 1 for an image whose evidence is compact, lower when it is spread out.)
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ...engine.hooks import Hook, TrainState


def indicator_matrix(columns: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[str]]:
    """``(matrix [N, D] float32, names)``: each 1-D column (or 2-D block, one column per
    dimension, named ``name_i``) standardised. NaN or inf raises ``ValueError`` naming it."""
    if not columns:
        raise ValueError("indicators: at least one indicator expected")
    blocks, names, num = [], [], None
    for name, values in columns.items():
        values = torch.as_tensor(values).detach().cpu().double()
        block = values.unsqueeze(1) if values.ndim == 1 else values
        if block.ndim != 2:
            raise ValueError(f"indicator {name!r} must be 1-D or 2-D, got shape {tuple(values.shape)}")
        if num is None:
            num = block.shape[0]
        if block.shape[0] != num:
            raise ValueError(f"indicator {name!r} has {block.shape[0]} rows, expected {num} (one per sample)")
        if torch.isnan(block).any():
            raise ValueError(f"indicator {name!r} contains NaN")
        if not bool(torch.isfinite(block).all()):
            raise ValueError(f"indicator {name!r} contains inf (orient it with tome_train.scoring.importance)")
        std = block.std(dim=0, unbiased=False)
        block = (block - block.mean(dim=0)) / torch.where(std > 0, std, torch.ones_like(std))
        blocks.append(block)
        names += [name] if values.ndim == 1 else [f"{name}_{i}" for i in range(block.shape[1])]
    return torch.cat(blocks, dim=1).float(), names


def pca_embedding(features: torch.Tensor, dims: int, seed: int = 0) -> torch.Tensor:
    """The first ``dims`` principal components of ``features`` (``N x D``), float32."""
    from sklearn.decomposition import PCA

    features = torch.as_tensor(features).detach().cpu().double()
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be N x D with N >= 2, got shape {tuple(features.shape)}")
    if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
        raise ValueError(f"pca_dims must be an int >= 1, got {dims!r}")
    dims = min(dims, features.shape[0], features.shape[1])
    reduced = PCA(n_components=dims, svd_solver="full", random_state=seed).fit_transform(features.numpy())
    return torch.from_numpy(reduced).float()


@torch.no_grad()
def cls_attention_stats(model: torch.nn.Module, dataset: Dataset, keep_rate: float = 0.7,
                        device: torch.device | str = "cpu", batch_size: int = 256) -> dict[str, torch.Tensor]:
    """``{"cls_entropy": [N], "cls_kept_share": [N]}`` of ``dataset`` (in order) at the first
    pruning block of ``model``, a timm ViT (patched here at keep rate 1 if it is not yet, and
    restored afterwards). Entropy is in nats over the patch tokens (CLS row renormalised)."""
    from ...patch import (
        DEFAULT_PRUNE_LAYERS,
        apply_patch,
        is_patched,
        kept_token_count,
        patchable,
        unpatch,
        validate_keep_rate,
    )

    keep_rate = validate_keep_rate(keep_rate)
    if not patchable(model):
        raise ValueError(f"model {type(model).__name__} is not a timm ViT with a class token: "
                         "CLS-attention statistics need one")
    patched_here = not is_patched(model)
    saved_rate = getattr(model, "keep_rate", 1.0)
    if patched_here:  # the first default pruning block, or the last block of a shallower ViT
        apply_patch(model, prune_layers=(min(DEFAULT_PRUNE_LAYERS[0], len(model.blocks) - 1),))
    model.keep_rate = 1.0  # every token reaches the block: the statistics describe the whole image
    block = model.blocks[model.prune_layers[0] if model.prune_layers else 0]
    captured: list[torch.Tensor] = []
    handle = block.norm1.register_forward_hook(lambda _m, _i, out: captured.append(out))
    was_training = model.training
    model.eval()
    entropy, kept = [], []
    try:
        for images, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            captured.clear()
            model.forward_features(images.to(device))
            _, cls_attn, _, _ = block.attn.forward_tome(captured[0], need_cls_attn=True)
            patches = cls_attn[:, model.num_prefix_tokens:].double()
            probs = patches / patches.sum(dim=1, keepdim=True)
            entropy.append(-(probs * probs.clamp_min(1e-30).log()).sum(dim=1).cpu())
            top = probs.topk(kept_token_count(probs.shape[1], keep_rate), dim=1).values
            kept.append(top.sum(dim=1).cpu())
    finally:
        handle.remove()
        model.train(was_training)
        if patched_here:
            unpatch(model)
        else:
            model.keep_rate = saved_rate
    return {"cls_entropy": torch.cat(entropy), "cls_kept_share": torch.cat(kept)}


class ClsAttentionHook(Hook):
    """Measures :func:`cls_attention_stats` of ``dataset`` on the trained ViT when training ends."""

    name = "cls_attention_stats"

    def __init__(self, dataset: Dataset, keep_rate: float = 0.7) -> None:
        self.dataset = dataset
        self.keep_rate = keep_rate
        self.stats: dict[str, torch.Tensor] = {}
        self.seconds = 0.0

    def on_train_end(self, state: TrainState) -> None:
        start = time.perf_counter()
        self.stats = cls_attention_stats(state.model, self.dataset, self.keep_rate, state.device)
        self.seconds = time.perf_counter() - start

    def state_dict(self) -> dict[str, Any]:
        return {}

