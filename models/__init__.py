"""Model definitions registered with timm (installed as ``tome_train.models``).

Importing this package registers the small-input DeiT variants, so that
``timm.create_model("deit_tiny_patch4_32")`` finds them.
"""

from .deit_small_input import (  # noqa: F401
    deit_micro_patch2_16,
    deit_micro_patch4_32,
    deit_small_patch4_32,
    deit_tiny_patch4_32,
)

__all__ = ["deit_micro_patch2_16", "deit_micro_patch4_32", "deit_small_patch4_32", "deit_tiny_patch4_32"]
