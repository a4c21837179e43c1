#!/usr/bin/env python
"""Coreset baselines (random, herding, k-center, scores) under the condensation papers' protocol (see tome_train.cli.coreset)."""
import sys
from pathlib import Path

# The library of the checkout this tool sits in, whichever checkout the environment has installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tome_train.cli.coreset import main

if __name__ == "__main__":
    raise SystemExit(main())
