"""tome_train: train Vision Transformers faster by removing redundancy at three levels.

Importing the package registers the project's timm models (``tome_train.models``),
so ``timm.create_model("deit_tiny_patch4_32")`` works after ``import tome_train``.
"""

from . import models  # noqa: F401  (registers models with timm)

__version__ = "0.1.0"
