"""Example-level data policies that decide, every epoch, which samples train.

``static-random`` and ``dynamic-random`` are the baselines; ``infobatch`` and ``seta`` are
dynamic pruning from per-sample losses; the forgetting-swap selector of Tri-Level E-ViT is
:class:`tome_train.selection.ExampleSelector`. Build one by name with :func:`build_policy`.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import DataPolicy, LatestLossScores
from .hook import DataPolicyHook
from .infobatch import InfoBatchPolicy
from .random_policies import DynamicRandomPolicy
from .seta import SeTaPolicy

#: every --data-policy name; "full" trains on everything, "forgetting-swap" is the selector
POLICY_NAMES = ("full", "static-random", "dynamic-random", "forgetting-swap", "infobatch", "seta")


def build_policy(name: str, num_samples: int, *, seed: int = 0, keep: float | None = None,
                 device: torch.device | str = "cpu", **options: Any) -> DataPolicy:
    """A :class:`DataPolicy` by name (``dynamic-random``, ``infobatch``, ``seta``).

    ``keep`` is the random policies' fraction; ``options`` go to the policy's constructor
    (``prune_ratio``, ``delta``, ``num_groups``, ``window_scale``), ``None`` values meaning
    the policy's default.
    """
    options = {k: v for k, v in options.items() if v is not None}
    if name == "dynamic-random":
        if keep is None or keep >= 1.0:
            raise ValueError(f"--data-policy {name} needs --data-keep < 1, got {keep}")
        _check_options(name, options, set())
        return DynamicRandomPolicy(num_samples, keep, seed=seed)
    if name == "infobatch":
        allowed = {"prune_ratio", "delta"}
        _check_options(name, options, allowed)
        return InfoBatchPolicy(num_samples, seed=seed, device=device, **options)
    if name == "seta":
        _check_options(name, options, {"prune_ratio", "delta", "num_groups", "window_scale"})
        return SeTaPolicy(num_samples, seed=seed, device=device, **options)
    raise ValueError(f"data policy must be one of dynamic-random, infobatch, seta; got {name!r}")


def _check_options(name: str, options: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(options) - allowed)
    if extra:
        raise ValueError(f"--data-policy {name} does not take {', '.join(extra)}")


__all__ = [
    "POLICY_NAMES", "DataPolicy", "DataPolicyHook", "DynamicRandomPolicy", "InfoBatchPolicy",
    "LatestLossScores", "SeTaPolicy", "build_policy",
]
