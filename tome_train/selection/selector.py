"""Example-level redundancy removal: train on an active subset that is refreshed by forgetting.

Why: Tri-Level E-ViT (Kong et al., "Peeling the Onion: Hierarchical Reduction of Data
Redundancy for Efficient Vision Transformer Training", AAAI 2023) trains on a fraction
``data_keep`` of the training set at a time. Before training a random ``1 - data_keep``
fraction is removed; every few epochs the active examples that were forgotten least often
in the recent window (Toneva et al., ICLR 2019: the unforgettable examples are the
redundant ones) are swapped out for examples from the removed pool.

Semantics chosen here (all decisions identical on every rank):

* Randomness comes from one CPU ``torch.Generator`` seeded with ``seed`` only, never the
  rank (the Tri-Level reference seeds per rank, so ranks can train on different subsets).
  The generator state is checkpointed, so a resumed run continues exactly.
* Drop: at each swap, the ``swap_n`` active examples with the fewest forgetting events in
  the window since the last swap (or, with another ``score_source``, the lowest window
  scores). Ties are broken by a random permutation drawn from the
  generator. Examples never predicted correctly score ``+inf`` and are never dropped; if
  fewer than ``swap_n`` examples have a finite score, fewer are swapped.
* Restore policy: FIFO. The removed pool is ordered by removal epoch (the initial random
  removal counts as the oldest), ties in random order from the generator; the oldest
  ``k`` return. Every removed example therefore comes back after at most
  ``ceil(removed_count / swap_n)`` swaps: nothing is dropped for good by accident.
* The active set size is constant; active and removed always partition ``range(num_samples)``
  (one removal-epoch tensor, ``-1`` = active, represents both).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import torch

from ..validation import check_fraction
from .forgetting import ForgettingTracker

__all__ = ["ExampleSelector"]

_STATE_VERSION = 1
_ACTIVE = -1  # removal stamp of an active example


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class ExampleSelector:
    """Maintains the active training subset and swaps it using forgetting statistics.

    Args:
        num_samples: size of the training set (indices ``0 .. num_samples - 1``).
        data_keep: fraction of the training set active at a time; 1.0 disables selection.
        swap_every: swap after every ``swap_every`` epochs (after 0-based epochs
            ``swap_every - 1``, ``2 * swap_every - 1``, ...).
        swap_fraction: examples exchanged per swap, as a fraction of the removed pool
            (at least 1). Ignored when ``swap_n`` is given.
        swap_n: examples exchanged per swap, in ``[0, removed_count]``.
        seed: seeds the initial removal, tie-breaks and restore order (not the rank).
        device: where the forgetting statistics live (the training device).
        score_source: per-sample online scores that decide the swaps; default a
            :class:`ForgettingTracker`. Any object with the tracker's interface works:
            ``observe(batch)`` per training batch, ``end_epoch()`` (merges ranks),
            ``window_scores()`` (float ``[num_samples]``, higher = more important, ``+inf``
            never dropped), ``reset_window()``, ``state_dict()`` / ``load_state_dict()``
            (e.g. :func:`tome_train.scoring.online_score_source`).
    """

    def __init__(
        self,
        num_samples: int,
        data_keep: float = 0.8,
        swap_every: int = 1,
        swap_fraction: float = 0.1,
        swap_n: int | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
        score_source: Any = None,
    ) -> None:
        self.num_samples = _check_int("num_samples", num_samples, 1)
        self.data_keep = check_fraction(data_keep, "data_keep")
        self.swap_every = _check_int("swap_every", swap_every, 1)
        self.swap_fraction = check_fraction(swap_fraction, "swap_fraction")
        self.seed = _check_int("seed", seed, 0)
        self.active_count = min(num_samples, max(1, _round(self.data_keep * num_samples)))
        self.removed_count = num_samples - self.active_count
        if swap_n is None:
            swap_n = max(1, _round(self.swap_fraction * self.removed_count))
        elif _check_int("swap_n", swap_n, 0) > self.removed_count and self.removed_count:
            raise ValueError(
                f"swap_n must be an int in [0, {self.removed_count}] (the removed pool size), "
                f"got {swap_n!r}"
            )
        self.swap_n = swap_n if self.removed_count else 0
        # ``tracker``: the score source (the name predates other sources)
        self.tracker = ForgettingTracker(num_samples, device) if score_source is None else score_source
        self.swaps = 0
        self.last_epoch = -1
        self._generator = torch.Generator().manual_seed(self.seed)
        self._removed_at = torch.full((num_samples,), _ACTIVE, dtype=torch.long)
        if self.removed_count:
            perm = torch.randperm(num_samples, generator=self._generator)
            self._removed_at[perm[: self.removed_count]] = 0

    # ------------------------------------------------------------------ views
    @property
    def enabled(self) -> bool:
        """False when selection is disabled (``data_keep`` = 1.0 or ``swap_n`` = 0)."""
        return self.removed_count > 0 and self.swap_n > 0

    @property
    def active_indices(self) -> torch.Tensor:
        """Sorted CPU LongTensor of the active examples."""
        return torch.nonzero(self._removed_at == _ACTIVE).squeeze(1)

    @property
    def removed_indices(self) -> torch.Tensor:
        """Sorted CPU LongTensor of the removed pool."""
        return torch.nonzero(self._removed_at != _ACTIVE).squeeze(1)

    @property
    def removed_at(self) -> torch.Tensor:
        """Per example: epoch + 1 of its removal (0 = initial removal), -1 if active."""
        return self._removed_at.clone()

    def digest(self) -> str:
        """sha256 hex digest of the sorted active indices as int64 little-endian bytes."""
        data = self.active_indices.numpy().astype("<i8").tobytes()
        return hashlib.sha256(data).hexdigest()

    def summary(self) -> dict[str, Any]:
        return {
            "active_count": self.active_count,
            "removed_count": self.removed_count,
            "swaps": self.swaps,
            "active_digest": self.digest(),
        }

    # ------------------------------------------------------------------ training hooks
    def update(self, indices: torch.Tensor, correct: torch.Tensor) -> None:
        """Record one batch of predictions (see ``ForgettingTracker.update``)."""
        self.tracker.update(indices, correct)

    def observe(self, batch: Any) -> None:
        """Record one training batch (``indices``, ``logits``, ``targets``) in the score source."""
        self.tracker.observe(batch)

    def end_epoch(self, epoch: int) -> bool:
        """Merge statistics across ranks; swap if ``epoch`` (0-based) ends a swap period.

        Must be called on every rank, once per epoch, with increasing ``epoch``.
        Returns True if examples were swapped.
        """
        _check_int("epoch", epoch, 0)
        if epoch <= self.last_epoch:
            raise ValueError(
                f"epoch must increase between end_epoch calls, got {epoch} after {self.last_epoch}"
            )
        self.tracker.end_epoch()
        self.last_epoch = epoch
        if not self.enabled or (epoch + 1) % self.swap_every:
            return False
        k = self._swap(epoch)
        self.tracker.reset_window()
        if k:
            self.swaps += 1
        return k > 0

    def _swap(self, epoch: int) -> int:
        g = self._generator
        scores = self.tracker.window_scores().cpu()
        # Both permutations are always drawn, so the generator advances identically
        # whatever k turns out to be.
        active = self.active_indices
        active = active[torch.randperm(active.numel(), generator=g)]
        active = active[torch.sort(scores[active], stable=True).indices]
        pool = self.removed_indices
        pool = pool[torch.randperm(pool.numel(), generator=g)]
        pool = pool[torch.sort(self._removed_at[pool], stable=True).indices]
        finite = int(torch.isfinite(scores[active]).sum())
        k = min(self.swap_n, finite, pool.numel())
        self._removed_at[pool[:k]] = _ACTIVE
        self._removed_at[active[:k]] = epoch + 1
        return k

    # ------------------------------------------------------------------ schedule
    @staticmethod
    def default_schedule(epochs: int, num_samples: int, data_keep: float) -> dict[str, Any]:
        """Constructor kwargs scaled to the run length.

        Rule: ``swap_every = max(1, epochs // 10)`` and ``swap_fraction = 0.1`` of the
        removed pool. A run of >= 10 epochs then makes about 10 swaps; the last one comes
        after the last epoch (it prepares the next epoch, should the run be extended), so
        about 9 of them bring samples back inside the run and the oldest ~10% of the pool
        can stay out until then: removal is never permanent (FIFO restore), but a run must
        be long enough for every sample to come back. Shorter runs swap every epoch
        (Tri-Level E-ViT refreshes the subset every few epochs).

        Resume: the schedule depends on ``epochs`` only through ``epochs // 10``, so every
        run shorter than 20 epochs gets the same schedule, e.g. 2 epochs resumed with
        ``--epochs 4`` equals an uninterrupted 4-epoch run. Resuming into a different
        ``epochs // 10`` bucket changes ``swap_every``; checkpointed config is then
        rejected by ``load_state_dict``.
        """
        _check_int("epochs", epochs, 1)
        _check_int("num_samples", num_samples, 1)
        data_keep = check_fraction(data_keep, "data_keep")
        swap_fraction = 0.1
        active = min(num_samples, max(1, _round(data_keep * num_samples)))
        removed = num_samples - active
        return {
            "data_keep": data_keep,
            "swap_every": max(1, epochs // 10),
            "swap_fraction": swap_fraction,
            "swap_n": max(1, _round(swap_fraction * removed)) if removed else 0,
        }

    # ------------------------------------------------------------------ checkpointing
    def _config(self) -> dict[str, Any]:
        return {
            "num_samples": self.num_samples,
            "data_keep": self.data_keep,
            "swap_every": self.swap_every,
            "swap_n": self.swap_n,
            "seed": self.seed,
        }

    def state_dict(self) -> dict[str, Any]:
        """Active set, removed pool with removal epochs, tracker, RNG state, counters, config."""
        return {
            "version": _STATE_VERSION,
            "config": self._config(),
            "removed_at": self._removed_at.clone(),
            "swaps": self.swaps,
            "last_epoch": self.last_epoch,
            "generator": self._generator.get_state(),
            "tracker": self.tracker.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state_dict()``. Raises ValueError (and changes nothing) if the
        state does not match this selector's config or is malformed."""
        if not isinstance(state, dict):
            raise ValueError(f"state must be a dict, got {type(state).__name__}")
        missing = sorted(
            {"version", "config", "removed_at", "swaps", "last_epoch", "generator", "tracker"}
            - set(state)
        )
        if missing:
            raise ValueError(f"example selector state is missing keys {missing}")
        if state["version"] != _STATE_VERSION:
            raise ValueError(
                f"example selector state version must be {_STATE_VERSION}, got {state['version']!r}"
            )
        mine, saved = self._config(), state["config"]
        diff = {k: (saved.get(k), v) for k, v in mine.items() if saved.get(k) != v}
        if diff:
            detail = ", ".join(f"{k}: checkpoint {a!r} vs this run {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"example selector config does not match the checkpoint ({detail})")
        removed_at = state["removed_at"]
        if (
            not isinstance(removed_at, torch.Tensor)
            or removed_at.shape != (self.num_samples,)
            or removed_at.dtype != torch.long
        ):
            raise ValueError(
                f"example selector state['removed_at'] must be an int64 tensor of shape "
                f"({self.num_samples},)"
            )
        n_active = int((removed_at == _ACTIVE).sum())
        if n_active != self.active_count or int(removed_at.min()) < _ACTIVE:
            raise ValueError(
                f"example selector state['removed_at'] is inconsistent: {n_active} active "
                f"examples, expected {self.active_count}"
            )
        gen = state["generator"]
        if not isinstance(gen, torch.Tensor) or gen.dtype != torch.uint8:
            raise ValueError("example selector state['generator'] must be a uint8 tensor")
        swaps, last_epoch = state["swaps"], state["last_epoch"]
        _check_int("state['swaps']", swaps, 0)
        _check_int("state['last_epoch']", last_epoch, -1)
        self.tracker.load_state_dict(state["tracker"])  # validates before changing anything
        self._generator.set_state(gen.clone())
        self._removed_at = removed_at.clone()
        self.swaps = swaps
        self.last_epoch = last_epoch
