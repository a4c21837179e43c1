"""Token pruning side by side with EViT's reference model (Liang et al., ICLR 2022).

Both models get the same weights (a seeded, randomly initialised timm DeiT, loaded into
EViT's ``EViT`` class) and the same inputs. Compared per pruning block: the set of original
patch positions kept (EViT keeps tokens in descending CLS attention, we keep them in
position order, so each side's indices are traced back to the input patches first), then
the logits. The keep-rate schedule and the rounding of the kept count are compared with
EViT's ``adjust_keep_rate`` and its ``ceil(keep_rate * N)``.
"""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Callable
from typing import Any
from unittest import mock

import timm
import torch

from ..patch import apply_patch, kept_token_count
from ..patch.hook import KeepRateHook

SUPPORTED_MODELS = ("deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224")
PRUNE_LAYERS = (3, 6, 9)  # EViT's drop_loc for 12-block DeiTs
FUSED = -1  # stands for the fused token in traced positions


def _reference_model(evit: types.ModuleType, ours: torch.nn.Module, keep_rate: float, fuse: bool) -> torch.nn.Module:
    depth = len(ours.blocks)
    rates = [1.0] * depth
    for layer in PRUNE_LAYERS:
        rates[layer] = keep_rate
    ref = evit.EViT(
        img_size=ours.patch_embed.img_size[0], patch_size=ours.patch_embed.patch_size[0],
        embed_dim=ours.embed_dim, depth=depth, num_heads=ours.blocks[0].attn.num_heads,
        num_classes=ours.num_classes, keep_rate=rates, fuse_token=fuse,
    )
    ref.load_state_dict(ours.state_dict(), strict=True)
    return ref.eval()


def _normalise_fusion(ref: torch.nn.Module) -> None:
    """Make EViT fuse with weights normalised over the pruned tokens, as we do: its
    attention's CLS scores are divided by their sum over the pruned tokens, a positive
    per-sample scale that leaves its top-k unchanged."""
    for blk in ref.blocks:
        def forward(*args: Any, _original: Callable[..., Any] = blk.attn.forward, **kwargs: Any) -> Any:
            x, index, idx, cls_attn, left = _original(*args, **kwargs)
            if cls_attn is not None:
                pruned_mass = cls_attn.sum(1, keepdim=True) - cls_attn.gather(1, idx).sum(1, keepdim=True)
                cls_attn = cls_attn / pruned_mass
            return x, index, idx, cls_attn, left

        blk.attn.forward = forward


def _trace(index_per_layer: list[torch.Tensor], num_patches: int, fuse: bool) -> list[torch.Tensor]:
    """Original patch position (``FUSED`` for the fused token) of every kept token, per layer."""
    batch = index_per_layer[0].shape[0] if index_per_layer else 0
    positions = torch.arange(num_patches).expand(batch, -1)
    traced = []
    for index in index_per_layer:
        positions = positions.gather(1, index)
        traced.append(positions)
        if fuse:
            positions = torch.cat([positions, torch.full((batch, 1), FUSED)], dim=1)
    return traced


def _match(ours: list[torch.Tensor], theirs: list[torch.Tensor], ordered: bool) -> list[bool]:
    """Per pruning block: the same kept positions for every sample (as sets unless ``ordered``)."""
    if len(ours) != len(theirs):
        return [False] * max(len(ours), len(theirs))
    if not ordered:
        ours, theirs = [t.sort(1).values for t in ours], [t.sort(1).values for t in theirs]
    return [a.shape == b.shape and bool((a == b).all()) for a, b in zip(ours, theirs)]


def _our_forward(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], float]:
    """Logits, kept indices per pruning block, and the smallest gap between the last kept and
    the first dropped CLS-attention score (how close the closest decision was)."""
    module = sys.modules[apply_patch.__module__]
    prune = module.prune_tokens
    kept: list[torch.Tensor] = []
    margins: list[float] = []

    def recording(x_: torch.Tensor, cls_attn: torch.Tensor, keep_rate: float, prefix: int, **kw: Any) -> Any:
        out = prune(x_, cls_attn, keep_rate, prefix, **kw)
        if out[1] is not None:
            scores = cls_attn[:, prefix:].sort(dim=1, descending=True).values
            k = out[1].shape[1]
            margins.append(float((scores[:, k - 1] - scores[:, k]).min()))
            kept.append(out[1])
        return out

    with torch.no_grad(), mock.patch.object(module, "prune_tokens", recording):
        logits = model(x)
    return logits, kept, min(margins, default=math.inf)


