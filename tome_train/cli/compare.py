"""``tools/compare.py``: hierarchical sparsity against dense training and data pruning at equal cost.

Runs, on one data set and model, for every seed:

* ``dense``            all data, all tokens;
* ``static-random``    one fixed random ``--data-keep`` subset (alias ``random``);
* ``dynamic-random``   a fresh random ``--data-keep`` subset every epoch;
* ``forgetting-swap``  the Tri-Level E-ViT forgetting selector at ``--data-keep`` (alias ``selector``);
* ``infobatch``        InfoBatch (loss-based dynamic pruning with loss rescaling);
* ``seta``             SeTa (random pruning, loss groups, sliding window);
* ``tokens``           token pruning at ``--keep-rate`` alone;
* ``all``              token pruning + the ``--all-policy`` example policy (+ ``--attn-keep``).

Equal budget means equal backward samples: with ``--match-budget infobatch`` the policies
that take ``--data-keep`` run, per seed, at the backward fraction that InfoBatch reached.
Prints a table (top-1 mean ± std; paired differences to dense and to dynamic random, mean
± 95% interval over seeds), writes ``compare.json`` and ``compare.png``. Finished runs
(their ``summary.json``) are reused while their training arguments match, unless ``--rerun``.
``--jobs N`` runs N trainings at once in separate processes, one thread each; the runs that
wait for the matched budget start as soon as their seed's InfoBatch run ends, and the others
(dense, tokens, the policies without ``--data-keep``) need not wait at all.

The keep-rate schedule follows the run (``--schedules scaled``, the default): all tokens
for EViT's 10 of 300 epochs, then cosine decay over its 100, scaled to ``--epochs``
(:func:`tome_train.schedule.scaled_schedule`) unless ``--train-args`` sets them.
``--schedules fixed`` keeps ``tools/train.py``'s epoch counts, which do not depend on
``--epochs``. The LR warm-up is ``tools/train.py``'s 5 epochs in both: a ViT trained from
scratch on a small set needs that many steps (the README has the measurement).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from tome_train.argtypes import fraction, one_line_errors
from tome_train.validation import writable_output_dir

from ..atomic import atomic_write_text
from ..data.registry import DATASETS
from ..engine.runtime import DEVICES
from ..schedule import scaled_schedule
from .common import exits_on_bad_input, flags_taken
from .compare_report import aggregate, backward_fraction, format_table, plot
from .compare_runs import run_all

VARIANTS = ("dense", "static-random", "dynamic-random", "forgetting-swap", "infobatch", "seta", "tokens", "all")
ALIASES = {"random": "static-random", "selector": "forgetting-swap"}
KEEP_POLICIES = ("static-random", "dynamic-random", "forgetting-swap")
MATCHABLE = ("infobatch", "seta")

# Named settings for --preset; flags given on the command line win.
PRESETS = {
    # The full CIFAR-10 comparison on one GPU (bf16 autocast is train.py's default on CUDA):
    # 50,000 training images, DeiT-Tiny's width at 32 px, the full test set.
    "cifar10-gpu": {
        "dataset": "cifar10", "data_path": "../shared/data/cifar10-jpeg", "model": "deit_tiny_patch4_32",
        "epochs": 15, "seeds": "0,1,2", "device": "cuda", "jobs": 1, "match_budget": "infobatch",
        "variants": ",".join(VARIANTS), "output_dir": "runs/compare-cifar10-gpu",
        "train_args": "--batch-size 256 --num-workers 4",
    },
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=Path(sys.argv[0]).name, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="named defaults (cifar10-gpu: the full CIFAR-10 comparison on one GPU); flags given win")
    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data-path", default=None)
    p.add_argument("--model", default=None, help="default: the data set's default model")
    p.add_argument("--epochs", type=int, default=None, help="default: 8 for digits, else 30")
    p.add_argument("--seeds", default="0", help="comma-separated, e.g. 0,1,2")
    p.add_argument("--keep-rate", type=fraction("--keep-rate"), default=0.7)
    p.add_argument("--data-keep", type=fraction("--data-keep"), default=0.8,
                   help="fraction for the static-random, dynamic-random and forgetting-swap policies")
    p.add_argument("--attn-keep", type=fraction("--attn-keep"), default=None)
    p.add_argument("--all-policy", default="forgetting-swap", choices=VARIANTS[1:6],
                   help="the example policy of the 'all' variant")
    p.add_argument("--match-budget", default=None, choices=MATCHABLE,
                   help="run the --data-keep policies at the backward fraction this policy reached")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"subset of {','.join(VARIANTS)} (aliases: random, selector)")
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--jobs", type=int, default=1, help="trainings run at once, one process and thread each")
    p.add_argument("--output-dir", default="runs/compare")
    p.add_argument("--train-args", default="", help="extra tools/train.py arguments, quoted")
    p.add_argument("--variant-args", action="append", default=[], metavar="VARIANT=ARGS",
                   help="extra tools/train.py arguments for one variant, after --train-args, e.g. "
                        "'infobatch=--prune-ratio 0.7' (repeatable)")
    p.add_argument("--schedules", default="scaled", choices=("scaled", "fixed"),
                   help="scaled: keep-rate warm-up and decay at EViT's fractions of --epochs; "
                        "fixed: tools/train.py's epoch counts")
    p.add_argument("--rerun", action="store_true", help="ignore finished runs in --output-dir")
    return p


def policy_args(policy: str, keep: float) -> list[str]:
    if policy in KEEP_POLICIES:
        return ["--data-policy", policy, "--data-keep", repr(keep)]
    return ["--data-policy", policy]


def variant_args(variant: str, args: argparse.Namespace, keep: float | None = None) -> list[str]:
    """tools/train.py arguments of ``variant``; ``keep`` overrides ``--data-keep`` (budget matching)."""
    keep = args.data_keep if keep is None else keep
    variant = ALIASES.get(variant, variant)
    token = ["--keep-rate", str(args.keep_rate)]
    if variant == "dense":
        return ["--keep-rate", "1.0", "--data-policy", "full"]
    if variant in VARIANTS[1:6]:
        return ["--keep-rate", "1.0", *policy_args(variant, keep)]
    if variant == "tokens":
        return [*token, "--data-policy", "full"]
    if variant == "all":
        attn = ["--attn-keep", str(args.attn_keep)] if args.attn_keep is not None else []
        return [*token, *policy_args(args.all_policy, keep), *attn]
    raise ValueError(f"--variants: unknown variant {variant!r} (allowed: {', '.join(VARIANTS)})")


def train_argv(variant: str, seed: int, args: argparse.Namespace, out: Path, keep: float | None) -> list[str]:
    argv = ["--dataset", args.dataset, "--seed", str(seed), "--device", args.device,
            "--output-dir", str(out / variant / f"seed{seed}"), "--no-progress",
            *variant_args(variant, args, keep)]
    for flag, value in (("--data-path", args.data_path), ("--model", args.model), ("--epochs", args.epochs)):
        if value is not None:
            argv += [flag, str(value)]
    extra = shlex.split(args.train_args) + shlex.split(args.variant_extra.get(variant, ""))
    return argv + schedule_args(variant, args, extra) + extra


def schedule_args(variant: str, args: argparse.Namespace, extra: list[str]) -> list[str]:
    """The scaled keep-rate schedule of a token-pruning ``variant`` (none with ``--schedules
    fixed``); a flag given in ``--train-args`` wins."""
    if args.schedules == "fixed" or ALIASES.get(variant, variant) not in ("tokens", "all") or args.keep_rate >= 1.0:
        return []
    schedule = scaled_schedule(args.epochs)
    names = ["keep_rate_warmup", "keep_rate_decay"]
    given = {a.split("=", 1)[0] for a in extra if a.startswith("--")}
    out: list[str] = []
    for name in names:
        flag = "--" + name.replace("_", "-")
        if flag not in given:
            out += [flag, f"{schedule[name]:g}"]
    return out


# tools/train.py flags that compare.py sets per run: given again in --train-args they would win
# silently while compare.json reports compare's own values.
OWN_TRAIN_FLAGS = frozenset({"--seed", "--output-dir", "--resume", "--epochs", "--dataset", "--data-path",
                             "--model", "--device"})


def _parse_lists(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[list[int], list[str]]:
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds: comma-separated ints, got {args.seeds!r}")
    if not seeds or len(set(seeds)) != len(seeds):
        parser.error(f"--seeds: at least one seed, each once; got {args.seeds!r}")
    variants = [ALIASES.get(v.strip(), v.strip()) for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if not variants or bad or len(set(variants)) != len(variants):
        parser.error(f"--variants: distinct names of {', '.join(VARIANTS)}; got {args.variants!r}"
                     + (f" (unknown: {', '.join(bad)})" if bad else ""))
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    args.variant_extra = {}
    for item in args.variant_args:
        name, sep, extra = item.partition("=")
        name = ALIASES.get(name.strip(), name.strip())
        if not sep or name not in VARIANTS or name in args.variant_extra:
            parser.error(f"--variant-args: VARIANT=ARGS with VARIANT one of {', '.join(VARIANTS)}, "
                         f"each at most once; got {item!r}")
        args.variant_extra[name] = extra
    for option, text in [("--train-args", args.train_args), *(("--variant-args", t) for t in args.variant_extra.values())]:
        taken = flags_taken(text, OWN_TRAIN_FLAGS)
        if taken:
            parser.error(f"{option}: {', '.join(taken)} is set by compare.py itself (use its own option)")
    if args.match_budget and args.match_budget not in variants:
        variants.insert(0, args.match_budget)
    return seeds, variants


def parse_args(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The parser and the arguments, a ``--preset``'s values filling what ``argv`` leaves out."""
    parser = one_line_errors(build_parser())
    args = parser.parse_args(argv)
    if args.preset is not None:
        parser.set_defaults(**PRESETS[args.preset])
        args = parser.parse_args(argv)
    return parser, args


