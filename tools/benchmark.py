#!/usr/bin/env python
"""Dense vs sparse throughput, interleaved: ``python tools/benchmark.py --model deit_small_patch16_224 --keep-rate 0.7 --mode train --batch-size 32 --json``."""

import sys
from pathlib import Path

# The library of the checkout this tool sits in, whichever checkout the environment has installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tome_train.cli.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())
