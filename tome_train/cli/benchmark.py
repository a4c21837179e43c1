"""``tools/benchmark.py``: measured speed of dense vs token-pruned ViTs, as JSON.

Prints the measured speed-up, the FLOPs speed-up and their quotient ``efficiency``
(1.0 = time exactly proportional to FLOPs). Dense and patched models share weights
and are timed interleaved in one process.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys

import torch

from tome_train.argtypes import bounded, fraction, int_list, one_line_errors

from .. import patch
from ..attention import IMPLS
from ..benchmark import benchmark_models, clone_model
from ..engine.runtime import resolve_device
from ..flops import count_flops, default_input_size
from ..models import create_model
from .common import exits_on_bad_input


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="deit_small_patch16_224")
    p.add_argument("--img-size", type=bounded(int, "--img-size"), default=None)
    p.add_argument("--keep-rate", type=fraction("--keep-rate"), default=0.7)
    p.add_argument("--prune-layers", type=int_list, default=patch.DEFAULT_PRUNE_LAYERS)
    p.add_argument("--fuse", action="store_true")
    p.add_argument("--mode", choices=("train", "infer"), default="train")
    p.add_argument("--batch-size", type=bounded(int, "--batch-size"), default=32)
    p.add_argument("--warmup", type=bounded(int, "--warmup", strictly_positive=False), default=2, help="untimed steps per model")
    p.add_argument("--iters", type=bounded(int, "--iters"), default=6,
                   help="timed steps per model (interleaved); with --tracker: timed training steps "
                        "of --model; with --attn-only: at least 7")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    p.add_argument("--json", action="store_true", help="print one JSON object only")
    p.add_argument("--tracker", action="store_true",
                   help="time the example-level bookkeeping (forgetting tracker) against a train step of --model")
    p.add_argument("--num-samples", type=bounded(int, "--num-samples"), default=50000, help="training-set size for --tracker")
    g = p.add_argument_group("coreset selection")
    g.add_argument("--coreset", action="store_true",
                   help="time tome_train.coreset.select (herding, k-center) choosing --budget of "
                        "--num-samples x --dim random features; each run in a fresh process")
    g.add_argument("--coreset-methods", default="herding,kcenter",
                   help="comma-separated, of tome_train.coreset.bench.CASES")
    g.add_argument("--dim", type=bounded(int, "--dim"), default=512, help="feature dimension for --coreset")
    g.add_argument("--budget", type=bounded(int, "--budget"), default=5000, help="coreset size for --coreset")
    g.add_argument("--repeats", type=bounded(int, "--repeats"), default=3, help="runs per method for --coreset")
    g = p.add_argument_group("attention level")
    g.add_argument("--attn-keep", type=fraction("--attn-keep"), default=None,
                   help="fraction of key blocks kept per query block (attention level)")
    g.add_argument("--attn-impl", choices=IMPLS, default="auto",
                   help="sparse kernel (default auto: the dispatcher's choice, as in training)")
    g.add_argument("--baseline", choices=("dense", "tokens"), default="dense",
                   help="model compared against: dense, or the same token pruning without --attn-keep")
    g.add_argument("--attn-only", action="store_true",
                   help="time dense SDPA vs the sparse kernel alone (fwd+bwd) on random q, k, v")
    g.add_argument("--tokens", type=bounded(int, "--tokens"), default=577, help="sequence length for --attn-only")
    g.add_argument("--heads", type=bounded(int, "--heads"), default=6)
    g.add_argument("--head-dim", type=bounded(int, "--head-dim"), default=64)
    g.add_argument("--block-size", type=bounded(int, "--block-size"), default=None)
    return p


def run_attention(args: argparse.Namespace) -> dict:
    from ..attention.bench import benchmark_attention

    batch = args.batch_size if args.batch_size_given else 16
    return benchmark_attention(
        args.tokens, args.attn_keep if args.attn_keep is not None else 0.3, batch=batch,
        heads=args.heads, head_dim=args.head_dim, impl=args.attn_impl, warmup=args.warmup,
        iters=max(args.iters, 7), block_size=args.block_size, device=args.device,
    )


def run_tracker(args: argparse.Namespace) -> dict:
    """Bookkeeping cost per batch, and per epoch amortised, as a % of one training step."""
    from ..selection.bench import tracker_overhead

    out = tracker_overhead(
        num_samples=args.num_samples, batch=args.batch_size, device=args.device,
        reference_model=args.model, reference_img_size=args.img_size, reference_iters=args.iters,
    )
    batches = max(1, int(0.8 * args.num_samples) // args.batch_size)
    per_step_ms = out["update_us"] / 1e3 + out["end_epoch_ms"] / batches + out["sampler_epoch_ms"] / batches
    out["bookkeeping_per_step_ms"] = round(per_step_ms, 4)
    out["overhead_pct_with_epoch_end"] = round(100 * per_step_ms / out["step_ms"], 4)
    return out


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    dense = create_model(args.model, args.img_size, arg="--model").to(device)
    if not patch.patchable(dense):
        raise ValueError(f"--model: {args.model} is a {type(dense).__name__}, not a ViT: there is no "
                         "token-pruned model to time against it (--tracker times a CNN's train step)")
    input_size = default_input_size(dense)
    sparse = patch.timm(
        clone_model(dense), keep_rate=args.keep_rate, prune_layers=args.prune_layers, fuse=args.fuse,
        attn_keep=args.attn_keep, attn_impl=args.attn_impl,
    )
    if args.baseline == "tokens":
        dense = patch.timm(dense, keep_rate=args.keep_rate, prune_layers=args.prune_layers, fuse=args.fuse)
    dense_gflops = count_flops(dense, input_size).gflops
    sparse_gflops = count_flops(sparse, input_size).gflops
    result = benchmark_models(
        dense, sparse, args.mode, args.batch_size, input_size, dense.num_classes, device,
        warmup=args.warmup, iters=args.iters, amp=args.amp,
    )
    flops_speedup = dense_gflops / sparse_gflops
    if args.baseline == "tokens":
        # The baseline is token pruning alone, not the dense model: name it so.
        result = {key.replace("dense_", "baseline_", 1): value for key, value in result.items()}
        result["step_s_all"] = {("baseline" if k == "dense" else k): v
                                for k, v in result["step_s_all"].items()}
    baseline = "dense" if args.baseline == "dense" else "baseline"
    return {
        "model": args.model,
        "mode": args.mode,
        "batch_size": args.batch_size,
        "keep_rate": args.keep_rate,
        "fuse": args.fuse,
        "attn_keep": args.attn_keep,
        "baseline": args.baseline,
        "input_size": list(input_size),
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        f"{baseline}_gflops": round(dense_gflops, 4),
        "sparse_gflops": round(sparse_gflops, 4),
        "flops_speedup": round(flops_speedup, 4),
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()},
        "efficiency": round(result["speedup"] / flops_speedup, 4),
    }


@exits_on_bad_input
def main(argv: list[str] | None = None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = one_line_errors(build_parser()).parse_args(argv)
    args.batch_size_given = any(a.startswith("--batch-size") for a in argv)
    args.device = str(resolve_device(args.device))
    if args.attn_only:
        out = run_attention(args)
        print(json.dumps(out) if args.json else
              f"N={out['tokens']} keep {out['attn_keep']}: dense {out['dense_ms']:.1f} ms, "
              f"{out['impl']} {out['sparse_ms']:.1f} ms, speed-up {out['speedup']:.2f}x, "
              f"max err {out['max_err']:.1e}")
        return 0
    if args.coreset:
        from ..coreset.bench import coreset_benchmark

        methods = tuple(m.strip() for m in args.coreset_methods.split(",") if m.strip())
        out = coreset_benchmark(methods, args.num_samples, args.dim, args.budget, repeats=args.repeats)
        print(json.dumps(out) if args.json else "; ".join(
            f"{m}: {r['best_s']:.2f} s best of {args.repeats}, extra peak {r['extra_peak_mb']:.0f} MB"
            for m, r in out["methods"].items()))
        return 0
    if args.tracker:
        out = run_tracker(args)
        print(json.dumps(out) if args.json else
              f"bookkeeping {out['bookkeeping_per_step_ms']:.3f} ms per step = "
              f"{out['overhead_pct_with_epoch_end']:.4f}% of a {out['step_ms']:.0f} ms {args.model} train step")
        return 0
    out = run(args)
    if args.json:
        print(json.dumps(out))
    else:
        base = "dense" if args.baseline == "dense" else "baseline"
        print(
            f"{out['model']} {out['mode']} batch {out['batch_size']}: {args.baseline} "
            f"{out[base + '_images_per_s']:.2f} img/s, "
            f"keep {out['keep_rate']}: {out['sparse_images_per_s']:.2f} img/s; speed-up {out['speedup']:.2f}x "
            f"vs FLOPs {out['flops_speedup']:.2f}x, efficiency {out['efficiency']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
