"""Error-based scores from a model's outputs: EL2N, GraNd (last-layer closed form) and the loss.

Paul et al. ("Deep Learning on a Data Diet", NeurIPS 2021) score a sample early in training
by the L2 norm of its error vector, ``||softmax(z) - one_hot(y)||`` (EL2N), or by the norm
of its loss gradient (GraNd), each averaged over several initialisations.

GraNd here is the norm of the gradient w.r.t. the *classifier* (last linear layer) only, in
closed form: for ``z = W h + b`` and cross-entropy, ``dL/dz = p - y``, so
``dL/dW = (p - y) h^T`` and ``||(dL/dW, dL/db)|| = ||p - y|| * sqrt(||h||^2 + 1)``
(``+1`` only when the layer has a bias). One forward pass per sample, no backward.
All losses here are plain cross-entropy against the one-hot label (no label smoothing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["as_float", "cross_entropy", "el2n", "error_vectors", "grand_last_layer"]


def as_float(tensor: torch.Tensor) -> torch.Tensor:
    """At least float32 (half-precision outputs are upcast; float64 stays float64)."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def _check(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.dim() != 2:
        raise ValueError(f"logits must be [B, C], got shape {tuple(logits.shape)}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(f"targets must be [B] integer labels, got shape {tuple(targets.shape)}")
    # on the host only: a range check on a GPU would synchronise every training batch
    if targets.device.type == "cpu" and targets.numel() and not 0 <= int(targets.min()) <= int(targets.max()) < logits.shape[1]:
        raise ValueError(f"targets must be class indices in [0, {logits.shape[1] - 1}], got "
                         f"min {int(targets.min())}, max {int(targets.max())}")


def error_vectors(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``softmax(logits) - one_hot(targets)``: the cross-entropy gradient w.r.t. the logits."""
    _check(logits, targets)
    probs = as_float(logits).softmax(dim=-1)
    return probs - F.one_hot(targets.long(), probs.shape[-1]).to(probs.dtype)


def el2n(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample EL2N, ``[B]``: the L2 norm of the error vector."""
    return error_vectors(logits, targets).norm(dim=-1)


def grand_last_layer(
    logits: torch.Tensor, targets: torch.Tensor, features: torch.Tensor, bias: bool = True
) -> torch.Tensor:
    """Per-sample GraNd w.r.t. the classifier ``z = W h (+ b)``, ``[B]``.

    ``features`` are the classifier's inputs ``h`` (``[B, D]``).
    """
    if features.dim() != 2 or features.shape[0] != logits.shape[0]:
        raise ValueError(f"features must be [B, D] with B={logits.shape[0]}, got {tuple(features.shape)}")
    squared = as_float(features).pow(2).sum(dim=-1) + (1.0 if bias else 0.0)
    return el2n(logits, targets) * squared.sqrt()


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy, ``[B]``."""
    _check(logits, targets)
    return F.cross_entropy(as_float(logits), targets.long(), reduction="none")
