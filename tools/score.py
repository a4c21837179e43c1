"""Per-sample scores over a training set (see tome_train.cli.score)."""
from tome_train.cli.score import cli

if __name__ == "__main__":
    raise SystemExit(cli())
