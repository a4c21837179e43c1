"""The score regressor: a small MLP over indicator vectors, fitted to cluster-level labels.

Only clusters carry labels, so the loss compares each cluster's *mean* predicted score
with its label (squared error, averaged over clusters); the per-sample scores are what
the network learns to spread inside a cluster from the indicators.
"""

from __future__ import annotations

import torch
from torch import nn


def fit_regressor(indicators: torch.Tensor, clusters: torch.Tensor, labels: torch.Tensor, *, seed: int = 0,
                  hidden: int = 32, steps: int = 300, lr: float = 1e-2, weight_decay: float = 1e-4,
                  ) -> tuple[nn.Module, list[float]]:
    """``(model, curve)``: an MLP ``D -> hidden -> 1`` trained full-batch with Adam for
    ``steps`` steps on rows of ``indicators`` (``N x D``) whose cluster (``clusters [N]``,
    ``0..K-1``) has label ``labels[k]``; ``curve`` is the loss at every step. Seeded."""
    indicators = torch.as_tensor(indicators).float()
    clusters = torch.as_tensor(clusters).long()
    labels = torch.as_tensor(labels).float()
    if indicators.ndim != 2 or clusters.shape != (indicators.shape[0],):
        raise ValueError(f"indicators must be N x D and clusters N, got {tuple(indicators.shape)} and "
                         f"{tuple(clusters.shape)}")
    if clusters.numel() == 0 or int(clusters.min()) < 0 or int(clusters.max()) >= labels.numel():
        raise ValueError(f"clusters must be in [0, {labels.numel() - 1}] (one label per cluster)")
    if not bool(torch.isfinite(labels).all()) or not bool(torch.isfinite(indicators).all()):
        raise ValueError("labels and indicators must be finite")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(int(seed))
    try:
        model = nn.Sequential(nn.Linear(indicators.shape[1], hidden), nn.GELU(), nn.Linear(hidden, 1))
    finally:
        torch.random.set_rng_state(generator_state)
    counts = torch.bincount(clusters, minlength=labels.numel()).float()
    present = counts > 0
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    curve = []
    for _ in range(steps):
        predicted = model(indicators).squeeze(1)
        means = torch.zeros(labels.numel()).index_add(0, clusters, predicted) / counts.clamp_min(1)
        loss = ((means - labels)[present] ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        curve.append(float(loss.detach()))
    model.eval()
    return model, curve


@torch.no_grad()
def predict(model: nn.Module, indicators: torch.Tensor) -> torch.Tensor:
    """Predicted score of each row, float64 ``[N]``."""
    return model(torch.as_tensor(indicators).float()).squeeze(1).double()
