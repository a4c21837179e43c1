#!/usr/bin/env python
"""Token pruning vs EViT's code, forgetting counts vs Toneva et al.'s: ``python tools/check_equivalence.py --evit-dir DIR --forgetting-dir DIR``."""

from tome_train.cli.check_equivalence import main

if __name__ == "__main__":
    raise SystemExit(main())
