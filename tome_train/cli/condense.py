"""``tools/condense.py``: condense a training set (DC, DSA, DM, CAFE, IDM), then evaluate it.

Writes to ``--output-dir``: ``synthetic.pt`` (images, labels, recipe), ``synthetic.png``
(one row per class) and ``condense.json`` (top-1 of fresh networks trained on the set
and on random real images at the same images per class, timings, cost, peak memory).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from typing import Any

import torch
from torch.utils.data import TensorDataset

from tome_train.argtypes import DefaultsHelpFormatter, bounded, one_line_errors
from tome_train.validation import writable_output_dir

from ..allocator import tune_cpu_allocator
from ..atomic import atomic_write_text
from ..condense import (
    METHODS,
    EvalProtocol,
    RealPool,
    SyntheticSet,
    dataset_tensors,
    evaluate_set,
    get_method,
)
from ..condense.checkpoint import STATE_FILE, load_state
from ..condense.networks import build_network
from ..data.registry import DATASETS
from ..flops import TrainingFlopsLedger
from .common import exits_on_bad_input

DEFAULT_IMG_SIZE = {"fashion-mnist": 28, "digits": 16}  # the papers' sizes; others 32


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    p.add_argument("--method", default="dm", help=f"one of {sorted(METHODS)}")
    p.add_argument("--dataset", default="fashion-mnist", choices=DATASETS)
    p.add_argument("--data-path", default=None)
    p.add_argument("--img-size", type=bounded(int, "--img-size"), default=None, help="default: 28 for fashion-mnist (the papers' size), 16 for digits, else 32")
    p.add_argument("--in-chans", type=bounded(int, "--in-chans"), default=None, help="default: the data set's own")
    p.add_argument("--ipc", type=int, default=10, help="synthetic images per class")
    p.add_argument("--iterations", type=int, default=None, help="default: the method's published count")
    p.add_argument("--model", default="convnet3", help="matching network (needs forward_features)")
    p.add_argument("--init", default="real", help="real (random real images) or noise")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="override one of the method's hyper-parameters (repeatable), e.g. lr_img=0.5")
    p.add_argument("--synthetic", default=None, help="evaluate this synthetic.pt instead of condensing")
    p.add_argument("--eval-model", default="convnet3",
                   help="comma-separated evaluation networks, e.g. convnet3,resnet18_small,deit_micro_patch4_32")
    p.add_argument("--eval-models", type=int, default=5, help="fresh networks per evaluation")
    p.add_argument("--eval-epochs", type=int, default=300,
                   help="epochs per evaluation network (the papers: 300 for DC, 1000 for DSA-style evaluation)")
    p.add_argument("--eval-lr", type=float, default=0.01)
    p.add_argument("--eval-batch-size", type=int, default=256)
    p.add_argument("--no-random-real", action="store_true", help="skip the random-real baseline")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--resume", action="store_true",
                   help=f"continue the run saved in OUTPUT_DIR/{STATE_FILE} (same arguments; "
                        "--iterations may be larger than before)")
    p.add_argument("--checkpoint-interval", type=float, default=300.0, metavar="SECONDS",
                   help=f"save the condensing state to OUTPUT_DIR/{STATE_FILE} this often "
                        "(and after the last iteration); 0: after every iteration")
    p.add_argument("--no-progress", action="store_true")
    return one_line_errors(p)


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return tuple(value) if isinstance(value, list) else value


def parse_options(items: list[str]) -> dict[str, Any]:
    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
        options[key.strip()] = _value(text)
    return options


def _normalisation(dataset: Any, chans: int) -> tuple[list[float], list[float]]:
    mean, std = getattr(dataset, "mean", None), getattr(dataset, "std", None)
    if mean is None or std is None:
        return [0.0] * chans, [1.0] * chans
    return [float(v) for v in torch.as_tensor(mean).flatten()], [float(v) for v in torch.as_tensor(std).flatten()]


def _check(args: argparse.Namespace) -> None:
    if args.iterations is not None and args.iterations < 1:
        raise ValueError(f"--iterations must be >= 1, got {args.iterations}")
    if args.ipc < 1:
        raise ValueError(f"--ipc must be >= 1, got {args.ipc}")
    for name in ("eval_models", "eval_epochs", "eval_batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.eval_lr > 0:
        raise ValueError(f"--eval-lr must be > 0, got {args.eval_lr}")
    if not args.checkpoint_interval >= 0:
        raise ValueError(f"--checkpoint-interval must be >= 0 seconds, got {args.checkpoint_interval}")
    if not eval_models(args):
        raise ValueError(f"--eval-model: expected comma-separated model names, got {args.eval_model!r}")
    if args.resume and args.synthetic:
        raise ValueError("--resume continues a condensing run; --synthetic evaluates a finished set: "
                         "give one of them")


def eval_models(args: argparse.Namespace) -> list[str]:
    return [m.strip() for m in args.eval_model.split(",") if m.strip()]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ..data import build_dataset, default_in_chans
    from ..engine.runtime import resolve_device

    _check(args)
    args.device = str(resolve_device(args.device))
    out = writable_output_dir(args.output_dir)
    allocator_tuned = tune_cpu_allocator()  # before the data set is loaded: it decides buffer placement
    loaded = SyntheticSet.load(args.synthetic) if args.synthetic else None
    method = get_method(loaded.recipe.get("method", args.method) if loaded else args.method)
    config = method.config_class().replace(parse_options(args.option))
    ipc = int(loaded.recipe.get("ipc", args.ipc)) if loaded else args.ipc
    in_chans = args.in_chans if args.in_chans is not None else default_in_chans(args.dataset)
    img_size = args.img_size if args.img_size is not None else DEFAULT_IMG_SIZE.get(args.dataset, 32)
    train, num_classes = build_dataset(args.dataset, args.data_path, "train", img_size, in_chans, augment=False)
    test, _ = build_dataset(args.dataset, args.data_path, "test", img_size, in_chans, augment=False)
    pool = RealPool.from_dataset(train, num_classes)
    pool.check_ipc(ipc)
    for name in eval_models(args):  # every evaluation network can be built, before hours of condensing
        try:
            build_network(name, num_classes, pool.image_shape, args.seed, need_features=False)
        except ValueError as err:
            raise ValueError(f"--eval-model {name}: {err}") from None
    mean, std = _normalisation(train, in_chans)
    summary: dict[str, Any] = {"method": method.name, "ipc": ipc, "dataset": args.dataset, "img_size": img_size,
                               "model": args.model, "seed": args.seed, "init": args.init,
                               "torch_threads": torch.get_num_threads(), "load_avg_start": os.getloadavg(),
                               "cpu_allocator_tuned": allocator_tuned}
    ledger = TrainingFlopsLedger()
    if loaded is None:
        condenser = method(pool, ipc, config, model=args.model, init=args.init, seed=args.seed,
                           device=args.device)
        state_path = out / STATE_FILE
        if args.resume:
            load_state(condenser, state_path)
        elif state_path.exists():
            print(f"note: starting afresh over the earlier run in {state_path} (--resume continues it)",
                  file=sys.stderr, flush=True)
        run_info = condenser.run(args.iterations, progress=not args.no_progress, checkpoint=state_path,
                                 checkpoint_interval_s=args.checkpoint_interval)
        condense_s = run_info["seconds"]
        synthetic = condenser.synthetic_set(dataset=args.dataset, img_size=img_size, mean=mean, std=std)
        synthetic.save(out / "synthetic.pt")
        synthetic.save_grid(out / "synthetic.png", mean, std)
        summary.update(iterations=run_info["iterations"], resumed_at=run_info["resumed_at"],
                       checkpoint=str(state_path), sec_per_iteration=run_info["sec_per_iteration"],
                       condense_s=condense_s, final_loss=run_info["losses"][-1],
                       losses=run_info["losses"], config=condenser.config.as_dict(),
                       cost=condenser.cost.summary(condenser.gflops_per_sample, condense_s),
                       details=condenser.details())
        config = condenser.config
        condenser.cost.record(ledger, condenser.gflops_per_sample, condense_s)
    else:
        synthetic = loaded
        summary.update(iterations=loaded.recipe.get("iterations"), synthetic=str(args.synthetic),
                       config=loaded.recipe.get("config"))
        synthetic.save_grid(out / "synthetic.png", mean, std)
    test_set = TensorDataset(*dataset_tensors(test))
    images, labels = synthetic.training_tensors()
    real_generator = torch.Generator().manual_seed(args.seed + 1)
    real_images = torch.cat([pool.sample(c, ipc, real_generator) for c in range(num_classes)])
    real_labels = torch.arange(num_classes).repeat_interleave(ipc)
    eval_start = time.perf_counter()
    by_model = {}
    for name in eval_models(args):
        protocol = EvalProtocol(model=name, epochs=args.eval_epochs, lr=args.eval_lr,
                                batch_size=args.eval_batch_size, augment=config.eval_augment)
        result = {"synthetic": evaluate_set(images, labels, test_set, num_classes, protocol, args.eval_models,
                                            args.seed, args.device, label=method.name)}
        if not args.no_random_real:
            result["random_real"] = evaluate_set(real_images, real_labels, test_set, num_classes, protocol,
                                                 args.eval_models, args.seed, args.device, label="random-real")
        by_model[name] = result
    first = next(iter(by_model.values()))
    summary.update(
        eval_model=args.eval_model, eval_models=args.eval_models, eval_epochs=args.eval_epochs,
        eval_augment=config.eval_augment, eval_s=time.perf_counter() - eval_start,
        top1=first["synthetic"]["top1"], top1_mean=first["synthetic"]["top1_mean"],
        top1_std=first["synthetic"]["top1_std"], by_model=by_model,
        eval_train_gflops_per_model=first["synthetic"]["train_gflops_per_model"],
    )
    # One evaluation network trained on the set: with the condense rows, what the set cost end to end.
    trained = first["synthetic"]
    ledger.record("train", samples=trained["train_samples_per_model"],
                  forward_gflops=trained["forward_gflops_per_sample"],
                  wall_s=trained["seconds"] / args.eval_models)
    summary.update(ledger=ledger.state_dict()["rows"], ledger_totals=ledger.totals()["by_kind"])
    if "random_real" in first:
        summary.update(random_real_top1=first["random_real"]["top1"],
                       random_real_top1_mean=first["random_real"]["top1_mean"],
                       random_real_top1_std=first["random_real"]["top1_std"])
    summary.update(peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                   load_avg_end=os.getloadavg())
    atomic_write_text(json.dumps(summary, indent=2) + "\n", out / "condense.json")
    return summary


@exits_on_bad_input
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    summary = run(args)
    line = {k: summary.get(k) for k in ("method", "ipc", "iterations", "top1_mean", "top1_std",
                                        "random_real_top1_mean", "sec_per_iteration", "condense_s", "eval_s")}
    print(json.dumps(line), flush=True)
    return 0
