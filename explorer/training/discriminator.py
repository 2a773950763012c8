"""The discriminator the trainers use: the StyleGAN2 paper's residual one (StyleGAN3 reuses it), made of
the engine's discriminator layers: fromRGB at full resolution, one residual block per octave, then at
4x4 a minibatch standard deviation feature, a 3x3 conv and two dense layers.

For progressive growing (ProGAN) it can also take images at the lower resolutions: each has its own
fromRGB, entering at that resolution's block, and a new block is faded in over the previous entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.networks.discriminator import DiscriminatorBlock, minibatch_stddev
from ..engine.networks.mapping import FullyConnectedLayer
from ..engine.networks.stylegan2 import Conv2dLayer


class Discriminator(nn.Module):
    """images [N, 3, R, R] in [-1, 1] -> logits [N, 1]; `channels` maps each resolution to its width.
    With `growing`, images of any resolution from R down to 4 are taken too (see `forward`)."""

    def __init__(self, resolution: int, channels: Mapping[int, int], img_channels: int = 3, mbstd_group: int = 4,
                 growing: bool = False):
        super().__init__()
        self.resolution, self.mbstd_group = resolution, mbstd_group
        self.resolutions = [resolution >> i for i in range(int(math.log2(resolution)) - 1)]  # R ... 4
        self.fromrgb = Conv2dLayer(img_channels, channels[resolution], 1, activation="lrelu")
        self.fromrgb_lower = (nn.ModuleList(Conv2dLayer(img_channels, channels[r], 1, activation="lrelu")
                                            for r in self.resolutions[1:]) if growing else None)
        self.blocks = nn.ModuleList(DiscriminatorBlock(channels[r], channels[r], channels[r // 2], r, img_channels)
                                    for r in self.resolutions[:-1])
        c4 = channels[4]
        self.conv = Conv2dLayer(c4 + 1, c4, 3, activation="lrelu")
        self.fc = FullyConnectedLayer(c4 * 16, c4, activation="lrelu")
        self.out = FullyConnectedLayer(c4, 1)

    def entry(self, index: int) -> Conv2dLayer:
        """The fromRGB for images of resolution `resolutions[index]`."""
        if index == 0:
            return self.fromrgb
        if self.fromrgb_lower is None:
            raise ValueError(f"this discriminator takes {self.resolution}x{self.resolution} images only")
        return self.fromrgb_lower[index - 1]

    def forward(self, img: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """Logits for `img`. An image below full size enters at the block of its resolution; with alpha < 1
        that block's output is blended (weight alpha) with the next entry's view of the half-size image,
        which is how ProGAN fades a new resolution in."""
        start = self.resolutions.index(img.shape[-1])
        x = self.entry(start)(img)
        if alpha < 1:
            x = self.entry(start + 1)(F.avg_pool2d(img, 2)).lerp(self.blocks[start](x, None)[0], alpha)
            start += 1
        for block in self.blocks[start:]:
            x = block(x, None)[0]
        group = self.mbstd_group if len(x) % self.mbstd_group == 0 else 1  # odd batches: one sample per group
        x = self.conv(minibatch_stddev(x, group))
        return self.out(self.fc(x.flatten(1)))

    def load_state_dict(self, state: Mapping, strict: bool = True, assign: bool = False):
        """Also takes states saved before it held the constant resample filters (the 2026-11 runs)."""
        own = self.state_dict()
        state = {**{k: v for k, v in own.items() if k.endswith("resample_filter")}, **state}
        return super().load_state_dict(state, strict=strict, assign=assign)
