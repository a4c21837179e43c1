#!/usr/bin/env python
"""Dense vs token-pruned forward GFLOPs: ``python tools/flops.py --model deit_small_patch16_224 --keep-rate 0.7 --json``."""

from tome_train.cli.flops import main

if __name__ == "__main__":
    raise SystemExit(main())
