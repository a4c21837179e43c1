#!/usr/bin/env python
"""Dense vs random pruning vs selector vs tokens vs all levels: ``python tools/compare.py --dataset digits``."""

import sys
from pathlib import Path

# The library of the checkout this tool sits in, whichever checkout the environment has installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tome_train.cli.compare import main

if __name__ == "__main__":
    raise SystemExit(main())
