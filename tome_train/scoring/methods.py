"""The scoring methods by name: what each measures, when it is computed, which end matters.

Every method gives one float per training sample. Methods disagree on which end marks
the samples worth keeping, so each entry states it (``higher_is_important``), and
:func:`importance` turns any method's values into one convention: higher = more important
(what :func:`tome_train.coreset.select` consumes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["METHODS", "ScoreMethod", "get_method", "importance"]


@dataclass(frozen=True)
class ScoreMethod:
    """One scoring method.

    ``stage``: ``"online"`` (collected from the training batches of the scoring run),
    ``"post"`` (computed on the trained model over the unaugmented training set) or
    ``"none"`` (no training run needed).
    """

    name: str
    higher_is_important: bool
    stage: str
    description: str

    @property
    def more_important(self) -> str:
        return "higher" if self.higher_is_important else "lower"


_ALL = (
    ScoreMethod("forgetting", True, "online",
                "forgetting events (correct -> incorrect between consecutive presentations) over the "
                "scoring run; never-learned samples score +inf (Toneva et al., ICLR 2019)"),
    ScoreMethod("el2n", True, "post",
                "L2 norm of softmax(logits) - one_hot(label) on the model after --epochs epochs "
                "(Paul et al., NeurIPS 2021)"),
    ScoreMethod("grand", True, "post",
                "norm of the cross-entropy gradient w.r.t. the classifier's weight and bias "
                "(last-layer closed form ||p - y|| * sqrt(||h||^2 + 1)) after --epochs epochs "
                "(Paul et al., NeurIPS 2021)"),
    ScoreMethod("curvature", False, "post",
                "input-space loss curvature (1/n) sum_i ||grad_x L(x + h v_i) - grad_x L(x)||, "
                "Rademacher v_i, after --epochs epochs; low curvature = clean, representative "
                "(Garg & Roy, CVPR 2023)"),
    ScoreMethod("least_confidence", True, "post", "1 - max softmax probability (uncertainty)"),
    ScoreMethod("margin", False, "post",
                "top-1 minus top-2 softmax probability (a small margin = uncertain)"),
    ScoreMethod("entropy", True, "post", "entropy of the softmax (uncertainty)"),
    ScoreMethod("loss", True, "post", "cross-entropy against the label (no label smoothing)"),
    ScoreMethod("random", True, "none", "uniform random values from the seed"),
)

#: every method by name
METHODS: dict[str, ScoreMethod] = {m.name: m for m in _ALL}


def get_method(name: str) -> ScoreMethod:
    """The method called ``name``; ValueError naming the choices otherwise."""
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {name!r}")
    return METHODS[name]


def importance(values: torch.Tensor, higher_is_important: bool) -> torch.Tensor:
    """``values`` oriented so that higher = more important, as finite float64.

    Infinite values keep their rank: ``+inf`` (after orientation) becomes one more than
    the largest finite value, ``-inf`` one less than the smallest (a never-learned sample
    stays the most forgotten, yet a coreset method that rejects infinities can use it).
    NaN is rejected.
    """
    if not isinstance(values, torch.Tensor) or values.dim() != 1:
        raise ValueError(f"values must be a 1-D tensor, got {type(values).__name__}")
    scores = values.detach().to(torch.float64).cpu()
    if torch.isnan(scores).any():
        raise ValueError("values must not contain NaN")
    if not higher_is_important:
        scores = -scores
    finite = torch.isfinite(scores)
    if not bool(finite.all()):
        top = float(scores[finite].max()) if bool(finite.any()) else 0.0
        bottom = float(scores[finite].min()) if bool(finite.any()) else 0.0
        scores = scores.clone()
        scores[scores == math.inf] = top + 1.0
        scores[scores == -math.inf] = bottom - 1.0
    return scores
