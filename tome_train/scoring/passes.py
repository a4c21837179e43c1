"""Scores computed on a trained model over a data set (EL2N, GraNd, curvature, uncertainty,
loss), and the engine hook that runs them at the end of a scoring run.

The pass reads the data set in order (no shuffling), in eval mode, so values come out in
data-set order and a sample's score depends on that sample alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..engine.hooks import Hook, TrainState
from .curvature import DEFAULT_H, DEFAULT_PROBES, draw_probes, input_curvature
from .error_norms import cross_entropy, el2n, grand_last_layer
from .methods import METHODS
from .uncertainty import entropy, least_confidence, margin

__all__ = ["LOGIT_STATISTICS", "POST_METHODS", "PostTrainingScoreHook", "dataset_labels", "score_model"]

#: methods computed on the trained model (``stage == "post"``)
POST_METHODS = tuple(name for name, m in METHODS.items() if m.stage == "post")
#: per-sample statistics of a batch's logits and labels (``[B, C]``, ``[B]`` -> ``[B]``)
LOGIT_STATISTICS = {
    "el2n": el2n,
    "loss": cross_entropy,
    "least_confidence": lambda logits, targets: least_confidence(logits),
    "margin": lambda logits, targets: margin(logits),
    "entropy": lambda logits, targets: entropy(logits),
}
#: the key under which the engine's FLOPs ledger hook offers itself to other hooks
_LEDGER_KEY = "flops_ledger"


def dataset_labels(dataset: Dataset) -> torch.Tensor:
    """Every sample's label (int64 ``[N]``), from ``targets`` when the data set has them
    (also through ``Subset``), else by reading the samples."""
    if isinstance(dataset, Subset):
        return dataset_labels(dataset.dataset)[torch.as_tensor(dataset.indices, dtype=torch.long)]
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return torch.as_tensor(targets, dtype=torch.long).clone()
    return torch.tensor([int(dataset[i][1]) for i in range(len(dataset))], dtype=torch.long)


def _check_methods(methods: Iterable[str]) -> tuple[str, ...]:
    methods = tuple(methods)
    bad = [m for m in methods if m not in POST_METHODS]
    if bad or not methods:
        raise ValueError(f"methods must be a non-empty list of {', '.join(POST_METHODS)}; got {list(methods)}")
    return methods


def _classifier(model: nn.Module) -> nn.Linear:
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if not isinstance(head, nn.Linear):
        raise ValueError(
            f"grand needs a model whose get_classifier() is an nn.Linear, got {type(head).__name__}"
        )
    return head


@torch.no_grad()
def _outputs(model: nn.Module, head: nn.Module | None, images: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Logits, and the classifier's input (flattened) when ``head`` is given."""
    captured: list[torch.Tensor] = []
    handle = head.register_forward_pre_hook(lambda module, args: captured.append(args[0])) if head else None
    try:
        logits = model(images)
    finally:
        if handle is not None:
            handle.remove()
    return logits, (captured[-1].flatten(1) if captured else None)


def score_model(
    model: nn.Module,
    dataset: Dataset,
    methods: Iterable[str],
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    curvature_probes: int = DEFAULT_PROBES,
    curvature_h: float = DEFAULT_H,
    seed: int = 0,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Score every sample of ``dataset`` (items ``(image, label)``) with each post-training method.

    Returns ``({method: float64 [N] on the CPU}, cost)``; ``cost`` has
    ``forward_equivalents`` (the passes' work in forward passes of one sample: 1 per sample
    for all output-based methods together; ``3 (n + 1)`` per sample for curvature, whose
    ``n + 1`` backward passes to the input count as two forwards each) and ``wall_s``.
    Curvature probes come from a CPU generator seeded with ``seed``.
    """
    methods = _check_methods(methods)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    device = torch.device(device)
    head = _classifier(model) if "grand" in methods else None
    from_outputs = [m for m in methods if m != "curvature"]
    curvature = "curvature" in methods
    chunk = max(1, batch_size // (curvature_probes + 1))  # images per curvature call: chunk * (n + 1)
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, list[torch.Tensor]] = {m: [] for m in methods}
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    try:
        for images, targets in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            images, targets = images.to(device), targets.to(device)
            if from_outputs:
                logits, features = _outputs(model, head, images)
                for m in from_outputs:
                    if m == "grand":
                        value = grand_last_layer(logits, targets, features, bias=head.bias is not None)
                    else:
                        value = LOGIT_STATISTICS[m](logits, targets)
                    out[m].append(value.detach().double().cpu())
            if curvature:
                for start in range(0, images.shape[0], chunk):
                    x, y = images[start:start + chunk], targets[start:start + chunk]
                    probes = draw_probes(curvature_probes, x.cpu(), generator).to(device)
                    value = input_curvature(model, x, y, probes, h=curvature_h)
                    out["curvature"].append(value.detach().double().cpu())
    finally:
        model.train(was_training)
    wall = time.perf_counter() - started
    n = len(dataset)
    values = {m: torch.cat(v) if v else torch.zeros(0, dtype=torch.float64) for m, v in out.items()}
    per_sample = (1.0 if from_outputs else 0.0) + (3.0 * (curvature_probes + 1) if curvature else 0.0)
    return values, {"forward_equivalents": per_sample * n, "wall_s": wall}


class PostTrainingScoreHook(Hook):
    """At the end of training, score ``dataset`` with ``methods`` on the trained model.

    Results land in ``values`` (method -> float64 ``[N]``) and ``cost``. When the engine's
    FLOPs ledger offers itself in ``state.shared``, the pass is also recorded there as a
    ``score`` row.
    """

    name = "post_training_scores"

    def __init__(self, methods: Iterable[str], dataset: Dataset, **options: Any) -> None:
        self.methods = _check_methods(methods)
        self.dataset = dataset
        self.options = options
        self.values: dict[str, torch.Tensor] = {}
        self.cost: dict[str, float] = {}

    def on_train_end(self, state: TrainState) -> None:
        self.values, self.cost = score_model(
            state.model, self.dataset, self.methods, device=state.device, **self.options
        )
        ledger = getattr(state, "shared", {}).get(_LEDGER_KEY)
        if ledger is not None and len(self.dataset):
            passes = self.cost["forward_equivalents"] / len(self.dataset)
            ledger.record_pass(state, "score", samples=len(self.dataset), wall_s=self.cost["wall_s"],
                               passes=passes)
            self.cost["recorded_in_ledger"] = 1.0
