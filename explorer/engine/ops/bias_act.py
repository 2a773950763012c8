"""Fused bias, activation, gain and clamp, as StyleGAN2/3 layers apply them, in pure PyTorch.

One function covers every activation the generators use, with each activation's default slope
and gain, so network code never repeats those constants; it is also the oracle for a fused kernel.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Activation:
    """An activation function with its default ``alpha`` (used by ``lrelu`` only) and gain."""

    func: Callable[[torch.Tensor, float], torch.Tensor]
    alpha: float
    gain: float


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, _: x, 0.0, 1.0),
    "relu": Activation(lambda x, _: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": Activation(lambda x, alpha: F.leaky_relu(x, alpha), 0.2, math.sqrt(2)),
    "tanh": Activation(lambda x, _: torch.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, _: torch.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, _: F.elu(x), 0.0, 1.0),
    "selu": Activation(lambda x, _: F.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, _: F.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, _: torch.sigmoid(x) * x, 0.0, math.sqrt(2)),
}


def bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None):
    """Add a bias, apply an activation, scale by a gain and clamp, in that order.

    Args:
        x: input tensor of any rank.
        b: bias ``[x.shape[dim]]``, added along axis ``dim``; ``None`` adds nothing.
        dim: the axis of ``x`` that ``b`` runs along.
        act: name of the activation, a key of ``ACTIVATIONS``.
        alpha: negative slope of ``lrelu``; ``None`` takes the default (0.2). Other activations
            ignore it.
        gain: scale applied after the activation; ``None`` takes the activation's default
            (``sqrt(2)`` for ``relu``, ``lrelu`` and ``swish``, 1 otherwise).
        clamp: clamp the result to ``[-clamp, clamp]``; ``None`` or a negative value does not clamp.

    Returns:
        A tensor with the shape, dtype and device of ``x``.

    Raises:
        ValueError: for an unknown activation or a bias whose shape does not fit.
    """
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; valid ones are: {', '.join(ACTIVATIONS)}")
    spec = ACTIVATIONS[act]
    alpha = spec.alpha if alpha is None else float(alpha)
    gain = spec.gain if gain is None else float(gain)
    if b is not None:
        dim = dim % x.ndim
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias of shape {list(b.shape)} does not fit axis {dim} of x {list(x.shape)}")
        shape = [-1 if i == dim else 1 for i in range(x.ndim)]
        x = x + b.to(device=x.device, dtype=x.dtype).reshape(shape)  # bias broadcast along dim
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-float(clamp), float(clamp))
    return x
