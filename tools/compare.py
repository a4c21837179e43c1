#!/usr/bin/env python
"""Dense vs random pruning vs selector vs tokens vs all levels: ``python tools/compare.py --dataset digits``."""

from tome_train.cli.compare import main

if __name__ == "__main__":
    raise SystemExit(main())
