"""IDM: improved distribution matching (Zhao et al., CVPR 2023).

DM plus three changes:

* *partitioning and expansion*: each stored synthetic image holds ``k x k`` smaller
  images (initialised from ``k * k`` downscaled real images); matching and training
  see each part upsampled to full size, so ``ipc`` stored images act as ``k*k*ipc``;
* *a queue of partly trained models*: instead of fresh random networks, the embedding
  comes from a network drawn from a queue; every iteration a few queued networks train
  for some SGD steps on real data, a new random network joins every
  ``push_interval`` iterations and the oldest leaves when the queue is full;
* *class-aware regularisation*: cross-entropy of the network on the synthetic images,
  weighted by that network's running accuracy (percent) on its real training batches.

The synthetic images take one SGD step per class. Published defaults (CIFAR-10):
lr 0.2, partitions 2 x 2, queue of 100, 1 network matched and 2 trained (10 steps of
256 real images, SGD 0.01, momentum 0.9, weight decay 5e-4) per iteration, a new network
every 30 iterations (5 at ipc 1), 256 real images per class (5,000 at ipc 1),
cross-entropy weight 0.5 (0.1 at ipc 50), accuracy meters reset every 100 iterations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .augment import DEFAULT_STRATEGY
from .base import Condenser, MethodConfig
from .matching import mean_embedding_distance
from .networks import build_network
from .synthetic import expand_partitions

EMBED_CHUNK = 512  # real images per forward when embedding large batches (memory)


@dataclass
class IDMConfig(MethodConfig):
    iterations: int = 20000
    lr_img: float = 0.2
    momentum_img: float = 0.5
    batch_real: int | None = None  # 5000 at ipc 1, else 256
    partitions: int = 2  # k: each image holds k x k parts
    queue_size: int = 100
    initial_models: int = 3
    push_interval: int | None = None  # 5 at ipc 1, else 30
    match_models: int = 1
    train_models: int = 2
    train_steps: int = 10
    train_batch: int = 256
    lr_net: float = 0.01
    momentum_net: float = 0.9
    weight_decay_net: float = 5e-4
    ce_weight: float | None = None  # 0.5 up to ipc 10, else 0.1
    meter_reset_interval: int = 100
    topk_real: int = 2560  # ipc 1 without partitions: match the easiest real images only
    augment: str | None = DEFAULT_STRATEGY

    def resolve(self, ipc: int) -> IDMConfig:
        if self.batch_real is None:
            self.batch_real = 5000 if ipc == 1 else 256
        if self.push_interval is None:
            self.push_interval = 5 if ipc == 1 else 30
        if self.ce_weight is None:
            self.ce_weight = 0.5 if ipc <= 10 else 0.1
        if self.partitions < 1 or self.queue_size < 1 or self.push_interval < 1:
            raise ValueError("partitions, queue_size and push_interval must be >= 1")
        return self


@dataclass
class QueuedNetwork:
    net: nn.Module
    optimizer: torch.optim.Optimizer
    correct: int = 0
    seen: int = 0

    def accuracy_percent(self) -> float:
        return 100.0 * self.correct / self.seen if self.seen else 0.0


class ImprovedDistributionMatching(Condenser):
    name = "idm"
    config_class = IDMConfig

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.partitions = int(self.config.partitions)
        self.queue: list[QueuedNetwork] = [self._queued() for _ in range(self.config.initial_models)]

    def initial_images(self) -> torch.Tensor:
        k = int(self.config.partitions)
        if self.init == "noise" or k == 1:
            return super().initial_images()
        chans, height, width = self.image_shape
        ph, pw = height // k, width // k
        images = torch.zeros(self.num_classes * self.ipc, chans, height, width)
        for c in range(self.num_classes):
            rows = slice(c * self.ipc, (c + 1) * self.ipc)
            for col in range(k):
                for row in range(k):
                    real = self.pool.sample(c, self.ipc, self.generator).cpu()
                    images[rows, :, row * ph:(row + 1) * ph, col * pw:(col + 1) * pw] = F.interpolate(
                        real, size=(ph, pw), mode="bilinear", align_corners=False)
        return images

    def details(self) -> dict:
        return {"queue_size": len(self.queue),
                "queue_accuracy_percent": [round(e.accuracy_percent(), 2) for e in self.queue]}

    def method_state(self) -> dict:
        return {"queue": [{"net": e.net.state_dict(), "optimizer": e.optimizer.state_dict(),
                           "correct": e.correct, "seen": e.seen} for e in self.queue]}

    def load_method_state(self, state: dict) -> None:
        queue = []
        for saved in state["queue"]:
            # Weights come from the checkpoint: build under a fixed seed, not the run's generator.
            entry = self._queued(build_network(self.model_name, self.num_classes, self.image_shape, 0,
                                               self.device, **self.model_kwargs))
            entry.net.load_state_dict(saved["net"])
            entry.optimizer.load_state_dict(saved["optimizer"])
            entry.correct, entry.seen = int(saved["correct"]), int(saved["seen"])
            queue.append(entry)
        self.queue = queue

    def _queued(self, net: nn.Module | None = None) -> QueuedNetwork:
        cfg = self.config
        net = self.new_network() if net is None else net
        optimizer = torch.optim.SGD(net.parameters(), lr=cfg.lr_net, momentum=cfg.momentum_net,
                                    weight_decay=cfg.weight_decay_net)
        return QueuedNetwork(net, optimizer)

    def _pick(self, n: int) -> list[QueuedNetwork]:
        order = torch.randperm(len(self.queue), generator=self.generator)[:n]
        return [self.queue[int(i)] for i in order]

    def step(self, iteration: int) -> float:
        cfg = self.config
        if iteration % cfg.push_interval == 0:
            if len(self.queue) >= cfg.queue_size:
                self.queue.pop(0)
            self.queue.append(self._queued())
        if iteration > 0 and iteration % cfg.meter_reset_interval == 0:
            for entry in self.queue:
                entry.correct = entry.seen = 0
        total = 0.0
        for entry in self._pick(cfg.match_models):
            entry.net.eval()
            weight = entry.accuracy_percent()
            for c in range(self.num_classes):
                total += self._class_update(entry.net, c, weight)
        for entry in self._pick(cfg.train_models):
            self._train_on_real(entry)
        return total / self.num_classes

    def _class_update(self, net: nn.Module, c: int, accuracy_weight: float) -> float:
        cfg = self.config
        labels = self.labels[c * self.ipc:(c + 1) * self.ipc]
        syn, syn_labels = expand_partitions(self.class_images(c), labels, self.partitions)
        real = self.sample_real(c)
        if self.augment:
            real, syn = self.augment.siamese(self.generator, real, syn)
        single = self.partitions == 1 and self.ipc == 1
        with torch.no_grad():
            if single:  # keep the real images the network already finds easiest
                logits_real = _chunked(net, real, logits=True)
                targets = torch.full((real.shape[0],), c, device=real.device)
                keep = F.cross_entropy(logits_real, targets, reduction="none").topk(
                    min(cfg.topk_real, real.shape[0]), largest=False).indices
                real = real[keep]
                self.cost.forward(logits_real.shape[0])
            real_emb = _chunked(net, real, logits=False)
        features = net.forward_features(syn)
        syn_emb = net.forward_head(features, pre_logits=True).flatten(1)
        logits = net.forward_head(features)
        loss = mean_embedding_distance(real_emb, syn_emb)
        if cfg.ce_weight and (not single or bool((logits.argmax(dim=1) != c).any())):
            loss = loss + cfg.ce_weight * accuracy_weight * F.cross_entropy(logits, syn_labels)
        self.update_images(loss)
        self.cost.forward(real.shape[0])
        self.cost.forward_backward(syn.shape[0])
        return float(loss.detach())

    def _train_on_real(self, entry: QueuedNetwork) -> None:
        cfg = self.config
        entry.net.train()
        for _ in range(cfg.train_steps):
            images, labels = self.pool.sample_any(cfg.train_batch, self.generator)
            logits = entry.net(images)
            loss = F.cross_entropy(logits, labels)
            entry.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            entry.optimizer.step()
            entry.correct += int((logits.detach().argmax(dim=1) == labels).sum())
            entry.seen += int(labels.numel())
            self.cost.forward_backward(images.shape[0])


def _chunked(net: nn.Module, images: torch.Tensor, logits: bool) -> torch.Tensor:
    """Embeddings (or logits) of a large batch, ``EMBED_CHUNK`` images at a time."""
    outs = []
    for part in images.split(EMBED_CHUNK):
        features = net.forward_features(part)
        outs.append(net.forward_head(features) if logits else net.forward_head(features, pre_logits=True).flatten(1))
    return torch.cat(outs)
