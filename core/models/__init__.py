"""FCN models: the VGG16 trunk, the 32s/16s/8s heads, preprocessing, backbone init."""

from __future__ import annotations

from core.models.fcn import FCN, VARIANTS, FCNConfig, bilinear_kernel, fcn_vgg16
from core.models.preprocess import CAFFE, IMAGENET, Preprocessing

__all__ = [
    "CAFFE",
    "FCN",
    "IMAGENET",
    "VARIANTS",
    "FCNConfig",
    "Preprocessing",
    "bilinear_kernel",
    "fcn_vgg16",
]
