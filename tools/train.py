#!/usr/bin/env python
"""Train a ViT with token-, attention- and example-level pruning (see tome_train.cli.train)."""

from tome_train.cli.train import cli

if __name__ == "__main__":
    raise SystemExit(cli())
