"""Per-sample scores over a training set, one interface for every method.

A method gives one float per training sample, in data-set order, with a stated direction
(:data:`METHODS`: which end is "more important"); :meth:`Scores.importance` orients any of
them so that higher = more important, as :func:`tome_train.coreset.select` takes them.

* :func:`score_training_set` / :func:`score_training_set_many`: train through the engine
  (``tools/train.py`` arguments, one run per seed) and score the training set;
* :func:`score_model`: the post-training methods on any model and data set;
* :func:`online_score_source`: a per-batch score source for ``ExampleSelector``;
* the method functions themselves (:func:`el2n`, :func:`grand_last_layer`,
  :func:`input_curvature`, :func:`least_confidence`, :func:`margin`, :func:`entropy`,
  :func:`forgetting_scores`).
"""

from .curvature import draw_probes, input_curvature
from .error_norms import cross_entropy, el2n, error_vectors, grand_last_layer
from .forgetting import ForgettingScoreHook, forgetting_scores
from .methods import METHODS, ScoreMethod, get_method, importance
from .online import ONLINE_METHODS, LatestValueSource, online_score_source
from .passes import POST_METHODS, PostTrainingScoreHook, dataset_labels, score_model
from .result import Scores
from .run import score_training_set, score_training_set_many, scoring_dataset
from .uncertainty import entropy, least_confidence, margin

__all__ = [
    "METHODS", "ONLINE_METHODS", "POST_METHODS", "ForgettingScoreHook", "LatestValueSource",
    "PostTrainingScoreHook", "ScoreMethod", "Scores", "cross_entropy", "dataset_labels", "draw_probes",
    "el2n", "entropy", "error_vectors", "forgetting_scores", "get_method", "grand_last_layer",
    "importance", "input_curvature", "least_confidence", "margin", "online_score_source",
    "score_model", "score_training_set", "score_training_set_many", "scoring_dataset",
]
