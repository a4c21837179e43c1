"""Per-sample scores over a training set (see tome_train.cli.score)."""
import sys
from pathlib import Path

# The library of the checkout this tool sits in, whichever checkout the environment has installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tome_train.cli.score import cli

if __name__ == "__main__":
    raise SystemExit(cli())
