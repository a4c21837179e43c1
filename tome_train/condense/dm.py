"""DM: distribution matching (Zhao & Bilen, WACV 2023).

Each iteration samples one randomly initialised network (never trained) and, for every
class, matches the mean embedding of a real batch and of the class's synthetic images,
both passed through the same DSA draw. The loss is the sum over classes of the squared
distance of the two means; one SGD step on the synthetic images follows.
Published defaults: lr 1.0 (SGD, momentum 0.5), 256 real images per class, 20,000
iterations, initialisation from real images, the full DSA strategy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .augment import DEFAULT_STRATEGY
from .base import Condenser, MethodConfig
from .matching import mean_embedding_distance
from .networks import embed, has_batch_norm


@dataclass
class DMConfig(MethodConfig):
    iterations: int = 20000
    lr_img: float = 1.0
    momentum_img: float = 0.5
    batch_real: int | None = 256
    augment: str | None = DEFAULT_STRATEGY


class DistributionMatching(Condenser):
    name = "dm"
    config_class = DMConfig

    def step(self, iteration: int) -> float:
        net = self.new_network()
        net.train()
        for param in net.parameters():
            param.requires_grad_(False)
        reals, syns = self.augmented_class_batches()
        if has_batch_norm(net):
            # Batch statistics over all classes at once, as the reference does for BN networks.
            with torch.no_grad():
                real_emb = embed(net, torch.cat(reals)).split([r.shape[0] for r in reals])
        else:
            with torch.no_grad():
                real_emb = [embed(net, real) for real in reals]
        # Per-sample normalisation: one forward over every class's synthetic images is exact.
        syn_emb = embed(net, torch.cat(syns)).split([s.shape[0] for s in syns])
        loss = sum(mean_embedding_distance(r, s) for r, s in zip(real_emb, syn_emb))
        self.update_images(loss)
        self.cost.forward(sum(r.shape[0] for r in reals))
        self.cost.forward_backward(sum(s.shape[0] for s in syns))
        return float(loss.detach()) / self.num_classes
