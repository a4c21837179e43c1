"""Example-level redundancy removal: forgetting statistics, active-set selection, sampler.

``ForgettingTracker`` counts forgetting events per example (Toneva et al., ICLR 2019),
``ExampleSelector`` keeps a ``data_keep`` fraction of the training set active and swaps out
the least-forgotten examples every few epochs (Tri-Level E-ViT), and ``ActiveSetSampler``
presents each active example exactly once per epoch across DDP ranks.
"""

from .forgetting import ForgettingTracker
from .sampler import ActiveSetSampler
from .selector import ExampleSelector

__all__ = ["ActiveSetSampler", "ExampleSelector", "ForgettingTracker"]
