"""Command-line arguments of ``tools/train.py`` and their data-set dependent defaults.

Defaults that depend on the data set (model, batch size, learning rate, channels)
are ``None`` in the parser and resolved by :func:`resolve_defaults`, so an explicit
value always wins and ``--help`` stays honest.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from tome_train.argtypes import DefaultsHelpFormatter, bounded, fraction, number_in, one_line_errors
from tome_train.attention import IMPLS
from tome_train.data.registry import DATASETS, default_in_chans
from tome_train.engine.optim import OPTIMIZERS
from tome_train.engine.runtime import DEVICES
from tome_train.job.data_args import (
    SMALL_IMAGE_FOLDER,
    add_augmentation_arguments,
    check_augmentation_args,
    imagefolder_defaults,
)
from tome_train.selection.policies import POLICY_NAMES

DEFAULT_MODELS = {
    "digits": "deit_micro_patch2_16",
    "fashion-mnist": "deit_tiny_patch4_32",
    "cifar10": "deit_tiny_patch4_32",
    "imagefolder": "deit_small_patch16_224",
    SMALL_IMAGE_FOLDER: "deit_tiny_patch4_32",  # folders of images <= 64 px: as the small built-in sets
}
# Digits is tiny (1,437 training images): small batches give enough steps for a
# 4-epoch run inside the 5-epoch warm-up to learn; larger sets use DeiT's recipe.
DEFAULT_BATCH = {"digits": 32}
DEFAULT_LR = {"digits": 4e-3}
# SGD: the ConvNet protocol of the dataset-condensation papers (lr 0.01, momentum 0.9, wd 5e-4).
DEFAULT_SGD_LR = 0.01
DEFAULT_WEIGHT_DECAY = {"adamw": 0.05, "sgd": 5e-4}
# Peak LR per 512 images of global batch, scaled linearly as DeiT does: DeiT's 5e-4 for
# large images; 8x that (1e-3 at batch 128) for the small-image sets, whose small models
# train from scratch on small data (Fashion-MNIST, 4,000 images, 5 epochs, seed 0:
# 44.0% top-1 at 1.25e-4, 59.8% at 1e-3, 53.6% at 2e-3).
LR_PER_512 = {"fashion-mnist": 4e-3, "cifar10": 4e-3, SMALL_IMAGE_FOLDER: 4e-3}


def _layers(text: str) -> tuple[int, ...]:
    try:
        layers = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--prune-layers: comma-separated ints, got {text!r}") from None
    if not layers or any(layer < 0 for layer in layers):
        raise argparse.ArgumentTypeError(f"--prune-layers: non-negative ints, got {text!r}")
    return layers


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(  # prog: the script's name (train.py, tome-train)
        description="Train a timm ViT with token-, attention- and example-level pruning.",
        formatter_class=DefaultsHelpFormatter,
    )
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default="digits")
    g.add_argument("--data-path", default=None, help="folder/file of the data set (not digits)")
    g.add_argument("--img-size", type=bounded(int, "--img-size"), default=None,
                   help="input size (default: the model's; with an image folder and the default "
                        "model, the images' size rounded up to whole patches, 32 to 224)")
    g.add_argument("--in-chans", type=bounded(int, "--in-chans"), default=None,
                   help="input channels (default: 1 for grey-scale sets and folders of grey "
                        "images, else 3)")
    g.add_argument("--limit-train", type=bounded(int, "--limit-train"), default=None,
                   help="use a fixed random subset of N training examples (same for every seed)")
    g.add_argument("--limit-test", type=bounded(int, "--limit-test"), default=None,
                   help="evaluate on a fixed random subset of N test examples")
    g.add_argument("--subset", default=None, metavar="PATH",
                   help="train on these training-set indices only (torch.save'd LongTensor or dict "
                        "with 'indices', .npy or .txt); the example-level options then apply within "
                        "the subset, and hooks see positions in it")
    g.add_argument("--num-workers", type=bounded(int, "--num-workers", strictly_positive=False), default=0)
    add_augmentation_arguments(p)
    g = p.add_argument_group("model and optimisation")
    g.add_argument("--model", default=None, help="timm model name (default depends on --dataset; for an image "
                   "folder on its images' size: deit_tiny_patch4_32 up to 64 px, else deit_small_patch16_224)")
    g.add_argument("--epochs", type=bounded(int, "--epochs"), default=30)
    g.add_argument("--batch-size", type=bounded(int, "--batch-size"), default=None,
                   help="per-process batch size (default 32 for digits, else 128)")
    g.add_argument("--eval-every", type=bounded(int, "--eval-every"), default=1,
                   help="test every N epochs and after the last one")
    g.add_argument("--eval-batch-size", type=bounded(int, "--eval-batch-size"), default=256)
    g.add_argument("--lr", type=bounded(float, "--lr"), default=None,
                   help="peak LR (default adamw: 4e-3 for digits; 4e-3 * global batch / 512 for "
                        "fashion-mnist, cifar10 and folders of small images; else 5e-4 * global batch / 512; sgd: 0.01)")
    g.add_argument("--min-lr", type=bounded(float, "--min-lr", strictly_positive=False), default=1e-5)
    g.add_argument("--opt", choices=sorted(OPTIMIZERS), default="adamw",
                   help="adamw (DeiT) or sgd (classical momentum, the condensation papers' ConvNet protocol)")
    g.add_argument("--momentum", type=bounded(float, "--momentum", strictly_positive=False), default=None,
                   help="SGD momentum (default 0.9; --opt sgd only)")
    g.add_argument("--weight-decay", type=bounded(float, "--weight-decay", strictly_positive=False), default=None,
                   help="default 0.05 for adamw, 5e-4 for sgd")
    g.add_argument("--warmup-epochs", type=bounded(float, "--warmup-epochs", strictly_positive=False), default=5.0,
                   help="per-step linear LR warm-up; a resume that extends --epochs continues "
                        "exactly only while the shorter run had not left warm-up")
    g.add_argument("--drop-path", type=bounded(float, "--drop-path", strictly_positive=False), default=0.0)
    g.add_argument("--clip-grad", type=bounded(float, "--clip-grad"), default=None)
    g.add_argument("--smoothing", type=bounded(float, "--smoothing", strictly_positive=False), default=0.1)
    g.add_argument("--mixup", type=bounded(float, "--mixup", strictly_positive=False), default=0.0, help="mixup alpha")
    g.add_argument("--cutmix", type=bounded(float, "--cutmix", strictly_positive=False), default=0.0, help="cutmix alpha")
    g.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    g = p.add_argument_group("token and attention level")
    g.add_argument("--keep-rate", type=fraction("--keep-rate"), default=1.0,
                   help="token keep rate at each pruning layer (1.0: model not patched)")
    g.add_argument("--keep-rate-warmup", type=bounded(float, "--keep-rate-warmup", strictly_positive=False), default=0.0,
                   help="epochs at keep rate 1.0 before decaying")
    g.add_argument("--keep-rate-decay", type=bounded(float, "--keep-rate-decay", strictly_positive=False), default=0.0,
                   help="epochs of cosine decay from 1.0 to --keep-rate, stepped per iteration")
    g.add_argument("--prune-layers", type=_layers, default=(3, 6, 9), help="e.g. 3,6,9")
    g.add_argument("--fuse", action="store_true", help="fuse pruned tokens into one (EViT)")
    g.add_argument("--attn-keep", type=fraction("--attn-keep"), default=None,
                   help="attention-level keep fraction (if the patch supports it)")
    g.add_argument("--attn-impl", choices=IMPLS, default="auto",
                   help="attention kernel for --attn-keep; auto runs dense attention where "
                        "sparsity does not pay (small token counts), and says so at the start")
    g = p.add_argument_group("example level")
    g.add_argument("--data-keep", type=fraction("--data-keep"), default=1.0,
                   help="fraction of the training set active at a time (1.0: selector off)")
    g.add_argument("--swap-every", type=bounded(int, "--swap-every"), default=None,
                   help="epochs between active-set swaps (default: ExampleSelector.default_schedule)")
    g.add_argument("--swap-fraction", type=fraction("--swap-fraction"), default=None,
                   help="fraction swapped at each swap (default: ExampleSelector.default_schedule)")
    g.add_argument("--random-subset", action="store_true",
                   help="same as --data-policy static-random")
    g.add_argument("--data-policy", choices=POLICY_NAMES, default=None,
                   help="which samples train each epoch: full; static-random / dynamic-random / "
                        "forgetting-swap at --data-keep; infobatch / seta (dynamic, loss-based). "
                        "Default: forgetting-swap when --data-keep < 1, else full")
    g.add_argument("--prune-ratio", type=number_in("--prune-ratio", 0, 1, high_open=True), default=None,
                   help="infobatch: share of the well-learned samples dropped each epoch (default 0.5); "
                        "seta: share of the data dropped at random first (default 0.3)")
    g.add_argument("--delta", type=fraction("--delta"), default=None,
                   help="infobatch / seta: prune until this fraction of --epochs, then anneal (default 0.875)")
    g.add_argument("--seta-groups", type=bounded(int, "--seta-groups"), default=None,
                   help="seta: loss groups (k-means; default 5)")
    g.add_argument("--seta-window", type=fraction("--seta-window"), default=None,
                   help="seta: share of the groups in the sliding window (default 0.9)")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=bounded(int, "--seed", strictly_positive=False), default=0)
    g.add_argument("--device", choices=DEVICES, default="auto")
    g.add_argument("--output-dir", default="runs/train", help="checkpoint.pt, logs, summary.json")
    g.add_argument("--resume", default=None, metavar="PATH", help="checkpoint to continue from")
    g.add_argument("--threads", type=bounded(int, "--threads", strictly_positive=False), default=1,
                   help="CPU intra-op threads per process (0: torch's default). 1 is the fastest "
                        "for the small models on a shared machine: OpenMP threads spin-waiting "
                        "for a busy core slow 2 threads down several-fold")
    g.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    return p


def resolve_defaults(args: argparse.Namespace, world_size: int = 1) -> argparse.Namespace:
    """Fill data-set dependent defaults (in place) and return ``args``.

    An image folder is profiled first (size and mode of a sample of its images): a folder
    of small images gets the defaults of the small built-in sets, grey images one channel.
    """
    key = imagefolder_defaults(args) if args.dataset == "imagefolder" else args.dataset
    if args.model is None:
        args.model = DEFAULT_MODELS[key]
    if args.in_chans is None:
        args.in_chans = default_in_chans(args.dataset)
    if args.batch_size is None:
        args.batch_size = DEFAULT_BATCH.get(key, 128)
    if args.lr is None:
        if args.opt == "sgd":
            args.lr = DEFAULT_SGD_LR
        else:
            args.lr = DEFAULT_LR.get(key, LR_PER_512.get(key, 5e-4) * args.batch_size * world_size / 512)
    if args.weight_decay is None:
        args.weight_decay = DEFAULT_WEIGHT_DECAY[args.opt]
    if args.momentum is None and args.opt == "sgd":
        args.momentum = 0.9
    return args


_KEEP_POLICIES = ("static-random", "dynamic-random", "forgetting-swap")


def _resolve_data_policy(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill ``--data-policy`` from the older flags and check the flags fit the policy."""
    if args.random_subset:
        if args.data_policy not in (None, "static-random"):
            parser.error(f"--random-subset means --data-policy static-random, not {args.data_policy}")
        args.data_policy = "static-random"
    if args.data_policy is None:
        args.data_policy = "forgetting-swap" if args.data_keep < 1.0 else "full"
    args.random_subset = args.data_policy == "static-random"
    if args.data_policy in _KEEP_POLICIES and args.data_keep >= 1.0:
        also = " (--random-subset)" if args.data_policy == "static-random" else ""
        parser.error(f"--data-policy {args.data_policy}{also} needs --data-keep < 1")
    if args.data_policy not in _KEEP_POLICIES and args.data_keep < 1.0:
        parser.error(f"--data-keep applies to {', '.join(_KEEP_POLICIES)}, not --data-policy {args.data_policy}")
    loss_based = args.data_policy in ("infobatch", "seta")
    for flag, value in (("--prune-ratio", args.prune_ratio), ("--delta", args.delta)):
        if value is not None and not loss_based:
            parser.error(f"{flag} applies to --data-policy infobatch or seta")
    for flag, value in (("--seta-groups", args.seta_groups), ("--seta-window", args.seta_window)):
        if value is not None and args.data_policy != "seta":
            parser.error(f"{flag} applies to --data-policy seta")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and cross-check arguments; errors go through ``parser.error`` naming the argument."""
    parser = one_line_errors(build_parser())
    args = parser.parse_args(argv)
    if args.dataset != "digits" and args.data_path is None:
        parser.error(f"--data-path is required for --dataset {args.dataset}")
    if args.data_path is not None and not Path(args.data_path).exists():
        parser.error(f"--data-path {args.data_path} does not exist")
    if args.resume is not None and not Path(args.resume).is_file():
        parser.error(f"--resume {args.resume}: no such file")
    if args.subset is not None and not Path(args.subset).is_file():
        parser.error(f"--subset {args.subset}: no such file")
    if args.subset is not None and args.limit_train is not None:
        parser.error("--subset and --limit-train both choose the training examples: give one")
    if args.momentum is not None and args.opt != "sgd":
        parser.error(f"--momentum applies to --opt sgd, not --opt {args.opt}")
    if (args.mixup > 0 or args.cutmix > 0) and args.batch_size is not None and args.batch_size % 2:
        parser.error(f"--batch-size must be even with --mixup/--cutmix (timm pairs samples), got {args.batch_size}")
    _resolve_data_policy(parser, args)
    if args.keep_rate_decay and args.keep_rate >= 1.0:
        parser.error("--keep-rate-decay needs --keep-rate < 1")
    check_augmentation_args(parser, args)
    return args
