"""Feature-space coreset methods: herding and greedy k-center.

Both are sequential greedy algorithms whose every step touches all candidates, so
their cost is dominated by memory traffic over the feature matrix. Distances use
the expansion ``||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2`` (matrix products, no
``N x budget`` distance matrix), and the per-step loops run on one intra-op thread:
a matrix-vector product over one class is too small to gain from a second thread
and loses badly to spin-waiting when the cores are shared.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the body with one intra-op thread, restoring the previous count afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def squared_norms(x: torch.Tensor) -> torch.Tensor:
    """Row-wise ``||x||^2`` without an ``N x D`` temporary."""
    return torch.linalg.vector_norm(x, dim=1).square_()


def nearest_to_mean(x: torch.Tensor, sq_norms: torch.Tensor) -> int:
    """The row of ``x`` nearest the mean of all rows: herding's first pick, same arithmetic."""
    mean = x.mean(0, dtype=torch.float64).float()
    return int(torch.addmv(sq_norms, x, mean, alpha=-2.0).argmin())  # ||x - m||^2 up to a constant


def herding(features: torch.Tensor, budget: int) -> torch.Tensor:
    """Greedy herding: each step adds the candidate that brings the running mean of the
    chosen rows closest to the mean of all rows (argmin of the distance).

    With ``S`` the sum of the ``t`` rows chosen so far and ``mu`` the mean, the next row
    minimises ``||mu - (S + x) / (t + 1)||``, i.e. ``||x||^2 - 2 x.r`` with
    ``r = (t + 1) mu - S``: one matrix-vector product per step. Deterministic.
    Returns the chosen row numbers in the order they were picked.
    """
    x = features.float().contiguous()
    n = x.shape[0]
    mean = x.mean(0, dtype=torch.float64)
    sq_norms = squared_norms(x)
    running_sum = torch.zeros_like(mean)
    taken = torch.zeros(n, dtype=torch.bool)
    chosen = torch.empty(budget, dtype=torch.long)
    score = torch.empty(n)
    with single_thread():
        for step in range(budget):
            residual = ((step + 1) * mean - running_sum).float()
            torch.addmv(sq_norms, x, residual, alpha=-2.0, out=score)
            score.masked_fill_(taken, float("inf"))
            j = int(score.argmin())
            chosen[step] = j
            taken[j] = True
            running_sum += x[j].double()
    return chosen


def kcenter_greedy(
    features: torch.Tensor, budget: int, generator: torch.Generator, block_rows: int = 1024,
    chunk_elems: int = 1 << 21, first: str = "random",
) -> torch.Tensor:
    """Greedy k-center (farthest-point traversal): the first centre is drawn with
    ``generator`` (``first="random"``, Sener & Savarese) or is the point nearest the
    mean of ``features`` (``first="mean"``), each next one is the point farthest from
    all chosen centres. With one pick per class, a random first centre makes k-center a
    random subset; the condensation papers' k-center (Table 1 of Zhao et al., ICLR 2021,
    level with herding at one image per class) behaves like the ``"mean"`` start.

    Memory is O(N): one running min-distance vector and the ``budget x D`` centres.
    The rows are split into cache-sized blocks, and a block's min-distances are
    brought up to date lazily: each block keeps an upper bound of its largest
    min-distance (min-distances only shrink) and the centres it has not yet seen.
    Only the block holding the largest bound is refreshed, against all its pending
    centres in one matrix product, until that block is up to date; its maximum is
    then the exact global farthest point. The picks are those of the plain greedy
    algorithm (up to floating-point ties), at a fraction of its memory traffic.
    Returns the chosen row numbers in the order they were picked.
    """
    if first not in ("random", "mean"):
        raise ValueError(f"first must be 'random' or 'mean', got {first!r}")
    x = features.float().contiguous()
    n, dim = x.shape
    sq_norms = squared_norms(x)
    min_dist = torch.full((n,), float("inf"))  # squared distance to the nearest centre
    starts = list(range(0, n, block_rows))
    bounds = [float("inf")] * len(starts)
    seen = [0] * len(starts)  # centres each block has been refreshed against
    centres = torch.empty(budget, dim)
    centre_sq = torch.empty(budget)
    chosen = torch.empty(budget, dtype=torch.long)

    def add(step: int, j: int) -> None:
        chosen[step] = j
        centres[step] = x[j]
        centre_sq[step] = sq_norms[j]
        min_dist[j] = float("-inf")  # never chosen again, even among exact duplicates

    def refresh(block: int, upto: int) -> None:
        lo, hi = starts[block], min(starts[block] + block_rows, n)
        rows, rows_sq, current = x[lo:hi], sq_norms[lo:hi, None], min_dist[lo:hi]
        step = max(1, chunk_elems // (hi - lo))
        for c0 in range(seen[block], upto, step):
            c1 = min(c0 + step, upto)
            dist = torch.addmm(rows_sq, rows, centres[c0:c1].T, alpha=-2.0)
            dist += centre_sq[c0:c1]
            torch.minimum(current, dist.amin(1).clamp_(min=0.0), out=current)
        seen[block] = upto
        bounds[block] = float(current.max())

    with single_thread():
        if first == "mean":
            start = nearest_to_mean(x, sq_norms)
        else:
            start = int(torch.randint(n, (1,), generator=generator))
        add(0, start)
        for step in range(1, budget):
            while True:
                block = max(range(len(bounds)), key=bounds.__getitem__)
                if seen[block] == step:
                    break
                refresh(block, step)
            lo = starts[block]
            j = lo + int(min_dist[lo : lo + block_rows].argmax())
            add(step, j)
            bounds[block] = float(min_dist[lo : lo + block_rows].max())
    return chosen
