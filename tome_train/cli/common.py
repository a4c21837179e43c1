"""Argument helpers shared by the command-line tools."""

from __future__ import annotations

import functools
import shlex
import sys
from collections.abc import Callable
from typing import Any

from tome_train.validation import flags_given


def exits_on_bad_input(main: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a tool's ``main`` so that bad input ends in one line on stderr and exit code 2.

    Library code raises ``ValueError`` / ``FileNotFoundError`` naming the argument and what
    was expected; a user of the tools sees that sentence, not a traceback (argparse's own
    errors already exit with 2).
    """

    @functools.wraps(main)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except (ValueError, FileNotFoundError) as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        except (NotADirectoryError, IsADirectoryError, FileExistsError, PermissionError) as err:
            # a path the user gave that cannot be used as asked: name it, no traceback
            print(f"error: {err.strerror}: {err.filename}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    return wrapped


def flags_taken(extra_args: str, own: frozenset[str]) -> list[str]:
    """The flags of ``own`` (those a tool sets per run) that an extra-arguments string such as
    ``--train-args`` sets again: given twice, argparse keeps the last and the tool's record lies."""
    return sorted(flags_given(shlex.split(extra_args)) & own)
