#!/usr/bin/env python
"""Dense vs sparse throughput, interleaved: ``python tools/benchmark.py --model deit_small_patch16_224 --keep-rate 0.7 --mode train --batch-size 32 --json``."""

from tome_train.cli.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())