@exits_on_bad_input
def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(argv)
    seeds, variants = _parse_lists(parser, args)
    if args.epochs is None:
        args.epochs = 8 if args.dataset == "digits" else 30
    out = writable_output_dir(args.output_dir)
    start = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {}
    keep: dict[int, float] = {}
    uses_keep = set(KEEP_POLICIES) | ({"all"} if args.all_policy in KEEP_POLICIES else set())
    # With --match-budget the matched policy runs first; the variants that take --data-keep
    # wait for their seed's achieved backward fraction, the others need not wait.
    matched = [args.match_budget] if args.match_budget else []
    waiting = [v for v in variants if v in uses_keep and v not in matched] if matched else []
    free = [(v, s) for v in variants if v not in matched and v not in waiting for s in seeds]

    def after_matched(i: int, run: dict[str, Any]) -> list[list[str]]:
        keep[seeds[i]] = backward_fraction(run)
        return [train_argv(v, seeds[i], args, out, keep[seeds[i]]) for v in waiting]

    head, middle, tail = run_all([train_argv(v, s, args, out, None) for v in matched for s in seeds],
                                 [train_argv(v, s, args, out, None) for v, s in free],
                                 after_matched, args)
    for v in matched:
        results[v] = head
    for (variant, _), run in zip(free, middle):
        results.setdefault(variant, []).append(run)
    for j, variant in enumerate(waiting):
        results[variant] = [tail[i][j] for i in range(len(seeds))]
    results = {v: results[v] for v in variants}
    keep = {s: keep[s] for s in seeds if s in keep}  # seed order, whichever run ended first
    runs = [r for rs in results.values() for r in rs]
    table = aggregate(results)
    report = {
        "dataset": args.dataset, "model": args.model or runs[0].get("args", {}).get("model"),
        "epochs": args.epochs, "seeds": seeds, "keep_rate": args.keep_rate, "data_keep": args.data_keep,
        "matched_data_keep": keep or None, "match_budget": args.match_budget, "all_policy": args.all_policy,
        "attn_keep": args.attn_keep, "variant_args": args.variant_extra,
        "num_test": runs[0].get("num_test"), "variants": table,
        "total_wall_s": time.perf_counter() - start, "jobs": args.jobs,
        "schedules": {"kind": args.schedules, **(scaled_schedule(args.epochs) if args.schedules == "scaled" else {})},
    }
    atomic_write_text(json.dumps(report, indent=2), out / "compare.json")
    title = (f"{args.dataset}, {report['model']}, {args.epochs} ep, seeds {args.seeds}; "
             f"keep {args.keep_rate}, data {args.match_budget or args.data_keep}")
    plot(table, out / "compare.png", title)
    print(format_table(table))
    print(f"[compare] {len(seeds)} seed(s), {report['num_test']} test images; differences are paired over "
          f"seeds (± 95% interval); wrote {out / 'compare.json'} and {out / 'compare.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
