#!/usr/bin/env python
"""Seconds per condensation iteration, ours vs the reference code: ``python tools/condense_reference.py --reference-dir REF --data-path ../shared/data/fashion-mnist``."""
import sys
from pathlib import Path

# The library of the checkout this tool sits in, whichever checkout the environment has installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tome_train.cli.condense_reference import main

if __name__ == "__main__":
    raise SystemExit(main())
