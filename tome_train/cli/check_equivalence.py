"""Check token pruning and forgetting counts against the authors' code, printing JSON.

``python tools/check_equivalence.py --evit-dir /tmp/evit --forgetting-dir /tmp/forget``

``--evit-dir``: an unpacked snapshot of github.com/youweiliang/evit (``evit.py``,
``helpers.py``); ``--forgetting-dir``: one of github.com/mtoneva/example_forgetting
(``order_examples_by_forgetting.py``). A part whose directory is not given is skipped
(noted in the JSON). Runs on the CPU in seconds; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from tome_train.argtypes import DefaultsHelpFormatter, fraction, one_line_errors
from tome_train.equivalence import (
    compare_forgetting,
    compare_pruning,
    compare_rounding,
    compare_schedule,
    load_evit,
    load_toneva,
)
from tome_train.equivalence.evit import SUPPORTED_MODELS
from tome_train.equivalence.reference import EVIT_FILES, TONEVA_FILE, reference_dir

from .common import exits_on_bad_input


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="check_equivalence.py", formatter_class=DefaultsHelpFormatter,
        description="Compare our token pruning with EViT's reference model (same weights, same "
                    "inputs) and our forgetting counts with Toneva et al.'s reference statistics "
                    "(same correctness streams); prints one JSON document.")
    p.add_argument("--evit-dir", help="unpacked snapshot of youweiliang/evit (holds evit.py)")
    p.add_argument("--forgetting-dir",
                   help="unpacked snapshot of mtoneva/example_forgetting (holds order_examples_by_forgetting.py)")
    p.add_argument("--model", default="deit_tiny_patch16_224",
                   help="timm DeiT whose random weights both ViTs get (deit_{tiny,small,base}_patch16_224)")
    p.add_argument("--keep-rates", default="0.7,0.5", help="comma-separated keep rates to compare")
    p.add_argument("--batch-size", type=int, default=4, help="images per forward")
    p.add_argument("--samples", type=int, default=5000, help="forgetting: samples with a correctness stream")
    p.add_argument("--epochs", type=int, default=30, help="forgetting: epochs of presentations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--indent", type=int, default=None, help="indent the JSON (default: one line)")
    return p


def _keep_rates(text: str) -> tuple[float, ...]:
    parse = fraction("--keep-rates")
    try:
        rates = tuple(parse(v) for v in text.split(",") if v.strip())
    except argparse.ArgumentTypeError as err:
        raise ValueError(str(err)) from None
    if not rates:
        raise ValueError(f"--keep-rates must name at least one keep rate, got {text!r}")
    return rates


def _positive(value: int, name: str) -> int:
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return value


def _evit_part(args: argparse.Namespace, keep_rates: tuple[float, ...]) -> dict[str, Any]:
    start = time.perf_counter()
    evit, helpers = load_evit(args.evit_dir)
    pruning = compare_pruning(evit, args.model, keep_rates, args.batch_size, args.seed)
    as_evit = [c for c in pruning["cases"] if c["evit_fusion_weights"] in (None, "normalised")]
    raw_fuse = [c for c in pruning["cases"] if c["evit_fusion_weights"] == "evit"]
    return {
        "reference": args.evit_dir,
        "kept_sets_match": all(all(c["kept_sets_match"]) for c in as_evit),
        "logits_allclose": all(c["logits_allclose"] for c in as_evit),
        "max_abs_logit_diff": max(c["max_abs_logit_diff"] for c in as_evit),
        # EViT orders the kept tokens by descending CLS attention, we keep position order.
        "kept_order_matches": all(all(c["kept_order_match"]) for c in pruning["cases"]),
        "fuse_with_evit_raw_weights": {
            "kept_sets_match": all(all(c["kept_sets_match"]) for c in raw_fuse),
            "max_abs_logit_diff": max(c["max_abs_logit_diff"] for c in raw_fuse),
        },
        "notes": [
            "kept_sets_match, logits_allclose and max_abs_logit_diff cover fuse off and fuse with "
            "EViT's fusion weights normalised over the pruned tokens as ours are (its CLS scores "
            "scaled per sample, which leaves its top-k unchanged)",
            "EViT fuses with the raw CLS attention of the pruned tokens: its fused token is smaller "
            "by their attention mass, so later blocks attend differently (fuse_with_evit_raw_weights)",
            "EViT orders the kept tokens by descending CLS attention, ours keep position order: "
            "kept positions are traced back to the input patches and compared as sets",
        ],
        "pruning": pruning,
        "rounding": compare_rounding(tuple(sorted({i / 20 for i in range(1, 20)} | set(keep_rates)))),
        "schedule": compare_schedule(helpers, base_keep_rate=keep_rates[0]),
        "seconds": round(time.perf_counter() - start, 2),
    }


def _forgetting_part(args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    result = compare_forgetting(load_toneva(args.forgetting_dir), _positive(args.samples, "--samples"),
                                _positive(args.epochs, "--epochs"), seed=args.seed)
    result = {"reference": args.forgetting_dir, **result, "notes": [
        "event counts: our total_forgetting_events against the reference's forgetting events "
        "(right-to-wrong transitions between consecutive presentations)",
        "never learned: the reference counts the number of presentations (more than any learned "
        "sample can reach), our forgetting score +inf; the ranking is the same",
        "learned but wrong at the last presentation: a finite count in both; the selector's "
        "window_scores ranks it +inf (kept)",
        "never presented: absent from the reference's statistics, +inf in ours",
    ]}
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


@exits_on_bad_input
def main(argv: list[str] | None = None) -> int:
    args = one_line_errors(build_parser()).parse_args(argv)
    if args.evit_dir is None and args.forgetting_dir is None:
        raise ValueError("give --evit-dir and/or --forgetting-dir (unpacked snapshots of "
                         "youweiliang/evit and mtoneva/example_forgetting)")
    keep_rates = _keep_rates(args.keep_rates)
    _positive(args.batch_size, "--batch-size")
    if args.model not in SUPPORTED_MODELS:
        raise ValueError(f"--model must be one of {', '.join(SUPPORTED_MODELS)}, got {args.model!r}")
    # Bad paths fail here, before either part spends time.
    if args.evit_dir is not None:
        reference_dir(args.evit_dir, EVIT_FILES, "--evit-dir")
    if args.forgetting_dir is not None:
        reference_dir(args.forgetting_dir, (TONEVA_FILE,), "--forgetting-dir")
    out: dict[str, Any] = {}
    out["evit"] = (_evit_part(args, keep_rates) if args.evit_dir is not None
                   else {"skipped": "no --evit-dir given"})
    out["forgetting"] = (_forgetting_part(args) if args.forgetting_dir is not None
                         else {"skipped": "no --forgetting-dir given"})
    print(json.dumps(out, indent=args.indent))
    return 0
