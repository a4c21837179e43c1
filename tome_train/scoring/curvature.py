"""Input-space loss curvature (Garg & Roy, "Samples With Low Loss Curvature Improve Data
Efficiency", CVPR 2023).

``Curv(x) = (1/n) sum_i ||grad_x L(x + h v_i) - grad_x L(x)||_2`` with Rademacher probes
``v_i`` (entries +-1), ``h = 1e-3`` and ``n = 10`` by default: a finite-difference estimate
of how much the input gradient turns around ``x`` (a Hessian-vector product norm, times
``h``). Low-curvature samples are the clean, representative ones.

Batched over samples *and* probes: the ``n + 1`` copies of a batch (``x`` and its ``n``
perturbations) go through the model as one batch of ``(n + 1) * B`` images and one
backward pass to the inputs. That needs the model in eval mode, where a sample's loss
depends on that sample alone (batch norm then uses its running statistics), so the
input gradient of the summed loss is every sample's own input gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .error_norms import as_float

__all__ = ["draw_probes", "input_curvature"]

DEFAULT_PROBES = 10
DEFAULT_H = 1e-3


def draw_probes(
    num_probes: int, images: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Rademacher probes ``[num_probes, B, *image]`` (float, +-1), drawn on the CPU.

    Drawn sample by sample (``[B, num_probes, ...]`` order) so a sample's probes do not
    depend on how the data set is cut into batches.
    """
    if isinstance(num_probes, bool) or not isinstance(num_probes, int) or num_probes < 1:
        raise ValueError(f"num_probes must be an int >= 1, got {num_probes!r}")
    shape = (images.shape[0], num_probes, *images.shape[1:])
    bits = torch.randint(0, 2, shape, generator=generator, dtype=torch.int8)
    probes = bits.to(images.dtype).mul_(2).sub_(1)
    return probes.transpose(0, 1).to(images.device)


def input_curvature(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    probes: torch.Tensor | None = None,
    *,
    h: float = DEFAULT_H,
    num_probes: int = DEFAULT_PROBES,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-sample curvature ``[B]`` of the cross-entropy (no smoothing) w.r.t. the input.

    ``probes``: ``[n, B, *image]`` (+-1); drawn from ``generator`` when ``None``. The caller
    puts the model in eval mode; parameters get no gradient.
    """
    if images.dim() < 2 or targets.shape != images.shape[:1]:
        raise ValueError(
            f"images must be [B, ...] and targets [B], got {tuple(images.shape)} and {tuple(targets.shape)}"
        )
    if not isinstance(h, (int, float)) or isinstance(h, bool) or not h > 0:
        raise ValueError(f"h must be a number > 0, got {h!r}")
    if probes is None:
        probes = draw_probes(num_probes, images, generator)
    if probes.dim() != images.dim() + 1 or probes.shape[1:] != images.shape:
        raise ValueError(f"probes must be [n, {', '.join(map(str, images.shape))}], got {tuple(probes.shape)}")
    n, batch = probes.shape[0], images.shape[0]
    points = torch.cat([images.unsqueeze(0), images.unsqueeze(0) + h * probes.to(images)])
    points = points.reshape(-1, *images.shape[1:]).detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(points)
        loss = F.cross_entropy(as_float(logits), targets.long().repeat(n + 1), reduction="sum")
        (grads,) = torch.autograd.grad(loss, points)
    grads = grads.reshape(n + 1, batch, -1)
    return (grads[1:] - grads[:1]).norm(dim=-1).mean(dim=0)
