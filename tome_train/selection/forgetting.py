"""Per-example forgetting statistics, kept on the training device.

Why: Toneva et al., "An Empirical Study of Example Forgetting during Deep Neural Network
Learning" (ICLR 2019) show that examples which are learned once and never *forgotten*
(a forgetting event is a correct -> incorrect transition between two consecutive
presentations of the same example) can be removed from training with little loss of
accuracy. Tri-Level E-ViT (Kong et al., AAAI 2023) uses the forgetting count over a window
of recent epochs to decide which examples leave the active training set; examples never
learned count as forgotten infinitely often, so they are always kept.

Design, compared with the Tri-Level reference code, which loops over the samples of every
batch in Python with a ``.item()`` host sync per sample and keeps per-rank statistics that
silently diverge between ranks:

* ``update`` is a fixed sequence of tensor index ops (stable sort, ``index_select``,
  ``index_add_``, ``index_copy_``): no Python loop over samples, no ``.item()``, no host sync, so on a
  GPU it queues a few dozen tiny kernels behind the training step. Duplicate indices in a
  batch are handled (presentations are ordered by their position in the batch).
* ``end_epoch`` merges the ranks' presentations of the epoch with one ``all_reduce`` so all
  ranks hold identical statistics, equal to those of one process that saw, for each
  example, rank 0's presentations of the epoch, then rank 1's, and so on. With a sampler
  that presents each example on one rank per epoch (``ActiveSetSampler``) the order across
  ranks does not matter; examples presented on several ranks in one epoch (e.g. the padding
  duplicates of ``DistributedSampler``) are fixed up exactly with a second, small
  all-reduce over just those examples.

Statistics are held per rank in between (the "local view"); a window (``reset_window``)
should be reset right after ``end_epoch`` so that it starts from merged counts.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .. import distributed as tdist

__all__ = ["ForgettingTracker"]

_STATE_VERSION = 1
# name -> dtype of every per-sample tensor in the state dict
_TENSORS: dict[str, torch.dtype] = {
    "presentations": torch.long,
    "total_forgetting_events": torch.long,
    "ever_correct": torch.bool,
    "last_correct": torch.bool,
    "window_start": torch.long,
    "epoch_start_presentations": torch.long,
    "epoch_start_events": torch.long,
    "epoch_start_last_correct": torch.bool,
    "epoch_first_correct": torch.bool,
}


class ForgettingTracker:
    """Counts presentations and forgetting events per example.

    Attributes (tensors of length ``num_samples`` on ``device``):
        presentations: number of times each example was presented.
        total_forgetting_events: forgetting events since the start of training.
        forgetting_events: forgetting events in the current window (since ``reset_window``).
        ever_correct: the example was predicted correctly at least once.
        last_correct: the example's most recent prediction was correct.
    """

    def __init__(self, num_samples: int, device: torch.device | str = "cpu") -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
        self.num_samples = num_samples
        self.device = torch.device(device)
        n, dev = num_samples, self.device
        self.presentations = torch.zeros(n, dtype=torch.long, device=dev)
        self.total_forgetting_events = torch.zeros(n, dtype=torch.long, device=dev)
        # Bool state lives in buffers with one extra "sink" slot at index n: update() sends
        # the writes it must skip there instead of masking (boolean masks sync the host).
        self._last_buf = torch.zeros(n + 1, dtype=torch.bool, device=dev)
        self._ever_buf = torch.zeros(n + 1, dtype=torch.bool, device=dev)
        self._first_buf = torch.zeros(n + 1, dtype=torch.bool, device=dev)
        self.last_correct = self._last_buf[:n]
        self.ever_correct = self._ever_buf[:n]
        self._window_start = torch.zeros(n, dtype=torch.long, device=dev)
        # Epoch-start snapshot and this rank's first prediction of the epoch: what the
        # cross-rank merge in end_epoch needs to rebuild the single-process statistics.
        self._epoch_start_presentations = torch.zeros(n, dtype=torch.long, device=dev)
        self._epoch_start_events = torch.zeros(n, dtype=torch.long, device=dev)
        self._epoch_start_last_correct = torch.zeros(n, dtype=torch.bool, device=dev)
        self._epoch_first_correct = self._first_buf[:n]
        self._sink = torch.full((1,), n, dtype=torch.long, device=dev)
        self._true = torch.ones(1, dtype=torch.bool, device=dev)

    # ------------------------------------------------------------------ per batch
    @property
    def forgetting_events(self) -> torch.Tensor:
        """Forgetting events per example in the current window (since ``reset_window``)."""
        return self.total_forgetting_events - self._window_start

    def _check_batch(
        self, indices: torch.Tensor, correct: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(indices, torch.Tensor) or not isinstance(correct, torch.Tensor):
            raise ValueError(
                "indices and correct must be torch.Tensors, got "
                f"{type(indices).__name__} and {type(correct).__name__}"
            )
        if indices.dim() != 1 or correct.shape != indices.shape:
            raise ValueError(
                "indices and correct must be 1-D tensors of the same shape, got "
                f"indices {tuple(indices.shape)} and correct {tuple(correct.shape)}"
            )
        if indices.dtype == torch.bool or indices.dtype.is_floating_point or indices.is_complex():
            raise ValueError(f"indices must be an integer tensor, got dtype {indices.dtype}")
        if correct.dtype.is_floating_point or correct.is_complex():
            raise ValueError(
                f"correct must be a bool (or 0/1 integer) tensor, got dtype {correct.dtype}"
            )
        # Range check only where it costs no device sync (indices from a DataLoader are on
        # the host); out-of-range indices on an accelerator trip the indexing kernel's assert.
        if indices.device.type == "cpu" and indices.numel():
            lo, hi = (int(v) for v in torch.aminmax(indices))
            if lo < 0 or hi >= self.num_samples:
                raise ValueError(
                    f"indices must be in [0, {self.num_samples}), got values in [{lo}, {hi}]"
                )
        idx = indices.to(self.device, torch.long, non_blocking=True)
        ok = correct.to(self.device, non_blocking=True)
        return idx, ok if ok.dtype == torch.bool else ok != 0

    def update(self, indices: torch.Tensor, correct: torch.Tensor) -> None:
        """Record one batch: ``correct[i]`` is the prediction outcome for example ``indices[i]``.

        Vectorized, no host sync. Repeated indices within a batch are presentations in batch
        order.
        """
        idx, ok = self._check_batch(indices, correct)
        if idx.numel() == 0:
            return
        # Sorting (stably) makes the presentations of each example adjacent, in batch order.
        s, order = torch.sort(idx, stable=True)
        c = ok.index_select(0, order)
        same = s[1:] == s[:-1]  # position i+1 presents the same example as position i
        first = torch.cat([self._true, ~same])  # first presentation of its example here
        last = torch.cat([~same, self._true])
        # Gather the pre-batch state before any write, so duplicates all see the same values.
        prev_last = self._last_buf.index_select(0, s)
        untouched = self.presentations.index_select(0, s) == (
            self._epoch_start_presentations.index_select(0, s)
        )
        # Outcome of the previous presentation: the stored one for the first occurrence in
        # the batch, the preceding occurrence otherwise. Event = correct -> incorrect.
        prev = torch.cat([prev_last[:1], torch.where(same, c[:-1], prev_last[1:])])
        events = prev & ~c
        self.presentations.index_add_(0, s, torch.ones_like(s))
        self.total_forgetting_events.index_add_(0, s, events.long())
        # At most one write per real example below (the rest go to the sink slot), so the
        # results are deterministic on any device.
        self._last_buf.index_copy_(0, torch.where(last, s, self._sink), c)
        self._ever_buf.index_fill_(0, torch.where(c, s, self._sink), True)
        self._first_buf.index_copy_(0, torch.where(first & untouched, s, self._sink), c)

    def observe(self, batch: Any) -> None:
        """Record one training batch (anything with ``indices``, ``logits`` and ``targets``,
        e.g. the engine's ``BatchResult``): correct means ``argmax(logits) == targets``.

        The selector's hook and the forgetting scorer both feed batches through here, so
        both count the same events.
        """
        correct = batch.logits.argmax(dim=-1) == batch.targets
        self.update(batch.indices.to(correct.device), correct)

    # ------------------------------------------------------------------ per epoch
    def end_epoch(self) -> None:
        """Merge this epoch's presentations across ranks (no-op merge in one process)."""
        if tdist.world_size() > 1:
            self._merge_ranks()
        self._epoch_start_presentations.copy_(self.presentations)
        self._epoch_start_events.copy_(self.total_forgetting_events)
        self._epoch_start_last_correct.copy_(self.last_correct)
        self._epoch_first_correct.zero_()

    def _merge_ranks(self) -> None:
        p0, e0, l0 = (
            self._epoch_start_presentations,
            self._epoch_start_events,
            self._epoch_start_last_correct,
        )
        touched = self.presentations > p0
        # Sums over ranks; for an example presented on exactly one rank they are exact, since
        # that rank saw its whole sequence of the epoch starting from the shared state.
        buf = torch.stack(
            [
                self.presentations - p0,
                self.total_forgetting_events - e0,
                touched.long(),
                self.ever_correct.long(),
                (touched & self.last_correct).long(),
            ]
        )
        tdist.all_reduce_sum_(buf)
        n_ranks = buf[2]
        events = e0 + buf[1]
        last = torch.where(n_ranks > 0, buf[4] > 0, l0)
        multi = torch.nonzero(n_ranks > 1).squeeze(1)  # one host sync per epoch
        if multi.numel():
            # Examples presented on several ranks: rank r's first presentation really follows
            # the last presentation on the previous rank, not the epoch-start state.
            world, me = tdist.world_size(), tdist.rank()
            rows = torch.zeros(world, 3, multi.numel(), dtype=torch.long, device=self.device)
            rows[me, 0] = touched[multi].long()
            rows[me, 1] = self._epoch_first_correct[multi].long()
            rows[me, 2] = self.last_correct[multi].long()
            tdist.all_reduce_sum_(rows)
            start = l0[multi]
            prev = start.clone()
            fix = torch.zeros(multi.numel(), dtype=torch.long, device=self.device)
            for r in range(world):  # loop over ranks, vectorized over examples
                t_r, f_r, l_r = rows[r].bool()
                fix += (t_r & prev & ~f_r).long() - (t_r & start & ~f_r).long()
                prev = torch.where(t_r, l_r, prev)
            events[multi] += fix
            last[multi] = prev
        self.presentations.copy_(p0 + buf[0])
        self.total_forgetting_events.copy_(events)
        self.ever_correct.copy_(buf[3] > 0)
        self.last_correct.copy_(last)

    def window_scores(self) -> torch.Tensor:
        """Float scores: forgetting events in the window; ``+inf`` if never learned, or
        misclassified at its last presentation (a sample forgotten once and wrong ever since
        has no event in a later window, yet it is anything but unforgettable)."""
        scores = self.forgetting_events.to(torch.float64)
        presented = self.presentations > 0
        return scores.masked_fill(~self.ever_correct | (presented & ~self.last_correct), math.inf)

    def reset_window(self) -> None:
        """Start a new window: ``forgetting_events`` becomes zero."""
        self._window_start.copy_(self.total_forgetting_events)

    # ------------------------------------------------------------------ checkpointing
    def _tensors(self) -> dict[str, torch.Tensor]:
        return {
            "presentations": self.presentations,
            "total_forgetting_events": self.total_forgetting_events,
            "ever_correct": self.ever_correct,
            "last_correct": self.last_correct,
            "window_start": self._window_start,
            "epoch_start_presentations": self._epoch_start_presentations,
            "epoch_start_events": self._epoch_start_events,
            "epoch_start_last_correct": self._epoch_start_last_correct,
            "epoch_first_correct": self._epoch_first_correct,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as CPU tensors (device independent)."""
        state: dict[str, Any] = {"version": _STATE_VERSION, "num_samples": self.num_samples}
        state.update({k: v.detach().cpu().clone() for k, v in self._tensors().items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state_dict()``; raises ValueError on a mismatched state."""
        if not isinstance(state, dict):
            raise ValueError(f"state must be a dict, got {type(state).__name__}")
        missing = sorted({"version", "num_samples", *_TENSORS} - set(state))
        if missing:
            raise ValueError(f"forgetting tracker state is missing keys {missing}")
        if state["version"] != _STATE_VERSION:
            raise ValueError(
                f"forgetting tracker state version must be {_STATE_VERSION}, got {state['version']!r}"
            )
        if state["num_samples"] != self.num_samples:
            raise ValueError(
                f"forgetting tracker state has num_samples={state['num_samples']}, "
                f"this tracker has num_samples={self.num_samples}"
            )
        for name, dtype in _TENSORS.items():
            t = state[name]
            if not isinstance(t, torch.Tensor) or t.shape != (self.num_samples,):
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(
                    f"forgetting tracker state[{name!r}] must be a tensor of shape "
                    f"({self.num_samples},), got {shape}"
                )
            if t.dtype != dtype:
                raise ValueError(f"forgetting tracker state[{name!r}] must be {dtype}, got {t.dtype}")
        for name, dst in self._tensors().items():
            dst.copy_(state[name].to(self.device))
