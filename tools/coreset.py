#!/usr/bin/env python
"""Coreset baselines (random, herding, k-center, scores) under the condensation papers' protocol (see tome_train.cli.coreset)."""
from tome_train.cli.coreset import main

if __name__ == "__main__":
    raise SystemExit(main())
