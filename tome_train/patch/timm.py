"""Patch a timm ``VisionTransformer`` in place for CLS-attention token pruning.

Follows ToMe's approach (swap ``model.__class__`` and each block's class for
subclasses; no weights are copied, so ``state_dict()`` is unchanged), with:

* current timm blocks: fused attention (SDPA), LayerScale, qk-norm, gated attention,
  distillation and register tokens (all prefix tokens are kept, never pruned);
* plain attributes as knobs, read at every forward (``model.keep_rate``,
  ``model.prune_layers``, ``model.fuse``), so a schedule can change them per epoch;
* ``unpatch`` to restore the original classes.

Per-forward state lives in one small dict shared by the model and its blocks
(``model._tome_info``): it is refilled at the start of every forward.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import Attention
from timm.models.vision_transformer import Block, VisionTransformer

from ..attention import IMPLS, BlockLayout, check_attn_keep, sparse_attention
from .attention_level import plan_layout
from .prune import prune_tokens, stage_token_counts, validate_keep_rate

DEFAULT_PRUNE_LAYERS: tuple[int, ...] = (3, 6, 9)  # EViT / Tri-Level E-ViT on 12-block DeiTs
_ORIGINAL = "_tome_original_class"
_KNOBS = ("keep_rate", "prune_layers", "fuse", "attn_keep", "attn_impl")


def _validate_impl(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f"attn_impl must be one of {IMPLS}, got {impl!r}")
    return impl


class CLSAttentionMixin:
    """Adds ``forward_tome``: attention (dense or block-sparse) plus what pruning needs."""

    def forward_tome(
        self, x: torch.Tensor, need_cls_attn: bool, layout: BlockLayout | None = None,
        impl: str = "auto",
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Returns ``(output, cls_attn [B, N] or None, q, k)`` with q, k ``[B, H, N, D]``."""
        attn: Attention = self  # type: ignore[assignment]
        batch, num_tokens, _ = x.shape
        gate = attn.gate(x).sigmoid() if getattr(attn, "gate", None) is not None else None
        qkv = attn.qkv(x).reshape(batch, num_tokens, 3, attn.num_heads, attn.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        q, k = attn.q_norm(q), attn.k_norm(k)
        dropout_p = attn.attn_drop.p if attn.training else 0.0
        cls_attn = None
        if layout is not None or attn.fused_attn:
            if layout is not None:
                out = sparse_attention(q, k, v, layout, impl=impl, dropout_p=dropout_p)
            else:
                out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
            if need_cls_attn:
                # The fused/sparse kernels never materialise the probabilities: recompute
                # only the CLS row (N dot products per head instead of N^2).
                cls_logits = (q[:, :, :1] * attn.scale) @ k.transpose(-2, -1)
                cls_attn = cls_logits.softmax(dim=-1)[:, :, 0].mean(dim=1)
        else:
            probs = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            cls_attn = probs[:, :, 0].mean(dim=1) if need_cls_attn else None
            out = attn.attn_drop(probs) @ v
        out = out.transpose(1, 2).reshape(batch, num_tokens, attn.attn_dim)
        out = attn.norm(out)
        if gate is not None:
            out = out * gate
        out = attn.proj_drop(attn.proj(out))
        return out, cls_attn, q, k


class PruningBlockMixin:
    """A timm ``Block`` that prunes tokens between its attention and its MLP."""

    _tome_info: dict[str, Any]
    _tome_layer: int

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        info = self._tome_info
        info["token_counts"].append(int(x.shape[1]))
        prune_layer = self._tome_layer in info["prune_layers"]
        prunes = prune_layer and info["keep_rate"] < 1.0
        plans_layout = prune_layer and info["attn_keep"] is not None
        layout = info["attn_layout"]
        if not (prunes or plans_layout or layout is not None):
            return super().forward(x, attn_mask=attn_mask, is_causal=is_causal)  # type: ignore[misc]
        if attn_mask is not None or is_causal:
            raise ValueError("attn_mask / is_causal are not supported with token or attention pruning")
        blk: Block = self  # type: ignore[assignment]
        out, cls_attn, q, k = blk.attn.forward_tome(
            blk.norm1(x), need_cls_attn=prunes, layout=layout, impl=info["attn_impl"]
        )
        x = x + blk.drop_path1(blk.ls1(out))
        if prunes or plans_layout:
            # q and k travel through pruning as one per-token tensor, reduced like x.
            qk = rearrange(torch.cat([q, k], -1), "b h n d -> b n (h d)") if plans_layout else None
            if prunes:
                x, _, reduced = prune_tokens(
                    x, cls_attn, info["keep_rate"], info["num_prefix_tokens"], fuse=info["fuse"],
                    companions=(qk,) if qk is not None else (),
                )
                qk = reduced[0] if qk is not None else None
            if qk is not None:
                # Attention level: plan the layout for the blocks up to the next pruning block
                # from this block's queries and keys of the tokens that remain.
                qk = rearrange(qk.detach(), "b n (h d) -> b h n d", h=q.shape[1])
                q_kept, k_kept = qk.chunk(2, dim=-1)
                info["attn_layout"] = plan_layout(
                    q_kept, k_kept, info["attn_keep"], info["num_prefix_tokens"], info["attn_impl"]
                )
        return x + blk.drop_path2(blk.ls2(blk.mlp(blk.norm2(x))))


class TokenPruningMixin:
    """The patched model: validates the knobs and resets the shared state per forward."""

    keep_rate: float
    prune_layers: tuple[int, ...]
    fuse: bool
    _tome_info: dict[str, Any]

    def stage_token_counts(self) -> tuple[int, ...]:
        """Patch tokens left after each pruning block at the current knobs (no forward)."""
        layers = _validate_layers(self.prune_layers, len(self.blocks))  # type: ignore[attr-defined]
        return stage_token_counts(int(self.patch_embed.num_patches), validate_keep_rate(self.keep_rate),  # type: ignore[attr-defined]
                                  len(layers), bool(self.fuse))

    def _begin_forward(self) -> dict[str, Any]:
        info = self._tome_info
        info["keep_rate"] = validate_keep_rate(self.keep_rate)
        info["prune_layers"] = frozenset(_validate_layers(self.prune_layers, len(self.blocks)))  # type: ignore[attr-defined]
        info["fuse"] = bool(self.fuse)
        info["num_prefix_tokens"] = self.num_prefix_tokens  # type: ignore[attr-defined]
        attn_keep = getattr(self, "attn_keep", None)
        info["attn_keep"] = None if attn_keep is None else check_attn_keep(attn_keep)
        if info["attn_keep"] == 1.0:
            info["attn_keep"] = None
        info["attn_impl"] = _validate_impl(getattr(self, "attn_impl", "auto"))
        info["attn_layout"] = None
        info["token_counts"] = []
        if info["attn_keep"] is not None and getattr(self, "grad_checkpointing", False):
            # Recomputed blocks would read the layout of a later stage from the shared state.
            raise ValueError("attn_keep cannot be combined with gradient checkpointing; "
                             "set model.attn_keep = None or model.set_grad_checkpointing(False)")
        return info

    def forward_features(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        self._begin_forward()
        return super().forward_features(x, *args, **kwargs)  # type: ignore[misc]

    def forward_intermediates(self, *args: Any, **kwargs: Any) -> Any:
        info = self._begin_forward()
        if info["keep_rate"] < 1.0 or info["attn_keep"] is not None:
            raise ValueError("forward_intermediates needs every token (feature maps): set "
                             "model.keep_rate = 1.0 and model.attn_keep = None, or unpatch")
        return super().forward_intermediates(*args, **kwargs)  # type: ignore[misc]


_SUBCLASS_CACHE: dict[tuple[type, type], type] = {}


def _subclass(mixin: type, cls: type) -> type:
    key = (mixin, cls)
    if key not in _SUBCLASS_CACHE:
        # TokenPruningVisionTransformer, TokenPruningBlock, TokenPruningAttention, ...
        name = "TokenPruning" + cls.__name__
        _SUBCLASS_CACHE[key] = type(name, (mixin, cls), {"__module__": __name__})
    return _SUBCLASS_CACHE[key]


def _validate_layers(prune_layers: Iterable[int], depth: int) -> tuple[int, ...]:
    try:
        layers = tuple(prune_layers)
    except TypeError:
        raise TypeError(
            f"prune_layers must be a sequence of block indices in [0, {depth - 1}], "
            f"got {prune_layers!r}"
        ) from None
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise TypeError(f"prune_layers must hold ints, got {layer!r}")
        if not 0 <= layer < depth:
            raise ValueError(
                f"prune_layers: block index {layer} is outside the model's depth "
                f"(allowed 0..{depth - 1})"
            )
    if len(set(layers)) != len(layers):
        raise ValueError(f"prune_layers must not repeat a block index, got {layers}")
    return layers


def _check_model(model: Any) -> None:
    if not isinstance(model, VisionTransformer):
        raise TypeError(
            "model must be a timm VisionTransformer (DeiT, DeiT-distilled, DeiT-III, ViT with "
            f"register tokens), got {type(model).__name__}"
        )
    if not getattr(model, "has_class_token", model.cls_token is not None):
        raise ValueError(
            "model has no class token: CLS-attention pruning ranks patch tokens by the class "
            "token's attention (create the ViT with class_token=True)"
        )
    for i, blk in enumerate(model.blocks):
        if not isinstance(blk, Block):
            raise TypeError(f"model.blocks[{i}] is {type(blk).__name__}; only timm Block is supported")
        if not isinstance(blk.attn, Attention):
            raise TypeError(
                f"model.blocks[{i}].attn is {type(blk.attn).__name__}; only timm Attention is supported"
            )


def patchable(model: Any) -> bool:
    """Whether :func:`apply_patch` accepts ``model`` (a timm ViT with a class token)."""
    try:
        _check_model(model)
    except (TypeError, ValueError):
        return False
    return True


def apply_patch(
    model: VisionTransformer,
    keep_rate: float = 1.0,
    prune_layers: Iterable[int] = DEFAULT_PRUNE_LAYERS,
    fuse: bool = False,
    attn_keep: float | None = None,
    attn_impl: str = "auto",
) -> VisionTransformer:
    """Patch ``model`` in place for token pruning and return it.

    Args:
        model: a timm ``VisionTransformer`` with a class token.
        keep_rate: fraction of patch tokens kept at each pruning block, in (0, 1]; the
            rate compounds block by block. ``1.0`` leaves the model's outputs unchanged.
        prune_layers: 0-indexed blocks that prune, after attention and before the MLP.
        fuse: merge the pruned tokens into one token (EViT) instead of dropping them.
        attn_keep: attention level: fraction of key blocks each query block attends to in
            the blocks after each pruning block (None or 1.0: dense attention).
        attn_impl: sparse-attention kernel (``tome_train.attention.IMPLS``); ``"auto"``
            picks the fastest for the device and size, dense SDPA where sparsity won't pay.

    The knobs stay plain attributes (``model.keep_rate`` ...). Patching a patched model
    only updates the knobs. Arguments are validated before anything is changed.
    """
    _check_model(model)
    keep_rate = validate_keep_rate(keep_rate)
    layers = _validate_layers(prune_layers, len(model.blocks))
    if not isinstance(fuse, bool):
        raise TypeError(f"fuse must be a bool, got {fuse!r}")
    if attn_keep is not None:
        attn_keep = check_attn_keep(attn_keep)
    _validate_impl(attn_impl)

    if not hasattr(model, _ORIGINAL):
        info: dict[str, Any] = {"token_counts": []}
        setattr(model, _ORIGINAL, model.__class__)
        model.__class__ = _subclass(TokenPruningMixin, model.__class__)
        model._tome_info = info
        for i, blk in enumerate(model.blocks):
            setattr(blk, _ORIGINAL, blk.__class__)
            blk.__class__ = _subclass(PruningBlockMixin, blk.__class__)
            blk._tome_info = info
            blk._tome_layer = i
            setattr(blk.attn, _ORIGINAL, blk.attn.__class__)
            blk.attn.__class__ = _subclass(CLSAttentionMixin, blk.attn.__class__)
    model.keep_rate = keep_rate
    model.prune_layers = layers
    model.fuse = fuse
    model.attn_keep = attn_keep
    model.attn_impl = attn_impl
    return model


def unpatch(model: VisionTransformer) -> VisionTransformer:
    """Restore the original classes and remove the knobs; the weights are untouched."""
    if not hasattr(model, _ORIGINAL):
        raise ValueError("model is not patched by tome_train.patch.timm")
    modules = [model] + [m for blk in model.blocks for m in (blk, blk.attn)]
    for module in modules:
        original = module.__dict__.pop(_ORIGINAL, None)
        if original is not None:
            module.__class__ = original
        for attr in ("_tome_info", "_tome_layer", *_KNOBS):
            module.__dict__.pop(attr, None)
    return model


def is_patched(model: torch.nn.Module) -> bool:
    return hasattr(model, _ORIGINAL)
