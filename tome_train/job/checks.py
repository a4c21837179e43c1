"""Checks ``tools/train.py`` makes before it trains: the model, and the attention level.

``check_model`` runs before any data loads, so a model the options cannot use fails in
seconds with one line instead of after the data set is read. ``attention_level_report``
says once, at the start, where the attention level would run dense attention anyway
(``--attn-impl auto`` skips sparsity where it does not pay), and why.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch
from torch import nn

from tome_train.engine.checkpoint import preserve_rng_state
from tome_train.models import check_model_name, create_model


def check_model(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` naming ``--model`` if it is unknown or the token/attention patch
    cannot take it. The model is built on the meta device: no memory, no random numbers."""
    check_model_name(args.model, "--model")
    if args.keep_rate >= 1.0 and args.attn_keep is None:
        return  # trained unpatched: any timm model timm can build
    from tome_train.patch import timm as patch_timm

    with preserve_rng_state(), torch.device("meta"):
        model = create_model(args.model, img_size=args.img_size, arg="--model", in_chans=args.in_chans)
    try:
        patch_timm(model, keep_rate=args.keep_rate, prune_layers=args.prune_layers, fuse=args.fuse,
                   attn_keep=args.attn_keep, attn_impl=args.attn_impl)
    except (TypeError, ValueError) as err:
        raise ValueError(f"--model {args.model} with --keep-rate/--attn-keep: {err}") from None


def attention_level_report(model: nn.Module, args: argparse.Namespace,
                           input_size: tuple[int, int, int], announce: bool) -> dict[str, Any]:
    """The attention level's status for ``summary.json``; with ``announce``, print one line
    on stderr when it runs dense anywhere (judged at the target ``--keep-rate``)."""
    if args.attn_keep is None or not hasattr(model, "attn_keep"):
        return {"requested": args.attn_keep, "impl": args.attn_impl, "active": False,
                "stages": [], "reason": "--attn-keep not set" if args.attn_keep is None
                else "the model has no attention-level knob"}
    from tome_train.patch import attention_level_notice, attention_level_status

    with preserve_rng_state():
        status = attention_level_status(model, input_size)
    notice = attention_level_notice(status)
    if notice and announce:
        hint = " (set --attn-impl to force a sparse kernel)" if status["impl"] == "auto" else ""
        print(f"tome_train: --attn-keep {args.attn_keep}: {notice}{hint}", file=sys.stderr,
              flush=True)
    return status
