"""Type and range checks of a method's hyper-parameter overrides (``--option KEY=VALUE``)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

# Sizes and counts that make no sense at zero (a batch of no images, a queue of no networks).
AT_LEAST_ONE = frozenset({
    "iterations", "batch_real", "batch_train", "train_batch", "partitions", "queue_size",
    "push_interval", "match_models", "window", "probe_per_class", "meter_reset_interval",
    "outer_loop", "inner_loop", "topk_real", "max_outer_steps", "bn_batch_per_class",
})
POSITIVE = frozenset({"lr_img", "lr_net"})


def check_option(field: dataclasses.Field, value: Any) -> Any:
    """``value`` converted to ``field``'s type, or ``ValueError`` naming the option."""
    name, kind = field.name, str(field.type)
    if value is None:
        if "None" not in kind:
            raise ValueError(f"--option {name}: a value is required, got none")
        return None
    if kind.startswith("tuple"):
        items = value if isinstance(value, tuple) else (value,)
        element = int if "int" in kind else float
        return tuple(_number(name, v, element, at_least=0) for v in items)
    if kind.startswith("bool"):
        if not isinstance(value, bool):
            raise ValueError(f"--option {name}: expected true or false, got {value!r}")
        return value
    if kind.startswith("int"):
        return _number(name, value, int, at_least=1 if name in AT_LEAST_ONE else 0)
    if kind.startswith("float"):
        number = _number(name, value, float, at_least=0)
        if name in POSITIVE and number <= 0:
            raise ValueError(f"--option {name}: expected a number > 0, got {value!r}")
        return number
    if kind.startswith("str") and not isinstance(value, str):
        raise ValueError(f"--option {name}: expected a name, got {value!r}")
    return value


def _number(name: str, value: Any, kind: type, at_least: int) -> int | float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and kind is int:
        ok = float(value).is_integer()
    if not ok or value < at_least:
        what = "an integer" if kind is int else "a finite number"
        raise ValueError(f"--option {name}: expected {what} >= {at_least}, got {value!r}")
    return kind(value)
