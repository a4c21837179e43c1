"""Model definitions registered with timm (installed as ``tome_train.models``).

Importing this package registers the small-input DeiT variants and the CNN baselines
(``convnet3`` and variants, ``resnet18_small``), so that ``timm.create_model(name)`` finds them.
"""

from .convnet import (  # noqa: F401
    ConvNet,
    convnet3,
    convnet3_bn,
    convnet3_ln,
    convnet3_maxpool,
    convnet3_nonorm,
    convnet4,
)
from .deit_small_input import (  # noqa: F401
    deit_micro_patch2_16,
    deit_micro_patch4_32,
    deit_small_patch4_32,
    deit_tiny_patch4_32,
)
from .factory import check_model_name, create_model, default_img_size  # noqa: F401
from .resnet_small import ResNetSmall, resnet18_small, resnet18_small_in  # noqa: F401

__all__ = [
    "ConvNet", "ResNetSmall", "convnet3", "convnet3_bn", "convnet3_ln", "convnet3_maxpool", "convnet3_nonorm",
    "check_model_name", "convnet4", "create_model", "default_img_size", "deit_micro_patch2_16", "deit_micro_patch4_32", "deit_small_patch4_32", "deit_tiny_patch4_32",
    "resnet18_small", "resnet18_small_in",
]
