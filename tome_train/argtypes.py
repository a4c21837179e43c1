"""argparse building blocks shared by the tools and by the training job's argument schema:
option types that name the option in their errors, one-line errors, and a help formatter
that states each default once."""

from __future__ import annotations

import argparse
import copy
import math

from tome_train.validation import check_fraction

__all__ = ["DefaultsHelpFormatter", "bounded", "fraction", "int_list", "number_in", "one_line_errors"]


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


def number_in(name: str, low: float, high: float, *, high_open: bool = False, noun: str = "a number"):
    """argparse type for a float in ``[low, high]`` (``[low, high)`` with ``high_open``),
    naming the option and the interval in its errors."""
    interval = f"[{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {noun} in {interval}, got {text!r}") from None
        if not (low <= value < high if high_open else low <= value <= high):
            raise argparse.ArgumentTypeError(f"{name} must be {noun} in {interval}, got {value}")
        return value

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
