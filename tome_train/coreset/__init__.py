"""Coreset selection: pick a fixed subset of a training set once, before training.

``select(method, budget, features=..., scores=..., labels=..., balance=..., seed=...)``
is the one entry point; each method is one function behind it (``random``,
``herding`` and ``kcenter`` on embeddings, ``easy`` / ``hard`` / ``ccs`` on per-sample
importance scores, where a higher score means a more important sample; ``learned`` takes
the top predicted scores of each spectral cluster of the embeddings, see
:mod:`tome_train.coreset.learned`).
"""

from .select import METHODS, equal_split, proportional_split, select

__all__ = ["METHODS", "equal_split", "proportional_split", "select"]
