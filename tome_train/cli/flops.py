"""``tools/flops.py``: dense vs token-pruned forward GFLOPs of a timm ViT, as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from .. import patch
from ..flops import count_flops
from .common import create_model, fraction, int_list


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="deit_small_patch16_224")
    p.add_argument("--img-size", type=int, default=None, help="input size (default: the model's)")
    p.add_argument("--keep-rate", type=fraction("--keep-rate"), default=0.7)
    p.add_argument("--prune-layers", type=int_list, default=patch.DEFAULT_PRUNE_LAYERS)
    p.add_argument("--fuse", action="store_true", help="fuse pruned tokens into one (EViT)")
    p.add_argument("--attn-keep", type=fraction("--attn-keep"), default=None,
                   help="attention level: fraction of key blocks kept per query block")
    p.add_argument("--attn-impl", default="block_sparse",
                   help="kernel whose work is counted: block_sparse (default) or auto "
                        "(what this machine's dispatcher would run: dense where sparsity won't pay)")
    p.add_argument("--json", action="store_true", help="print one JSON object only")
    return p


def flops_summary(args: argparse.Namespace) -> dict:
    model = create_model(args.model, args.img_size)
    dense = count_flops(model)
    patch.timm(model, keep_rate=args.keep_rate, prune_layers=args.prune_layers, fuse=args.fuse,
               attn_keep=args.attn_keep, attn_impl=args.attn_impl)
    sparse = count_flops(model)
    num_tokens = sparse.token_counts[0] if sparse.token_counts else None
    return {
        "model": args.model,
        "keep_rate": args.keep_rate,
        "fuse": args.fuse,
        "attn_keep": args.attn_keep,
        "attn_impl": args.attn_impl if args.attn_keep is not None else None,
        "prune_layers": list(args.prune_layers),
        "dense_gflops": round(dense.gflops, 4),
        "sparse_gflops": round(sparse.gflops, 4),
        "ratio": round(sparse.gflops / dense.gflops, 4),
        "speedup_ideal": round(dense.gflops / sparse.gflops, 4),
        "dense_tokens_per_block": [num_tokens] * len(sparse.token_counts),
        "tokens_per_block": sparse.token_counts,
        "sparse_gflops_by_operator": {k: round(v, 4) for k, v in sparse.by_operator.items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = flops_summary(args)
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['model']}: dense {out['dense_gflops']:.3f} GFLOPs, keep_rate {out['keep_rate']}"
              f"{' (fuse)' if out['fuse'] else ''}: {out['sparse_gflops']:.3f} GFLOPs "
              f"({out['ratio']:.3f}x, ideal speed-up {out['speedup_ideal']:.2f}x)")
        print("tokens per block:", out["tokens_per_block"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
