#!/usr/bin/env python
"""Token pruning vs EViT's code, forgetting counts vs Toneva et al.'s: ``python tools/check_equivalence.py --evit-dir DIR --forgetting-dir DIR``."""

import sys
from pathlib import Path

# The library of the checkout this tool sits in, whichever checkout the environment has installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tome_train.cli.check_equivalence import main

if __name__ == "__main__":
    raise SystemExit(main())
