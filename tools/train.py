#!/usr/bin/env python
"""Train a ViT with token-, attention- and example-level pruning (see tome_train.cli.train)."""

import sys
from pathlib import Path

# The library of the checkout this tool sits in, whichever checkout the environment has installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tome_train.cli.train import cli

if __name__ == "__main__":
    raise SystemExit(cli())
