"""DC: dataset condensation with gradient matching (Zhao et al., ICLR 2021).

Each iteration samples a fresh randomly initialised network and runs an outer loop:
for every class, the gradients of the classification loss w.r.t. the network weights on
a real batch and on the class's synthetic images are matched (:func:`gradient_distance`),
the synthetic images take one SGD step on the summed distance, and then (except after
the last outer step) the network trains for ``inner_loop`` epochs on the synthetic set.
The loop counts depend on the images per class as published: 1 -> (1, 1),
10 -> (10, 50), 20 -> (20, 25), 30 -> (30, 20), 40 -> (40, 15), 50 -> (50, 10); other
values take the nearest published row. :mod:`.dsa` is this method with DSA.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import Condenser, MethodConfig
from .matching import gradient_distance, matched_parameters
from .networks import freeze_batch_norm, has_batch_norm

PUBLISHED_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


def published_loops(ipc: int) -> tuple[int, int]:
    """``(outer_loop, inner_loop)`` for ``ipc`` (nearest published row when not listed)."""
    nearest = min(PUBLISHED_LOOPS, key=lambda k: (abs(k - ipc), k))
    return PUBLISHED_LOOPS[nearest]


@dataclass
class DCConfig(MethodConfig):
    iterations: int = 1000
    lr_img: float = 0.1
    momentum_img: float = 0.5
    batch_real: int | None = 256
    lr_net: float = 0.01  # plain SGD for the inner-loop network updates
    batch_train: int = 256
    outer_loop: int | None = None
    inner_loop: int | None = None
    bn_batch_per_class: int = 16  # real images per class that set batch-norm statistics
    augment: str | None = None
    eval_augment: str | None = None  # the papers train DC's evaluation networks without augmentation

    def resolve(self, ipc: int) -> DCConfig:
        outer, inner = published_loops(ipc)
        if self.outer_loop is None:
            self.outer_loop = outer
        if self.inner_loop is None:
            self.inner_loop = inner
        if self.outer_loop < 1 or self.inner_loop < 0:
            raise ValueError(f"outer_loop must be >= 1 and inner_loop >= 0, got {self.outer_loop}, "
                             f"{self.inner_loop}")
        return self


class GradientMatching(Condenser):
    name = "dc"
    config_class = DCConfig

    def step(self, iteration: int) -> float:
        cfg = self.config
        net = self.new_network()
        net.train()
        weights = matched_parameters(net)
        optimizer = torch.optim.SGD(net.parameters(), lr=cfg.lr_net)
        total = 0.0
        for outer in range(cfg.outer_loop):
            if has_batch_norm(net):
                self._set_batch_norm_statistics(net)
            loss = self._matching_loss(net, weights)
            self.update_images(loss)
            total += float(loss.detach())
            if outer == cfg.outer_loop - 1:
                break
            self.train_on_synthetic(net, optimizer, cfg.inner_loop, cfg.batch_train)
        return total / (self.num_classes * cfg.outer_loop)

    def _matching_loss(self, net: nn.Module, weights: list[nn.Parameter]) -> torch.Tensor:
        loss = self.images.new_zeros(())
        for c in range(self.num_classes):
            real, syn = self.sample_real(c), self.class_images(c)
            if self.augment:
                real, syn = self.augment.siamese(self.generator, real, syn)
            real_loss = F.cross_entropy(net(real), torch.full((real.shape[0],), c, device=real.device))
            g_real = [g.detach() for g in torch.autograd.grad(real_loss, weights)]
            syn_loss = F.cross_entropy(net(syn), torch.full((syn.shape[0],), c, device=syn.device))
            g_syn = torch.autograd.grad(syn_loss, weights, create_graph=True)
            loss = loss + gradient_distance(g_syn, g_real)
            self.cost.forward_backward(real.shape[0] + syn.shape[0])
            self.cost.double_backward(syn.shape[0])
        return loss

    def _set_batch_norm_statistics(self, net: nn.Module) -> None:
        """A synthetic batch is too small for batch statistics: set them from real images, then freeze."""
        net.train()
        real = torch.cat([self.sample_real(c, self.config.bn_batch_per_class) for c in range(self.num_classes)])
        with torch.no_grad():
            net(real)
        self.cost.forward(real.shape[0])
        freeze_batch_norm(net)
