"""CAFE: condensing by aligning features (Wang et al., CVPR 2022).

Each iteration samples a fresh network and runs the *dynamic bi-level* loop:

* synthetic update: per class, the mean features of a real batch and of the synthetic
  images are aligned at every block of the network (squared distance of the class
  means, weighted per layer) and at the embedding; the *discrimination* loss classifies
  the real embeddings with the synthetic class-mean embeddings as the classifier
  (cross-entropy summed over the real batch). One SGD step on the images follows.
* after each synthetic update, a statistic of the network's accuracy on fresh real
  images (128 per class) joins a sliding window of 10; when the window's range falls
  below ``lambda_outer`` the iteration ends (the synthetic set fits this network);
* otherwise the network trains on the synthetic set epoch by epoch, each epoch adding
  the statistic to a second window, until that window's range exceeds ``lambda_inner``
  (the network has moved enough).

The watched statistic is the published code's: ``v <- v / C + a`` with ``a`` the mean
class accuracy and ``C`` the class count, restarted at 0 with each loop. The lambdas
were tuned on it; one consequence is that a fresh inner window starts with the jump
from ``a`` to about ``a * C / (C - 1)``, so inner loops mostly last one window.

Published defaults: lr 0.1 halved at iterations 1200, 1600 and 1800 (of 2000), layer
weights 0.1, 0.1, 1 (blocks 1-3) and 1 + 1 for the embedding (it appears in two terms
of the published loss), discrimination weight 0.01, lambdas 0.04 / 0.03, no DSA while
condensing nor while training the evaluation networks. The published loops have no
upper bound; ``max_outer_steps`` and ``max_inner_epochs`` cap them. The inner cap
defaults to one window, which is what the published statistic gives once the network's
accuracy exceeds about ``(C - 1) * lambda_inner`` (0.27 for 10 classes); below that, on a
CPU, an uncapped inner loop of single-step epochs on a small synthetic set with a
real-data probe after each can run for hundreds of epochs. With the cap at or below the
window no inner window can fill before the cap, so the inner probes are skipped (they
could not change the outcome).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import Condenser, MethodConfig
from .networks import has_batch_norm


@dataclass
class CAFEConfig(MethodConfig):
    iterations: int = 2000
    lr_img: float = 0.1
    momentum_img: float = 0.5
    lr_milestones: tuple[int, ...] = (1200, 1600, 1800)
    lr_factor: float = 0.5
    batch_real: int | None = 256
    lr_net: float = 0.01
    batch_train: int = 256
    block_weights: tuple[float, ...] = (0.1, 0.1, 1.0)  # shallow -> deep; shallower extra blocks take the first
    embedding_weight: float = 2.0
    discrimination_weight: float = 0.01
    lambda_outer: float = 0.04
    lambda_inner: float = 0.03
    window: int = 10
    probe_per_class: int = 128
    max_outer_steps: int = 50
    max_inner_epochs: int = 10
    augment: str | None = None
    # CAFE's published rows use DC's evaluation: ConvNet networks trained without augmentation
    # (CAFE+DSA, its other rows, sets both fields to the DSA strategy)
    eval_augment: str | None = None


def block_outputs(model: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each block's activation (before pooling) and the flattened embedding of a ConvNet."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        raise ValueError("cafe aligns block features: the model needs a sequential `features` "
                         "of conv/norm/ReLU/pool blocks (the convnet3 family)")
    blocks = []
    for module in features:
        x = module(x)
        if isinstance(module, nn.ReLU):
            blocks.append(x)
    return blocks, x.flatten(1)


def _class_means(t: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    return torch.stack([part.mean(dim=0) for part in t.split(sizes)])


class FeatureAlignment(Condenser):
    name = "cafe"
    config_class = CAFEConfig

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.loop_counts: list[tuple[int, int]] = []  # (synthetic updates, network epochs) per iteration

    def check_network(self) -> None:
        super().check_network()
        probe = self.new_network()
        with torch.no_grad():
            block_outputs(probe, torch.zeros(1, *self.image_shape, device=self.device))

    def details(self) -> dict:
        return {"loop_counts": [list(c) for c in self.loop_counts]}

    def method_state(self) -> dict:
        return {"loop_counts": [list(c) for c in self.loop_counts]}

    def load_method_state(self, state: dict) -> None:
        self.loop_counts = [(int(u), int(e)) for u, e in state["loop_counts"]]

    def layer_weights(self, depth: int) -> list[float]:
        weights = list(self.config.block_weights)[-depth:]
        return [weights[0]] * (depth - len(weights)) + weights

    def step(self, iteration: int) -> float:
        cfg = self.config
        lr = cfg.lr_img * cfg.lr_factor ** sum(iteration >= m for m in cfg.lr_milestones)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        net = self.new_network()
        net.train()
        optimizer = torch.optim.SGD(net.parameters(), lr=cfg.lr_net)
        outer = _Watcher(cfg.window, self.num_classes)
        total, updates, epochs = 0.0, 0, 0
        while True:
            loss = self.alignment_loss(net)
            self.update_images(loss)
            total += float(loss.detach())
            updates += 1
            outer.add(self.real_accuracy(net))
            if outer.spread() < cfg.lambda_outer or updates >= cfg.max_outer_steps:
                break
            if cfg.max_inner_epochs <= cfg.window:  # no window fills before the cap: no probes
                self.train_on_synthetic(net, optimizer, cfg.max_inner_epochs, cfg.batch_train)
                epochs += cfg.max_inner_epochs
                continue
            inner = _Watcher(cfg.window, self.num_classes)
            for _ in range(cfg.max_inner_epochs):
                self.train_on_synthetic(net, optimizer, 1, cfg.batch_train)
                epochs += 1
                inner.add(self.real_accuracy(net))
                if inner.full() and inner.spread() > cfg.lambda_inner:
                    break
        self.loop_counts.append((updates, epochs))
        return total / updates

    def alignment_loss(self, net: nn.Module) -> torch.Tensor:
        cfg = self.config
        reals, syns = self.augmented_class_batches()
        real_sizes, syn_sizes = [r.shape[0] for r in reals], [s.shape[0] for s in syns]
        with torch.no_grad():
            if has_batch_norm(net):  # batch statistics over all classes, as published
                blocks, real_emb = block_outputs(net, torch.cat(reals))
                real_block_means = [_class_means(b, real_sizes) for b in blocks]
            else:  # one class at a time, reduced to means at once: full-resolution maps stay small
                means, embeddings = [], []
                for real in reals:
                    blocks, emb = block_outputs(net, real)
                    means.append([b.mean(dim=0) for b in blocks])
                    embeddings.append(emb)
                real_block_means = [torch.stack(layer) for layer in zip(*means)]
                real_emb = torch.cat(embeddings)
        syn_blocks, syn_emb = block_outputs(net, torch.cat(syns))
        weights = self.layer_weights(len(syn_blocks))
        loss = self.images.new_zeros(())
        for weight, real_mean, syn_block in zip(weights, real_block_means, syn_blocks):
            loss = loss + weight * ((real_mean - _class_means(syn_block, syn_sizes)) ** 2).sum()
        syn_centres = _class_means(syn_emb, syn_sizes)
        real_centres = torch.stack([part.mean(dim=0) for part in real_emb.split(real_sizes)])
        loss = loss + cfg.embedding_weight * ((real_centres - syn_centres) ** 2).sum()
        real_labels = torch.arange(self.num_classes, device=real_emb.device).repeat_interleave(
            torch.tensor(real_sizes, device=real_emb.device))
        logits = real_emb @ syn_centres.t()
        loss = loss + cfg.discrimination_weight * F.cross_entropy(logits, real_labels, reduction="sum")
        self.cost.forward(sum(real_sizes))
        self.cost.forward_backward(sum(syn_sizes))
        return loss

    @torch.no_grad()
    def real_accuracy(self, net: nn.Module) -> float:
        """Mean over classes of the accuracy on ``probe_per_class`` fresh real images."""
        reals = [self.sample_real(c, self.config.probe_per_class) for c in range(self.num_classes)]
        sizes = [r.shape[0] for r in reals]
        if has_batch_norm(net):  # batch statistics per class, as published
            predictions = torch.cat([net(r).argmax(dim=1) for r in reals])
        else:  # per-sample normalisation: one forward is exact
            predictions = net(torch.cat(reals)).argmax(dim=1)
        self.cost.forward(sum(sizes))
        hits = predictions.split(sizes)
        return sum(float((h == c).float().mean()) for c, h in enumerate(hits)) / self.num_classes


class _Watcher:
    """The published watcher: running statistic ``v <- v / C + accuracy`` over a sliding window."""

    def __init__(self, size: int, num_classes: int) -> None:
        self.window: deque[float] = deque(maxlen=size)
        self.num_classes = num_classes
        self.value = 0.0

    def add(self, accuracy: float) -> None:
        self.value = self.value / self.num_classes + accuracy
        self.window.append(self.value)

    def full(self) -> bool:
        return len(self.window) == self.window.maxlen

    def spread(self) -> float:
        """Range of the window once full (infinite before)."""
        return max(self.window) - min(self.window) if self.full() else float("inf")
