"""Forgetting counts side by side with Toneva et al.'s reference statistics (ICLR 2019).

Random per-presentation correctness streams are fed to both: to our ``ForgettingTracker``
batch by batch (shuffled epochs, samples skipped in some epochs, some presented twice in
one epoch), and to the reference ``compute_forgetting_statistics`` /
``sort_examples_by_forgetting`` as the per-sample sequences its training script records.
"""

from __future__ import annotations

import math
import types
from typing import Any

import numpy as np
import torch

from ..scoring.forgetting import forgetting_scores
from ..selection.forgetting import ForgettingTracker
from .reference import quiet_stdout

COHORTS = ("random", "never_learned", "forgotten_at_end", "never_presented", "always_correct")


def correctness_streams(num_samples: int, epochs: int, batch_size: int, seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Batches ``(indices, correct)`` in presentation order, and each sample's cohort.

    Random samples follow a two-state chain with per-sample learn / forget probabilities;
    a sample is presented in an epoch with a per-sample probability (as under data
    pruning), and about 2% of the presentations are repeated later in the same epoch.
    """
    rng = np.random.default_rng(seed)
    cohort = rng.choice(len(COHORTS), size=num_samples, p=[0.7, 0.08, 0.1, 0.02, 0.1])
    p_learn = rng.uniform(0.05, 0.9, num_samples)
    p_forget = rng.uniform(0.0, 0.6, num_samples)
    p_present = np.where(cohort == COHORTS.index("never_presented"), 0.0, rng.uniform(0.3, 1.0, num_samples))
    state = rng.random(num_samples) < p_learn
    stream_idx, stream_ok = [], []
    for _ in range(epochs):
        shown = np.flatnonzero(rng.random(num_samples) < p_present)
        repeats = shown[rng.random(shown.size) < 0.02]
        order = rng.permutation(np.concatenate([shown, repeats]))
        outcome = np.empty(order.size, dtype=bool)
        for j, (i, flip) in enumerate(zip(order, rng.random(order.size))):
            state[i] = flip < p_learn[i] if not state[i] else flip >= p_forget[i]
            outcome[j] = state[i]
        stream_idx.append(order)
        stream_ok.append(outcome)
    idx, ok = np.concatenate(stream_idx), np.concatenate(stream_ok)
    ok[cohort[idx] == COHORTS.index("never_learned")] = False
    ok[cohort[idx] == COHORTS.index("always_correct")] = True
    # Forgotten at the end: wrong at the last presentation, right at some earlier one.
    for i in np.flatnonzero(cohort == COHORTS.index("forgotten_at_end")):
        where = np.flatnonzero(idx == i)
        if where.size >= 2:
            ok[where[-1]] = False
            ok[where[rng.integers(0, where.size - 1)]] = True
    epoch_ends = np.cumsum([o.size for o in stream_idx])
    batches = []
    for start, end in zip(np.concatenate([[0], epoch_ends[:-1]]), epoch_ends):
        for b in range(start, end, batch_size):
            stop = min(b + batch_size, end)
            batches.append((idx[b:stop], ok[b:stop], stop == end))
    return batches, cohort


def compare_forgetting(toneva: types.ModuleType, num_samples: int = 5000, epochs: int = 30,
                       batch_size: int = 128, seed: int = 0) -> dict[str, Any]:
    """Forgetting counts of our tracker against the reference, sample by sample."""
    batches, cohort = correctness_streams(num_samples, epochs, batch_size, seed)
    tracker = ForgettingTracker(num_samples)
    sequences: dict[int, list[int]] = {}
    for indices, correct, ends_epoch in batches:
        tracker.update(torch.from_numpy(indices), torch.from_numpy(correct))
        for i, c in zip(indices.tolist(), correct.tolist()):
            sequences.setdefault(i, []).append(int(c))
        if ends_epoch:
            tracker.end_epoch()
    # The reference's per-run record: example id -> [losses, accuracies, margins] per presentation.
    n_pres = max(len(s) for s in sequences.values())
    diag = {i: [[0.0] * len(s), s, [0.0] * len(s)] for i, s in sequences.items()}
    diag["train"] = [[], []]
    with quiet_stdout():
        _, unlearned, _, first_learned = toneva.compute_forgetting_statistics(diag, n_pres)
        order, sorted_counts = toneva.sort_examples_by_forgetting([unlearned], [first_learned], n_pres)
    ref_stat = dict(zip(np.asarray(order).tolist(), np.asarray(sorted_counts).tolist()))
    ids = np.array(sorted(sequences))
    ref_events = np.array([len(unlearned[i]) for i in ids])
    ref_never = np.array([math.isnan(first_learned[i]) for i in ids])
    ref_final = np.array([ref_stat[i] for i in ids], dtype=np.float64)

    events = tracker.total_forgetting_events.numpy()[ids]
    scores = forgetting_scores(tracker).numpy()
    window = tracker.window_scores().numpy()  # the selector's view; window = whole run here
    presentations = tracker.presentations.numpy()[ids]
    ours_never = ~tracker.ever_correct.numpy()[ids]
    wrong_last = np.array([sequences[i][-1] == 0 for i in ids]) & ~ref_never
    # Our +inf stands where the reference puts the number of presentations (max counts).
    mapped = np.where(np.isinf(scores[ids]), float(n_pres), scores[ids])
    mismatch = np.flatnonzero(events != ref_events)
    presented_lengths = np.array([len(sequences[i]) for i in ids])
    return {
        "samples": num_samples, "presented": int(ids.size), "never_presented": int(num_samples - ids.size),
        "epochs": epochs, "batch_size": batch_size, "seed": seed,
        "presentations_min_max": [int(presented_lengths.min()), int(presented_lengths.max())],
        "presentations_match": bool(np.array_equal(presentations, presented_lengths)),
        "never_learned": int(ref_never.sum()), "wrong_at_last_presentation": int(wrong_last.sum()),
        "event_counts_compared": int(ids.size), "event_count_mismatches": int(mismatch.size),
        "events_total_max": [int(ref_events.sum()), int(ref_events.max())],
        "never_learned_match": bool(np.array_equal(ours_never, ref_never)),
        "final_scores_equal_where_learned": bool(np.array_equal(scores[ids][~ref_never], ref_final[~ref_never])),
        "never_learned_scores": {"ours": "inf", "reference": n_pres},
        "scores_equal_reading_inf_as_n_presentations": bool(np.array_equal(mapped, ref_final)),
        "window_scores_inf_where_learned": int((np.isinf(window[ids]) & ~ref_never).sum()),
        "window_scores_inf_where_learned_is_wrong_at_last": bool(np.array_equal(np.isinf(window[ids]) & ~ref_never,
                                                                                wrong_last)),
        "never_presented_scores": {"forgetting_scores": _unique(scores, ids, num_samples),
                                   "window_scores": _unique(window, ids, num_samples)},
        "mismatch_examples": [{"id": int(ids[j]), "sequence": sequences[int(ids[j])], "ours": int(events[j]),
                               "reference": int(ref_events[j])} for j in mismatch[:5]],
    }


def _unique(values: np.ndarray, presented: np.ndarray, num_samples: int) -> list[float | str]:
    mask = np.ones(num_samples, dtype=bool)
    mask[presented] = False
    return [("inf" if math.isinf(v) else float(v)) for v in np.unique(values[mask])]
