"""The fully connected pieces shared by StyleGAN2 and StyleGAN3: equalised-lr FC layers and the
mapping network z (+ c) -> ws with truncation.

Parameter and buffer names follow NVIDIA's checkpoints (`fc0.weight`, `embed.bias`, `w_avg`), so a
state dict read from one of their files loads with `load_state_dict(strict=True)`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..ops import bias_act
from .common import check_labels


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each vector to unit root-mean-square (StyleGAN's 'pixel norm' of z)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """Dense layer with the equalised learning rate: weights stored unit-scale, scaled at run time."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,           # Add a bias?
        activation: str = "linear",  # Activation after the bias (see ops.bias_act).
        lr_multiplier: float = 1.0,  # Learning-rate multiplier of this layer.
        bias_init: float = 0.0,      # Initial bias value.
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class MappingNetwork(nn.Module):
    """z (+ one-hot c) -> [N, num_ws, w_dim], with truncation toward the tracked average w."""

    def __init__(
        self,
        z_dim: int,                     # Input latent (z) dimensionality, 0 = no latent.
        c_dim: int,                     # Conditioning label (c) dimensionality, 0 = no label.
        w_dim: int,                     # Intermediate latent (w) dimensionality.
        num_ws: int,                    # Number of ws to broadcast to.
        num_layers: int = 8,            # Number of mapping layers.
        embed_features: int | None = None,  # Label embedding size, None = w_dim.
        layer_features: int | None = None,  # Hidden layer size, None = w_dim.
        activation: str = "lrelu",      # Activation of the hidden layers.
        lr_multiplier: float = 0.01,    # Learning-rate multiplier of the mapping layers.
        w_avg_beta: float | None = 0.995,  # Decay of the tracked w average during training.
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        embed_features = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        # Embed, normalise and concatenate the inputs.
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.to(torch.float32)))  # [NZ]
        if self.c_dim > 0:
            check_labels(c, self.c_dim)
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))  # [NE]
        x = torch.cat(parts, dim=1)

        # Main layers.
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)

        # Track the average w while training.
        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        # Broadcast to every layer and truncate.
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [NLW]
        if truncation_psi != 1:
            x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x
