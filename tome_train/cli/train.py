"""``tools/train.py`` and the ``tome-train`` console script: train a ViT with token-,
attention- and example-level pruning (the job itself is :mod:`tome_train.job.train`).

Single process::

    python tools/train.py --dataset digits --epochs 4 --keep-rate 0.7 --data-keep 0.8

Distributed (gloo on CPU, nccl on CUDA; initialised from torchrun's env vars)::

    torchrun --standalone --nproc_per_node 2 tools/train.py --dataset digits ...
"""

from __future__ import annotations

from collections.abc import Sequence

from tome_train.cli.common import exits_on_bad_input
from tome_train.job.train import main

__all__ = ["cli"]


@exits_on_bad_input
def cli(argv: Sequence[str] | None = None) -> int:
    """Train; exit status 0 after training, 2 with one line on bad input."""
    main(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
