"""``tools/flops.py``: dense vs token-pruned forward GFLOPs of a timm ViT, as JSON.

Models without tokens (``convnet3``, ``resnet18_small``, timm CNNs) get their dense count;
the token and attention knobs are reported as n/a for them, and refused if given.
"""

from __future__ import annotations

import argparse
import json

from tome_train.argtypes import bounded, fraction, int_list, one_line_errors

from .. import patch
from ..attention import IMPLS
from ..flops import count_flops, default_input_size
from ..models import create_model
from .common import exits_on_bad_input

DEFAULT_KEEP_RATE = 0.7


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="deit_small_patch16_224")
    p.add_argument("--img-size", type=bounded(int, "--img-size"), default=None,
                   help="input size (default: the model's)")
    p.add_argument("--in-chans", type=bounded(int, "--in-chans"), default=None,
                   help="input channels (default: the model's)")
    p.add_argument("--keep-rate", type=fraction("--keep-rate"), default=None,
                   help=f"token keep rate (ViTs; default {DEFAULT_KEEP_RATE})")
    p.add_argument("--prune-layers", type=int_list, default=patch.DEFAULT_PRUNE_LAYERS)
    p.add_argument("--fuse", action="store_true", help="fuse pruned tokens into one (EViT)")
    p.add_argument("--attn-keep", type=fraction("--attn-keep"), default=None,
                   help="attention level: fraction of key blocks kept per query block")
    p.add_argument("--attn-impl", choices=IMPLS, default="auto",
                   help="attention kernel whose work is counted (default auto: what training on "
                        "this machine runs, dense where the dispatcher finds sparsity won't pay; "
                        "a sparse kernel name counts its kept blocks at every size)")
    p.add_argument("--json", action="store_true", help="print one JSON object only")
    return p


def _input_size(model, args: argparse.Namespace) -> tuple[int, int, int]:
    chans, height, width = default_input_size(model)
    if args.in_chans is not None:
        chans = args.in_chans
    if args.img_size is not None:
        height = width = args.img_size
    return chans, height, width


def dense_summary(model, args: argparse.Namespace) -> dict:
    """A model without tokens: its dense count; refuse token/attention knobs that were given."""
    given = [flag for flag, value in (("--keep-rate", args.keep_rate), ("--attn-keep", args.attn_keep),
                                      ("--fuse", args.fuse or None)) if value is not None]
    if given:
        raise ValueError(f"{', '.join(given)}: {args.model} is a {type(model).__name__}, not a ViT: "
                         "token and attention pruning do not apply (drop the option to count it dense)")
    dense = count_flops(model, _input_size(model, args))
    return {
        "model": args.model, "input_size": list(_input_size(model, args)), "family": "cnn",
        "dense_gflops": dense.gflops, "keep_rate": None, "fuse": None, "attn_keep": None,
        "attn_impl": None, "prune_layers": None, "sparse_gflops": None, "ratio": None,
        "speedup_ideal": None, "tokens_per_block": None, "note": "token/attention knobs n/a: not a ViT",
        "dense_gflops_by_operator": {k: round(v, 4) for k, v in dense.by_operator.items()},
    }


def flops_summary(args: argparse.Namespace) -> dict:
    kwargs = {"in_chans": args.in_chans} if args.in_chans is not None else {}
    model = create_model(args.model, args.img_size, arg="--model", **kwargs)
    if not patch.patchable(model):
        return dense_summary(model, args)
    if args.keep_rate is None:
        args.keep_rate = DEFAULT_KEEP_RATE
    input_size = _input_size(model, args)
    dense = count_flops(model, input_size)
    patch.timm(model, keep_rate=args.keep_rate, prune_layers=args.prune_layers, fuse=args.fuse,
               attn_keep=args.attn_keep, attn_impl=args.attn_impl)
    sparse = count_flops(model, input_size)
    num_tokens = sparse.token_counts[0] if sparse.token_counts else None
    attention = patch.attention_level_status(model, input_size)
    return {
        "model": args.model,
        "input_size": list(input_size),
        "family": "vit",
        "keep_rate": args.keep_rate,
        "fuse": args.fuse,
        "attn_keep": args.attn_keep,
        "attn_impl": args.attn_impl if args.attn_keep is not None else None,
        "attn_active": attention["active"] if args.attn_keep is not None else None,
        "attn_dense_reason": attention["reason"] if args.attn_keep is not None else None,
        "prune_layers": list(args.prune_layers),
        # Unrounded: the same count as the training ledger's forward_gflops_per_sample.
        "dense_gflops": dense.gflops,
        "sparse_gflops": sparse.gflops,
        "ratio": round(sparse.gflops / dense.gflops, 4),
        "speedup_ideal": round(dense.gflops / sparse.gflops, 4),
        "dense_tokens_per_block": [num_tokens] * len(sparse.token_counts),
        "tokens_per_block": sparse.token_counts,
        "sparse_gflops_by_operator": {k: round(v, 4) for k, v in sparse.by_operator.items()},
    }


@exits_on_bad_input
def main(argv: list[str] | None = None) -> int:
    args = one_line_errors(build_parser()).parse_args(argv)
    out = flops_summary(args)
    if args.json:
        print(json.dumps(out))
    elif out["family"] == "cnn":
        print(f"{out['model']}: dense {out['dense_gflops']:.4f} GFLOPs at {out['input_size']} "
              f"({out['note']})")
    else:
        attn = ""
        if out["attn_keep"] is not None:
            attn = f", attn_keep {out['attn_keep']} ({'sparse' if out['attn_active'] else 'dense'})"
        print(f"{out['model']}: dense {out['dense_gflops']:.4f} GFLOPs, keep_rate {out['keep_rate']}"
              f"{' (fuse)' if out['fuse'] else ''}{attn}: {out['sparse_gflops']:.4f} GFLOPs "
              f"({out['ratio']:.3f}x, ideal speed-up {out['speedup_ideal']:.2f}x)")
        print("tokens per block:", out["tokens_per_block"])
        if out["attn_keep"] is not None and out["attn_dense_reason"]:
            where = "partly dense" if out["attn_active"] else "dense"
            print(f"attention level {where}: {out['attn_dense_reason']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
