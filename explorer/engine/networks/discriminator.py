"""The StyleGAN2 discriminator (Karras et al. 2020), as stylegan2-ada-pytorch and stylegan3 train it.

NVIDIA's training snapshots carry it next to the generators. We rebuild it from the pickle's constructor
arguments and state dict for one use: its block outputs are features that know what the model's images
look like, which projection compares as a perceptual distance (`Discriminator.features`).

One block per octave from the image resolution down to 8x8 (two 3x3 convs, the second FIR-filtered and
downsampled; `resnet` adds a downsampled 1x1 skip and scales both paths by sqrt(1/2), `skip` feeds a
downsampled copy of the image to every block, `orig` neither), then at 4x4 the epilogue: a minibatch
standard deviation feature, a 3x3 conv and two dense layers. A conditional D maps the label to a vector
and projects the output on it. Module, parameter and buffer names follow NVIDIA's, so their state dicts
load as they are. Everything runs in float32 (NVIDIA's fp16 layers are a speed choice of training).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..ops import downsample2d
from .common import check_labels
from .mapping import FullyConnectedLayer, MappingNetwork
from .stylegan2 import Conv2dLayer, fir_filter_2d

ARCHITECTURES = ("orig", "skip", "resnet")


def minibatch_stddev(x: torch.Tensor, group_size: int | None = 4, num_channels: int = 1) -> torch.Tensor:
    """Append `num_channels` feature maps: the standard deviation across groups of samples, averaged over
    channels and pixels (ProGAN, Section 3), so that D can see a lack of variety.

    Samples n, n + N/G, n + 2N/G, ... form a group, as in NVIDIA's layer; N must be a multiple of the group
    size (a batch smaller than it is one group).
    """
    n, c, h, w = x.shape
    g = n if group_size is None else min(group_size, n)
    if n % g:
        raise ValueError(f"the minibatch standard deviation needs a batch that is a multiple of {g}, got {n}")
    f = num_channels
    y = x.reshape(g, -1, f, c // f, h, w)  # [GnFcHW]
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # [nFcHW] stddev over each group
    y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # [NFHW]
    return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """One octave down: [N, in, R, R] (and the image for fromRGB) -> [N, out, R/2, R/2]."""

    def __init__(
        self,
        in_channels: int,              # Input channels, 0 = the first block (it starts from the image).
        tmp_channels: int,             # Channels inside the block.
        out_channels: int,
        resolution: int,               # Resolution of the block's input.
        img_channels: int,
        architecture: str = "resnet",  # 'orig', 'skip' or 'resnet'.
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),  # Low-pass filter of the downsampling.
        conv_clamp: float | None = None,  # Clamp conv outputs to +-this value, None = no clamp.
    ):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown discriminator architecture {architecture!r} (known: {', '.join(ARCHITECTURES)})")
        self.in_channels, self.resolution, self.architecture = in_channels, resolution, architecture
        self.register_buffer("resample_filter", fir_filter_2d(resample_filter))
        conv = {"activation": activation, "resample_filter": resample_filter, "conv_clamp": conv_clamp}
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, **conv)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, **conv)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, **conv)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        # FromRGB: the first block always, every block in 'skip' (which also passes the image on, halved).
        if self.in_channels == 0 or self.architecture == "skip":
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None

        # Main layers; 'resnet' adds the skip path, both scaled to keep the variance.
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
            return y + x, img
        return self.conv1(self.conv0(x)), img


class DiscriminatorEpilogue(nn.Module):
    """At 4x4: minibatch stddev, 3x3 conv, dense, dense -> a logit [N, 1] (or [N, cmap_dim] to project on c)."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,                 # Size of the mapped label, 0 = unconditional.
        resolution: int,               # 4.
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,  # Samples per minibatch-stddev group, None = the whole batch.
        mbstd_num_channels: int = 1,   # Minibatch-stddev feature maps, 0 = none.
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ):
        super().__init__()
        self.architecture, self.cmap_dim = architecture, cmap_dim
        self.mbstd_group_size, self.mbstd_num_channels = mbstd_group_size, mbstd_num_channels
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, cmap_dim or 1)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None) -> torch.Tensor:
        if self.architecture == "skip":
            x = x + self.fromrgb(img)
        if self.mbstd_num_channels > 0:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_channels)
        x = self.out(self.fc(self.conv(x).flatten(1)))  # [N, cmap_dim or 1]
        if self.cmap_dim > 0:  # Project on the mapped label.
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x


class Discriminator(nn.Module):
    """images [N, C, R, R] in [-1, 1] (+ one-hot c) -> logits [N, 1]; built from NVIDIA's constructor arguments."""

    def __init__(
        self,
        c_dim: int,                    # Label size, 0 = unconditional.
        img_resolution: int,           # Input resolution (a power of two >= 8).
        img_channels: int = 3,
        architecture: str = "resnet",  # 'orig', 'skip' or 'resnet'.
        channel_base: int = 32768,     # Channels at resolution r: min(channel_base // r, channel_max).
        channel_max: int = 512,
        conv_clamp: float | None = None,  # Clamp conv outputs to +-this value, None = no clamp.
        cmap_dim: int | None = None,   # Size of the mapped label, None = the channels at 4x4.
        block_kwargs: dict | None = None,     # Passed on to DiscriminatorBlock.
        mapping_kwargs: dict | None = None,   # Passed on to the label's MappingNetwork.
        epilogue_kwargs: dict | None = None,  # Passed on to DiscriminatorEpilogue.
    ):
        super().__init__()
        log2 = int(np.log2(img_resolution))
        if img_resolution < 8 or 2**log2 != img_resolution:
            raise ValueError(f"the discriminator's resolution must be a power of two >= 8, not {img_resolution}")
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]  # R, R/2, ..., 8
        channels = {res: min(channel_base // res, channel_max) for res in [*self.block_resolutions, 4]}
        cmap_dim = 0 if c_dim == 0 else (channels[4] if cmap_dim is None else cmap_dim)
        common = {"img_channels": img_channels, "architecture": architecture, "conv_clamp": conv_clamp}
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0, channels[res], channels[res // 2],
                                       res, **common, **(block_kwargs or {}))
            setattr(self, f"b{res}", block)
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=1, w_avg_beta=None,
                                          **(mapping_kwargs or {}))
            del self.mapping.w_avg  # D's label mapping tracks no average (nor do NVIDIA's files hold one)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim, 4, **common, **(epilogue_kwargs or {}))

    def _check(self, img: torch.Tensor) -> None:
        r, c = self.img_resolution, self.img_channels
        if img.ndim != 4 or img.shape[1:] != (c, r, r):
            raise ValueError(f"the discriminator takes images [N, {c}, {r}, {r}], got {list(img.shape)}")

    def _blocks(self, img: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """The output of every block, and what is left of the image (for 'skip')."""
        self._check(img)
        x, img, outputs = None, img.to(torch.float32), []
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
            outputs.append(x)
        return outputs, img

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """The output of each block, [N, C_r, r, r] for r = R/2 ... 4: what projection compares.

        They do not depend on the rest of the batch (only the epilogue's minibatch stddev does), nor on c.
        """
        return self._blocks(img)[0]

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The logit [N, 1]: high for what D takes to be real (of class c, for a conditional D)."""
        outputs, img = self._blocks(img)
        cmap = None
        if self.c_dim > 0:
            check_labels(c, self.c_dim)
            cmap = self.mapping(None, c.to(torch.float32))[:, 0]  # [N, cmap_dim]
        return self.b4(outputs[-1], img, cmap)
