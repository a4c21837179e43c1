#!/usr/bin/env python
"""Choose a training subset once (learned multi-metric selector, random, herding, k-center); see tome_train.cli.select."""
import os
import sys

# This folder must not be on the path: its select.py would shadow the standard library's select module.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
from tome_train.cli.select import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
