"""Low-level StyleGAN2/3 ops in pure PyTorch: the CPU path and the oracle for compiled kernels."""

from .bias_act import ACTIVATIONS, bias_act
from .filtered_lrelu import filtered_lrelu
from .upfirdn2d import conv2d_resample, downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

__all__ = [
    "ACTIVATIONS",
    "bias_act",
    "conv2d_resample",
    "downsample2d",
    "filter2d",
    "filtered_lrelu",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
]
