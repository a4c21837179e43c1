#!/usr/bin/env python
"""Seconds per condensation iteration, ours vs the reference code: ``python tools/condense_reference.py --reference-dir REF --data-path ../shared/data/fashion-mnist``."""
from tome_train.cli.condense_reference import main

if __name__ == "__main__":
    raise SystemExit(main())
