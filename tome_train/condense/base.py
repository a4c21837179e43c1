"""What every condensation method shares: the synthetic tensor, its optimiser, sampling, the loop.

A method subclasses :class:`Condenser`, declares its published hyper-parameters as a
:class:`MethodConfig` subclass, and implements :meth:`Condenser.step` (one iteration,
returning its matching loss). Randomness (real batches, augmentation draws, network
initialisation) comes from one ``torch.Generator`` seeded by the caller.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .augment import DEFAULT_STRATEGY, DiffAugment
from .cost import CostMeter
from .networks import build_network, next_seed
from .options import check_option
from .real import RealPool
from .synthetic import SyntheticSet

INITS = ("real", "noise")


@dataclass
class MethodConfig:
    """Hyper-parameters every method has; ``None`` fields are filled per ipc by ``resolve``."""

    iterations: int = 1000
    lr_img: float = 0.1
    momentum_img: float = 0.5
    batch_real: int | None = 256
    augment: str | None = None  # DSA strategy while condensing
    eval_augment: str | None = DEFAULT_STRATEGY  # DSA strategy while training evaluation networks

    def resolve(self, ipc: int) -> MethodConfig:
        """Fill ipc-dependent defaults (the published tables); override in methods that have them."""
        return self

    def replace(self, overrides: dict[str, Any]) -> MethodConfig:
        """A copy with ``overrides`` (field names) applied; unknown names raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for {type(self).__name__}; "
                             f"known: {sorted(names)}")
        fields = {f.name: f for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **{k: check_option(fields[k], v) for k, v in overrides.items()})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Condenser:
    """Learns ``ipc`` synthetic images per class from a :class:`RealPool`."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    #: images of each stored synthetic image after expansion (IDM's partitions: factor**2)
    partitions: int = 1

    def __init__(
        self, pool: RealPool, ipc: int, config: MethodConfig | None = None, model: str = "convnet3",
        init: str = "real", seed: int = 0, device: torch.device | str = "cpu",
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        pool.check_ipc(ipc)
        if init not in INITS:
            raise ValueError(f"--init must be one of {INITS}, got {init!r}")
        self.pool = pool
        self.ipc = ipc
        self.config = (config or self.config_class()).resolve(ipc)
        self.model_name = model
        self.model_kwargs = dict(model_kwargs or {})
        self.init = init
        self.seed = seed
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.num_classes = pool.num_classes
        self.image_shape = pool.image_shape
        self.cost = CostMeter()
        self.augment = DiffAugment(self.config.augment)
        self.check_network()
        self.labels = torch.arange(self.num_classes, device=self.device).repeat_interleave(ipc)
        self.images = self.initial_images().to(self.device).requires_grad_(True)
        self.optimizer = torch.optim.SGD([self.images], lr=self.config.lr_img,
                                         momentum=self.config.momentum_img)
        self.history: list[float] = []
        self.elapsed_s = 0.0  # condensing seconds so far, across continued runs

    # ------------------------------------------------------------------ pieces
    def check_network(self) -> None:
        """Fail early on a model that cannot be matched (no ``forward_features``)."""
        self.gflops_per_sample = self._forward_gflops(self.new_network())

    def _forward_gflops(self, model: nn.Module) -> float:
        from tome_train.engine.checkpoint import preserve_rng_state
        from tome_train.flops import forward_gflops

        with preserve_rng_state(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fvcore's tracer warns about deprecated torch.jit APIs
            return float(forward_gflops(model, self.image_shape))

    def initial_images(self) -> torch.Tensor:
        """Random real images of each class (``init="real"``) or standard normal noise."""
        if self.init == "noise":
            return torch.randn(self.num_classes * self.ipc, *self.image_shape, generator=self.generator)
        return torch.cat([self.pool.sample(c, self.ipc, self.generator).cpu() for c in range(self.num_classes)])

    def new_network(self) -> nn.Module:
        """A freshly initialised matching network (seed drawn from the run's generator)."""
        return build_network(self.model_name, self.num_classes, self.image_shape, next_seed(self.generator),
                             self.device, **self.model_kwargs)

    def class_images(self, c: int) -> torch.Tensor:
        return self.images[c * self.ipc:(c + 1) * self.ipc]

    def sample_real(self, c: int, n: int | None = None) -> torch.Tensor:
        return self.pool.sample(c, n or int(self.config.batch_real), self.generator)

    def augmented_class_batches(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per class, a real batch and the class's synthetic images, under one shared DSA draw."""
        reals, syns = [], []
        for c in range(self.num_classes):
            real, syn = self.sample_real(c), self.class_images(c)
            if self.augment:
                real, syn = self.augment.siamese(self.generator, real, syn)
            reals.append(real)
            syns.append(syn)
        return reals, syns

    def update_images(self, loss: torch.Tensor) -> None:
        """One optimiser step of the synthetic images on ``loss`` (no network gradients computed)."""
        (grad,) = torch.autograd.grad(loss, [self.images])
        self.optimizer.zero_grad(set_to_none=True)
        self.images.grad = grad
        self.optimizer.step()

    def train_on_synthetic(self, net: nn.Module, optimizer: torch.optim.Optimizer, epochs: int,
                           batch_size: int) -> None:
        """``epochs`` passes over the (detached) synthetic set in shuffled batches, DSA per image if on."""
        net.train()
        images, labels = self.images.detach(), self.labels
        for _ in range(epochs):
            order = torch.randperm(images.shape[0], generator=self.generator).to(images.device)
            for start in range(0, images.shape[0], batch_size):
                index = order[start:start + batch_size]
                x = images[index]
                if self.augment:
                    x = self.augment(x, self.generator)
                loss = F.cross_entropy(net(x), labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                self.cost.forward_backward(x.shape[0])

    # ------------------------------------------------------------------ loop
    def step(self, iteration: int) -> float:
        """One iteration of the method; returns its matching loss."""
        raise NotImplementedError

    def run(self, iterations: int | None = None, progress: bool = True, checkpoint: str | Path | None = None,
            checkpoint_interval_s: float = 300.0) -> dict[str, Any]:
        """Run up to ``iterations`` in total (default: the method's published count).

        A restored run continues from its last iteration. With ``checkpoint``, the state is
        saved there whenever ``checkpoint_interval_s`` have passed since the last save, and
        after the last iteration. Returns losses and timings (seconds across continued runs).
        """
        from .checkpoint import save_state

        iterations = self.config.iterations if iterations is None else iterations
        if iterations < 1:
            raise ValueError(f"--iterations must be >= 1, got {iterations}")
        done = len(self.history)
        if iterations < done:
            raise ValueError(f"--iterations {iterations} is below the {done} iterations the resumed run has done")
        import sys

        from tqdm import tqdm

        # Redirected to a log: refresh rarely, the bar is one line rewritten with carriage returns.
        bar = tqdm(range(done, iterations), desc=self.name, disable=not progress, dynamic_ncols=True,
                   initial=done, total=iterations, mininterval=0.1 if sys.stderr.isatty() else 10.0)
        start, before = time.perf_counter(), self.elapsed_s
        last_save = start
        for iteration in bar:
            loss = float(self.step(iteration))
            self.history.append(loss)
            recent = self.history[-10:]
            bar.set_postfix(loss=f"{loss:.4f}", running=f"{sum(recent) / len(recent):.4f}")
            now = time.perf_counter()
            self.elapsed_s = before + (now - start)
            if checkpoint is not None and (now - last_save >= checkpoint_interval_s or iteration == iterations - 1):
                save_state(self, checkpoint)
                last_save = time.perf_counter()
        seconds = self.elapsed_s
        return {"iterations": iterations, "resumed_at": done, "seconds": seconds,
                "sec_per_iteration": seconds / iterations, "losses": list(self.history)}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values: what the next iteration depends on (see :mod:`.checkpoint`)."""
        return {"images": self.images.detach().cpu().clone(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state().clone(), "history": list(self.history),
                "cost": dataclasses.asdict(self.cost), "elapsed_s": self.elapsed_s,
                "method_state": self.method_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.images.copy_(state["images"].to(self.images.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = [float(x) for x in state["history"]]
        self.cost = CostMeter(**state["cost"])
        self.elapsed_s = float(state["elapsed_s"])
        self.load_method_state(state["method_state"])
        # Last: restoring a method's state must not draw from the run's generator.
        self.generator.set_state(state["generator"])

    def method_state(self) -> dict[str, Any]:
        """A method's own state across iterations (tensors and plain values); none by default."""
        return {}

    def load_method_state(self, state: dict[str, Any]) -> None:
        pass

    def details(self) -> dict[str, Any]:
        """Method-specific facts about the run (loop counts, queue size, ...) for the report."""
        return {}

    def synthetic_set(self, **recipe: Any) -> SyntheticSet:
        recipe = {"method": self.name, "ipc": self.ipc, "model": self.model_name,
                  "model_kwargs": self.model_kwargs, "init": self.init,
                  "seed": self.seed, "iterations": len(self.history), "partitions": self.partitions,
                  "image_shape": list(self.image_shape), "num_classes": self.num_classes,
                  "config": self.config.as_dict(), **recipe}
        return SyntheticSet(self.images.detach().cpu().clone(), self.labels.cpu().clone(), recipe)
