#!/usr/bin/env python
"""Condense a data set and evaluate it: ``python tools/condense.py --method dm --ipc 10 --output-dir out``."""
from tome_train.cli.condense import main

if __name__ == "__main__":
    raise SystemExit(main())
