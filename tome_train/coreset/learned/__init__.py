"""A learned multi-metric selector (the InstructionGPT-4 recipe, for images).

Per-sample indicators (:mod:`.indicators`: scores of :mod:`tome_train.scoring`, CLS-attention
statistics of a patched ViT, a PCA of penultimate features) are standardised into one
matrix; k-means clusters of the embedding (by default one group of every class in each)
each get a label, the validation top-1 of a cheap probe model trained on the cluster
(:mod:`.probes`); a small MLP learns to map indicator vectors to scores whose mean over
each cluster matches its label (:mod:`.regressor`); the selection rule (:mod:`.rule`,
``select("learned", ...)``) takes the top predicted samples of each spectral cluster in
proportion to its size.

:mod:`.pipeline` (:func:`predict_scores`) runs the stages that train (the ViT, the probes)
through :mod:`tome_train.job`, as ``tools/train.py`` does, and counts their cost.
"""

from .indicators import (
    ClsAttentionHook,
    cls_attention_stats,
    indicator_matrix,
    pca_embedding,
)
from .pipeline import INDICATOR_SCORES, PROBE_GROUPINGS, LearnedConfig, predict_scores
from .probes import ValidationTop1Hook, class_covering_clusters, kmeans_clusters, validation_split
from .regressor import fit_regressor
from .rule import capped_split, class_clusters, default_clusters, learned_select, spectral_clusters

__all__ = [
    "INDICATOR_SCORES", "PROBE_GROUPINGS", "ClsAttentionHook", "LearnedConfig", "ValidationTop1Hook", "capped_split", "class_clusters", "class_covering_clusters",
    "cls_attention_stats", "default_clusters", "fit_regressor", "indicator_matrix", "kmeans_clusters", "learned_select",
    "pca_embedding", "predict_scores", "spectral_clusters", "validation_split",
]
