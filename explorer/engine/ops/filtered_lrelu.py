"""StyleGAN3's filtered leaky ReLU in pure PyTorch: bias, upsample, lrelu, downsample.

The nonlinearity runs at a higher sampling rate between two FIR filters so that it does not
alias. This plain composition of ``upfirdn2d`` and ``bias_act`` is the engine's CPU path and the
oracle for a fused kernel.
"""

import math

import torch
import torch.nn.functional as F

from .bias_act import bias_act
from .impl import use_reference_ops
from .upfirdn2d import upfirdn2d

SQRT2 = math.sqrt(2)


def filtered_lrelu(
    x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=SQRT2, slope=0.2, clamp=None, flip_filter=False
):
    """Add a bias, upsample with ``fu``, apply a leaky ReLU, then downsample with ``fd``.

    Args:
        x: input ``[N, C, H, W]``.
        fu: upsampling filter from ``setup_filter``, or ``None`` for the identity.
        fd: downsampling filter from ``setup_filter``, or ``None`` for the identity.
        b: bias ``[C]``, or ``None``.
        up: integer upsampling factor; the upsampled signal is scaled by ``up**2``.
        down: integer downsampling factor.
        padding: padding of the upsampled signal, an int, ``[x, y]`` or ``[x0, x1, y0, y1]``;
            negative values crop.
        gain: scale applied after the leaky ReLU.
        slope: negative slope of the leaky ReLU.
        clamp: clamp the activations to ``[-clamp, clamp]``; ``None`` does not clamp.
        flip_filter: correlate with both filters instead of convolving.

    Returns:
        A tensor ``[N, C, H', W']`` with the dtype and device of ``x``. With ``Hu = H * up + py0 + py1
        - fuh + 1`` rows after the upsampling pass, ``H' = ceil((Hu - fdh + 1) / down)``; likewise for
        the width.
    """
    x = bias_act(x, b)  # [N, C, H, W]
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up**2, flip_filter=flip_filter)  # [N, C, Hu, Wu]
    if use_reference_ops() or fu is None:
        x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)  # [N, C, Hu, Wu]
        return upfirdn2d(x, fd, down=down, flip_filter=flip_filter)  # [N, C, ceil((Hu - fdh + 1) / down), ...]

    # Fast path: the large upsampled tensor is fresh, so activate it in place (while autograd records,
    # as in training, the leaky ReLU out of place: its backward reads its input), and move the gain
    # into the (linear) down pass: gain * clamp(lrelu(x), c / gain) == clamp(gain * lrelu(x), c).
    # The clamp is hardtanh, whose backward is one pass (clamp's takes four).
    x = F.leaky_relu(x, slope, inplace=not (torch.is_grad_enabled() and x.requires_grad))
    if clamp is not None and clamp >= 0:
        x = F.hardtanh_(x, -clamp / gain, clamp / gain)
    if fd is None:
        return (x * gain)[:, :, ::down, ::down].contiguous()
    return upfirdn2d(x, fd, down=down, flip_filter=flip_filter, gain=gain)
