"""A compact residual discriminator, as the StyleGAN2 paper describes it (and StyleGAN3 reuses):
fromRGB at full resolution, one residual block per octave (two 3x3 convs, the second one FIR-filtered
and downsampled, plus a 1x1 downsampled skip, summed with gain sqrt(1/2)), then at 4x4 a minibatch
standard deviation feature, a 3x3 conv and two dense layers. Equalised learning rate throughout.

For progressive growing (ProGAN) it can also take images at the lower resolutions: each has its own
fromRGB, entering at that resolution's block, and a new block is faded in over the previous entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.networks.mapping import FullyConnectedLayer
from ..engine.ops import ACTIVATIONS, bias_act, conv2d_resample, setup_filter


class Conv(nn.Module):
    """Equalised-lr convolution with optional 2x FIR downsampling and a fused bias + activation."""

    def __init__(self, cin: int, cout: int, kernel: int, activation: str = "lrelu", down: int = 1,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn([cout, cin, kernel, kernel]))
        self.bias = nn.Parameter(torch.zeros([cout])) if bias else None
        self.gain = 1 / math.sqrt(cin * kernel * kernel)
        self.activation, self.down, self.padding = activation, down, kernel // 2
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        x = conv2d_resample(x, self.weight * self.gain, f=self.resample_filter if self.down > 1 else None,
                            down=self.down, padding=self.padding)
        return bias_act(x, self.bias, act=self.activation, gain=ACTIVATIONS[self.activation].gain * gain)


class Block(nn.Module):
    """One octave down: (conv 3x3, conv 3x3 + down) + skip 1x1 + down, each path scaled by sqrt(1/2)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0 = Conv(cin, cin, 3)
        self.conv1 = Conv(cin, cout, 3, down=2)
        self.skip = Conv(cin, cout, 1, activation="linear", down=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.skip(x, gain=math.sqrt(0.5))
        return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


def minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Append one feature map: the standard deviation across groups of samples, averaged over
    channels and pixels (ProGAN, Section 3), so D can see a lack of variety."""
    n, c, h, w = x.shape
    g = min(group, n)
    if n % g:
        g = 1
    y = x.reshape(g, n // g, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # [N/G, C, H, W]
    y = y.mean(dim=[1, 2, 3]).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)  # [N, 1, H, W]
    return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """images [N, 3, R, R] in [-1, 1] -> logits [N, 1]; `channels` maps each resolution to its width.
    With `growing`, images of any resolution from R down to 4 are taken too (see `forward`)."""

    def __init__(self, resolution: int, channels: Mapping[int, int], img_channels: int = 3, mbstd_group: int = 4,
                 growing: bool = False):
        super().__init__()
        self.resolution, self.mbstd_group = resolution, mbstd_group
        self.resolutions = [resolution >> i for i in range(int(math.log2(resolution)) - 1)]  # R ... 4
        self.fromrgb = Conv(img_channels, channels[resolution], 1)
        self.fromrgb_lower = (nn.ModuleList(Conv(img_channels, channels[r], 1) for r in self.resolutions[1:])
                              if growing else None)
        self.blocks = nn.ModuleList(Block(channels[r], channels[r // 2]) for r in self.resolutions[:-1])
        c4 = channels[4]
        self.conv = Conv(c4 + 1, c4, 3)
        self.fc = FullyConnectedLayer(c4 * 16, c4, activation="lrelu")
        self.out = FullyConnectedLayer(c4, 1)

    def entry(self, index: int) -> Conv:
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
            x = self.entry(start + 1)(F.avg_pool2d(img, 2)).lerp(self.blocks[start](x), alpha)
            start += 1
        for block in self.blocks[start:]:
            x = block(x)
        x = self.conv(minibatch_stddev(x, self.mbstd_group))
        return self.out(self.fc(x.flatten(1)))
