#!/usr/bin/env python
"""Condense a data set and evaluate it: ``python tools/condense.py --method dm --ipc 10 --output-dir out``."""
import sys
from pathlib import Path

# The library of the checkout this tool sits in, whichever checkout the environment has installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tome_train.cli.condense import main

if __name__ == "__main__":
    raise SystemExit(main())