def compare_pruning(evit: types.ModuleType, model_name: str = "deit_tiny_patch16_224",
                    keep_rates: tuple[float, ...] = (0.7, 0.5), batch_size: int = 4, seed: int = 0,
                    atol: float = 1e-5) -> dict[str, Any]:
    """Kept tokens and logits of our patch against EViT, same weights and inputs."""
    if model_name not in SUPPORTED_MODELS:
        raise ValueError(f"model must be one of {SUPPORTED_MODELS}, got {model_name!r}")
    torch.manual_seed(seed)
    dense = timm.create_model(model_name, pretrained=False).eval()
    x = torch.randn(batch_size, 3, *dense.patch_embed.img_size, generator=torch.Generator().manual_seed(seed + 1))
    num_patches = dense.patch_embed.num_patches
    cases = []
    variants = [("evit", False, "sdpa"), ("evit", False, "explicit"), ("evit", True, "sdpa"),
                ("normalised", True, "sdpa")]
    for keep_rate in keep_rates:
        for fusion, fuse, attention in variants:
            ours = timm.create_model(model_name, pretrained=False)
            ours.load_state_dict(dense.state_dict())
            for blk in ours.blocks:
                blk.attn.fused_attn = attention == "sdpa"
            apply_patch(ours.eval(), keep_rate=keep_rate, prune_layers=PRUNE_LAYERS, fuse=fuse)
            ref = _reference_model(evit, dense, keep_rate, fuse)
            if fusion == "normalised":
                _normalise_fusion(ref)
            with torch.no_grad():
                ref_logits, ref_index = ref(x, keep_rate, get_idx=True)
            logits, our_index, margin = _our_forward(ours, x)
            ours_traced = _trace(our_index, num_patches, fuse)
            ref_traced = _trace(list(ref_index), num_patches, fuse)
            diff = float((logits - ref_logits).abs().max())
            cases.append({
                "keep_rate": keep_rate, "fuse": fuse, "evit_fusion_weights": fusion if fuse else None,
                "our_attention": attention,
                "kept_per_layer": [int(t.shape[1]) for t in ours_traced],
                "evit_kept_per_layer": [int(t.shape[1]) for t in ref_traced],
                "kept_sets_match": _match(ours_traced, ref_traced, ordered=False),
                "kept_order_match": _match(ours_traced, ref_traced, ordered=True),
                "max_abs_logit_diff": diff, "logits_allclose": diff <= atol,
                "closest_decision_gap": margin,
            })
    return {"model": model_name, "batch_size": batch_size, "seed": seed, "prune_layers": list(PRUNE_LAYERS),
            "logit_atol": atol, "cases": cases}


def compare_rounding(keep_rates: tuple[float, ...], max_tokens: int = 1024) -> dict[str, Any]:
    """Our ``kept_token_count`` against EViT's ``math.ceil(keep_rate * N)`` for N = 1..max_tokens."""
    pairs, differ = 0, []
    for rate in keep_rates:
        for n in range(1, max_tokens + 1):
            pairs += 1
            theirs = math.ceil(rate * n)
            if kept_token_count(n, rate) != theirs:
                differ.append({"keep_rate": rate, "tokens": n, "ours": kept_token_count(n, rate), "evit": theirs})
    return {"pairs_compared": pairs, "pairs_differing": len(differ), "examples": differ[:5]}


def _stage_counts(num_patches: int, rate: float, count: Callable[[int, float], int], fuse: bool) -> tuple[int, ...]:
    out, n = [], num_patches
    for _ in PRUNE_LAYERS:
        keep = count(n, rate)
        if keep < n:
            n = keep + (1 if fuse else 0)
        out.append(n)
    return tuple(out)


def compare_schedule(evit_helpers: types.ModuleType, base_keep_rate: float = 0.7, warmup_epochs: int = 10,
                     decay_epochs: int = 100, epochs: int = 300, iters_per_epoch: int = 625,
                     num_patches: int = 196) -> dict[str, Any]:
    """The keep rate our keep-rate hook sets before each batch against EViT's
    ``adjust_keep_rate`` at every iteration of an EViT training run (defaults: its DeiT-S
    ImageNet recipe, 8 x 256 images per step), and the token counts per pruning block each
    rate gives under either rounding."""
    hook = KeepRateHook(base_keep_rate, warmup_epochs, decay_epochs)
    state = types.SimpleNamespace(model=types.SimpleNamespace(), steps_in_epoch=iters_per_epoch, metrics={})
    max_diff, counted, count_diff, example, points = 0.0, 0, {False: 0, True: 0}, None, []
    shown = {(warmup_epochs - 1, iters_per_epoch - 1), (warmup_epochs, 0), (warmup_epochs, iters_per_epoch // 2),
             (warmup_epochs + decay_epochs // 2, 0), (warmup_epochs + decay_epochs - 1, iters_per_epoch - 1),
             (warmup_epochs + decay_epochs, 0)}
    for epoch in range(epochs):
        for step in range(iters_per_epoch):
            theirs = evit_helpers.adjust_keep_rate(
                epoch * iters_per_epoch + step, epoch, warmup_epochs=warmup_epochs,
                total_epochs=warmup_epochs + decay_epochs, ITERS_PER_EPOCH=iters_per_epoch,
                base_keep_rate=base_keep_rate)
            state.epoch, state.step_in_epoch = epoch, step
            hook.on_batch_start(state)
            ours = state.model.keep_rate
            max_diff = max(max_diff, abs(ours - theirs))
            counted += 1
            if (epoch, step) in shown:
                points.append({"epoch": epoch, "iteration": step, "ours": ours, "evit": float(theirs)})
            for fuse in (False, True):
                a = _stage_counts(num_patches, ours, kept_token_count, fuse)
                b = _stage_counts(num_patches, theirs, lambda n, r: math.ceil(r * n), fuse)
                if a != b:
                    count_diff[fuse] += 1
                    example = example or {"epoch": epoch, "step": step, "keep_rate": theirs, "fuse": fuse,
                                          "ours": list(a), "evit": list(b)}
    return {"base_keep_rate": base_keep_rate, "warmup_epochs": warmup_epochs, "decay_epochs": decay_epochs,
            "epochs": epochs, "iters_per_epoch": iters_per_epoch, "iterations_compared": counted,
            "max_abs_keep_rate_diff": max_diff, "iterations_token_counts_differ": count_diff[False],
            "iterations_token_counts_differ_fuse": count_diff[True], "first_difference": example,
            "points": points}
