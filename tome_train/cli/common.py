"""Argument helpers shared by the command-line tools."""

from __future__ import annotations

import argparse
import copy
import functools
import math
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tome_train.validation import check_fraction, flags_given


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


def writable_output_dir(path: str | Path, name: str = "--output-dir") -> Path:
    """Create ``path`` (parents too) and check that files can be written in it, before any
    work starts, so that a bad ``--output-dir`` fails in the first second, not after training."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"{name}: cannot write to {str(out)!r} ({err.strerror or err})") from None
    return out


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: X)`` after an option's help (also for options without help), unless X is
    None or False (a flag) or the help already says what the default is."""

    @staticmethod
    def _shows_default(action: argparse.Action) -> bool:
        return (bool(action.option_strings) and action.default is not None
                and action.default is not False and action.default is not argparse.SUPPRESS)

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and self._shows_default(action):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not self._shows_default(action) or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make ``parser``'s errors one line (exit code 2) instead of the usage block plus the error."""

    def error(message: str) -> None:
        parser.exit(2, f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")

    parser.error = error  # type: ignore[method-assign]
    return parser


def fraction(name: str):
    """argparse type for a float in (0, 1], with an error naming the option."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number in (0, 1], got {text!r}") from None
        try:
            return check_fraction(value, name)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse


def bounded(kind: type, name: str, strictly_positive: bool = True):
    """argparse type for an int/float that must be > 0 (or >= 0), naming the option."""
    bound = "> 0" if strictly_positive else ">= 0"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {kind.__name__}, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (strictly_positive and value == 0):
            raise argparse.ArgumentTypeError(f"{name} must be {bound}, got {value}")
        return value

    return parse


def int_list(text: str) -> tuple[int, ...]:
    """argparse type for a comma-separated list of ints ("3,6,9")."""
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None
