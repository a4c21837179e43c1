"""The embedding that herding and k-center select in: a trained model's features of every
training image, taken once at the end of training through the engine's hook interface."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..engine.hooks import Hook, TrainState


@torch.no_grad()
def embed(model: torch.nn.Module, dataset: Dataset, device: torch.device | str = "cpu",
          batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features, labels)`` of every item of ``dataset`` in order, from
    ``model.forward_features`` (flattened to ``N x D``) in eval mode.

    Pass the data set without augmentation: the embedding should describe the images
    themselves. The model's train/eval mode is restored afterwards.
    """
    if not hasattr(model, "forward_features"):
        raise ValueError(f"model {type(model).__name__} has no forward_features to embed with")
    was_training = model.training
    model.eval()
    features, labels = [], []
    try:
        for images, targets in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            out = model.forward_features(images.to(device))
            features.append(out.flatten(1).float().cpu())
            labels.append(torch.as_tensor(targets).long())
    finally:
        model.train(was_training)
    return torch.cat(features), torch.cat(labels)


class EmbeddingHook(Hook):
    """Embeds ``dataset`` with the trained model when training ends (``features``, ``labels``)."""

    name = "coreset_embedding"

    def __init__(self, dataset: Dataset, batch_size: int = 500) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.features: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

    def on_train_end(self, state: TrainState) -> None:
        self.features, self.labels = embed(state.model, self.dataset, state.device, self.batch_size)

    def state_dict(self) -> dict[str, Any]:
        return {}
