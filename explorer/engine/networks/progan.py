"""ProGAN generator, after "Progressive Growing of GANs for Improved Quality, Stability, and
Variation" (Karras et al., 2018).

There is no mapping network: the latent z (with any label appended) is normalised to unit
root-mean-square ("pixel norm" over the latent) and fed to a dense layer that makes a 4x4 feature
map. Each following block doubles the resolution (nearest-neighbour, or a fused transposed conv)
and applies two 3x3 convolutions, each followed by a leaky ReLU and pixel norm. A 1x1 "ToRGB" conv
turns the last block's features into the image. Every layer uses the equalised learning rate:
weights are stored with unit variance and scaled at run time by gain / sqrt(fan_in).
(pro_gan_pytorch leaves out the pixel norm after the first, dense layer: `dense_pixel_norm`.)

One class covers the three implementations this program reads (tkarras' TF original,
facebookresearch's pytorch_GAN_zoo and akanimax's pro_gan_pytorch); they differ only in the
constructor arguments below. The loaders bring their tensors into this module's conventions:

- weights in PyTorch layout (dense [out, in], convs [out, in, kh, kw]), unit-scale if equalised;
- biases as added after the weight scaling (implementations that scale the bias too have it
  pre-multiplied);
- the first layer as a dense layer with one bias per output feature, [channels * 4 * 4], whose
  outputs are read channel-major as [channels, 4, 4] (a 4x4 transposed conv on a 1x1 input is the
  same map).

For the explorer, ProGAN's "W space" is that normalised latent: `num_ws == 1`, `w_dim == z_dim +
c_dim`, and `ws[:, 0]` is exactly what the first layer receives. Truncation (psi != 1) lerps it
toward `w_avg`, which is zero: ProGAN has no truncation of its own, this only mirrors the other
families' control.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .common import BlockLayout, check_labels, check_synthesis_inputs

OUTPUT_ACTIVATIONS = ("linear", "tanh")


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each feature vector (dim 1) to unit root-mean-square (paper, Sec. 4.2)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class DenseTo4x4(nn.Module):
    """The first layer: latent [N, in] -> feature map [N, C, 4, 4] through one dense layer."""

    def __init__(
        self,
        in_features: int,          # Latent size (z plus any label).
        channels: int,             # Output channels of the 4x4 map.
        gain: float,               # He gain of the layer (fan_in = in_features).
        equalized_lr: bool,        # Scale the stored weights at run time?
    ):
        super().__init__()
        self.channels = channels
        self.weight = nn.Parameter(torch.randn([channels * 16, in_features]))
        self.bias = nn.Parameter(torch.zeros([channels * 16]))
        self.weight_gain = gain / math.sqrt(in_features) if equalized_lr else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.addmm(self.bias, x, (self.weight * self.weight_gain).t())  # [N, C*16]
        return x.reshape(-1, self.channels, 4, 4)  # [NC44]


class ConvLayer(nn.Module):
    """Equalised-lr KxK convolution, optionally fused with a 2x up-sampling (a transposed conv)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,          # 3 for the main convs, 1 for ToRGB.
        gain: float,               # He gain (fan_in = in_channels * kernel_size**2).
        equalized_lr: bool,        # Scale the stored weights at run time?
        fused_up: bool = False,    # Up-sample 2x with a transposed conv (TF fused_scale)?
    ):
        super().__init__()
        self.padding = kernel_size // 2
        self.fused_up = fused_up
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size**2) if equalized_lr else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain  # [OIkk]
        if not self.fused_up:
            return F.conv2d(x, w, self.bias, padding=self.padding)
        # Fused up-sampling, as the TF original builds it: pad the kernel by one and sum its four
        # one-pixel shifts into a (k+1)x(k+1) kernel, then a stride-2 transposed conv.
        w = F.pad(w, [1, 1, 1, 1])  # [O,I,k+2,k+2]
        w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]  # [O,I,k+1,k+1]
        return F.conv_transpose2d(x, w.transpose(0, 1), self.bias, stride=2, padding=1)  # [N,O,2H,2W]


class SynthesisBlock(nn.Module):
    """One resolution: (dense to 4x4 | 2x up-sampling + conv0) -> conv(1), plus its ToRGB."""

    def __init__(
        self,
        in_features: int,          # Input channels; for the 4x4 block the latent size.
        out_channels: int,         # Channels of this block's feature maps.
        resolution: int,           # Output resolution of this block.
        img_channels: int,         # Channels of the image.
        dense_gain: float,         # He gain of the 4x4 dense layer.
        torgb_gain: float,         # He gain of the ToRGB conv.
        equalized_lr: bool,        # Equalised learning rate in every layer?
        fused_upscale: bool,       # Fused transposed-conv up-sampling instead of nearest + conv?
        pixel_norm: bool,          # Pixel norm after each layer's activation?
        dense_pixel_norm: bool,    # ... and after the 4x4 dense layer's (if pixel_norm)?
        pixel_norm_eps: float,     # Epsilon of the pixel norm.
        lrelu_slope: float,        # Negative slope of the leaky ReLU (0 = plain ReLU).
    ):
        super().__init__()
        self.resolution = resolution
        self.use_pixel_norm = pixel_norm
        self.dense_pixel_norm = pixel_norm and dense_pixel_norm
        self.pixel_norm_eps = pixel_norm_eps
        self.lrelu_slope = lrelu_slope
        sqrt2 = math.sqrt(2)
        if resolution == 4:
            self.dense = DenseTo4x4(in_features, out_channels, dense_gain, equalized_lr)
            self.conv = ConvLayer(out_channels, out_channels, 3, sqrt2, equalized_lr)
        else:
            self.conv0 = ConvLayer(in_features, out_channels, 3, sqrt2, equalized_lr, fused_up=fused_upscale)
            self.conv1 = ConvLayer(out_channels, out_channels, 3, sqrt2, equalized_lr)
        self.fused_upscale = fused_upscale
        self.torgb = ConvLayer(out_channels, img_channels, 1, torgb_gain, equalized_lr)

    @property
    def layers(self) -> list[tuple[nn.Module, bool]]:
        """This block's layers in order, each with whether a pixel norm follows its activation."""
        if self.resolution == 4:
            return [(self.dense, self.dense_pixel_norm), (self.conv, self.use_pixel_norm)]
        return [(self.conv0, self.use_pixel_norm), (self.conv1, self.use_pixel_norm)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Previous block's features [NCHW] (the 4x4 block: the latent [N, in]) -> [N, C, res, res]."""
        if self.resolution > 4 and not self.fused_upscale:
            x = F.interpolate(x, scale_factor=2, mode="nearest")  # [NC(2H)(2W)]
        for layer, norm in self.layers:
            x = F.leaky_relu(layer(x), self.lrelu_slope)  # [NCHW]
            if norm:
                x = pixel_norm(x, self.pixel_norm_eps)
        return x


class SynthesisNetwork(BlockLayout):
    """ws [N, 1, w_dim] -> image [N, C, H, W]: the 4x4 block, one block per doubling, ToRGB."""

    def __init__(
        self,
        w_dim: int,                # Size of the (normalised) latent fed to the first layer.
        img_resolution: int,       # Output resolution, a power of two >= 4.
        img_channels: int,         # Channels of the image.
        channels: Sequence[int],   # Feature channels of each block, from 4x4 up.
        lod: float = 0.0,          # Level of detail: 0 = full resolution; k + t fades 2^-k and 2^-(k+1).
        output_activation: str = "linear",  # 'linear' or 'tanh', applied to the image.
        **block_kwargs,            # Passed on to SynthesisBlock.
    ):
        super().__init__()
        log2 = int(round(math.log2(img_resolution))) if img_resolution > 0 else 0
        if img_resolution < 4 or 2**log2 != img_resolution:
            raise ValueError(f"ProGAN resolution must be a power of two >= 4, not {img_resolution}")
        if len(channels) != log2 - 1:
            raise ValueError(f"{len(channels)} channel widths given for {log2 - 1} blocks (4x4 to {img_resolution})")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"unknown output activation {output_activation!r} (use {', '.join(OUTPUT_ACTIVATIONS)})")
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.lod = float(lod)
        self.output_activation = output_activation
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        self.num_ws = 1
        in_features = w_dim
        for res, ch in zip(self.block_resolutions, channels, strict=True):
            setattr(self, f"b{res}", SynthesisBlock(in_features, ch, res, img_channels, **block_kwargs))
            in_features = ch

    @property
    def noise_layers(self) -> list[tuple[str, int]]:
        """ProGAN has no noise inputs."""
        return []

    @property
    def ws_resolutions(self) -> list[int]:
        """The one w feeds the 4x4 layer."""
        return [4]

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        noise: Sequence | None = None,
        generator: torch.Generator | None = None,
        transform: torch.Tensor | None = None,
        force_fp32: bool = False,
    ) -> torch.Tensor:
        """ws [N, 1, w_dim] -> image [N, C, H, W]; the noise and transform arguments must be empty."""
        check_synthesis_inputs(ws, self.num_ws, self.w_dim)
        if noise is not None and any(n is not None for n in noise):
            raise ValueError("a ProGAN model has no noise inputs")
        if transform is not None:
            raise ValueError("a ProGAN model has no input transform")
        x = ws[:, 0].to(torch.float32)  # [N, w_dim]

        # Main layers; at lod 0 only the last ToRGB contributes.
        img = None
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x)  # [NCHW]
            if self.lod <= 0:
                img = block.torgb(x) if i == last else None
                continue
            # Fade between levels as the original's 'linear' structure does:
            # img = lerp(ToRGB(x), upscale(img), clip(lod - level_lod, 0, 1)).
            y = block.torgb(x)  # [N,C,H,W]
            if img is None:
                img = y
            else:
                t = min(max(self.lod - (last - i), 0.0), 1.0)
                img = F.interpolate(img, scale_factor=2, mode="nearest")
                img = y + (img - y) * t

        # Output activation.
        if self.output_activation == "tanh":
            img = torch.tanh(img)
        return img


class LatentInput(nn.Module):
    """ProGAN's stand-in for a mapping network: z (+ c) -> the normalised latent as ws [N, 1, w_dim]."""

    def __init__(
        self,
        z_dim: int,                # Latent (z) size.
        c_dim: int,                # Label size, 0 = unconditional.
        normalize_latent: bool,    # Pixel-normalise the concatenated latent?
        eps: float,                # Epsilon of that normalisation.
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, z_dim + c_dim, 1
        self.normalize_latent = normalize_latent
        self.eps = eps
        self.register_buffer("w_avg", torch.zeros([self.w_dim]))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        # Concatenate the label after z, then normalise the whole vector.
        x = z.to(torch.float32)  # [NZ]
        if self.c_dim > 0:
            check_labels(c, self.c_dim)
            x = torch.cat([x, c.to(torch.float32)], dim=1)  # [N, Z+C]
        if self.normalize_latent:
            x = pixel_norm(x, self.eps)

        # One w; truncation toward w_avg (zero) for parity with the other families' controls.
        x = x.unsqueeze(1)  # [N1W]
        if truncation_psi != 1:
            x = x.clone()
            x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class Generator(nn.Module):
    """ProGAN generator: latent normalisation + synthesis, configured for one implementation."""

    def __init__(
        self,
        z_dim: int,                        # Latent (z) size.
        c_dim: int,                        # Label size appended to z, 0 = unconditional.
        img_resolution: int,               # Output resolution.
        channels: Sequence[int],           # Feature channels of each block, from 4x4 up.
        img_channels: int = 3,             # Channels of the image.
        normalize_latent: bool = True,     # Pixel-normalise the input latent?
        pixel_norm: bool = True,           # Pixel norm after every conv's activation?
        dense_pixel_norm: bool = True,     # ... and after the 4x4 dense layer's (akanimax: no)?
        pixel_norm_eps: float = 1e-8,      # Epsilon of every pixel norm.
        equalized_lr: bool = True,         # Equalised learning rate (run-time weight scaling)?
        dense_gain: float = math.sqrt(2),  # He gain of the 4x4 dense layer (TF original: sqrt(2)/4).
        torgb_gain: float = 1.0,           # He gain of the ToRGB convs (TF original: 1).
        lrelu_slope: float = 0.2,          # Leaky ReLU negative slope (0 = ReLU).
        fused_upscale: bool = False,       # Transposed-conv up-sampling (TF fused_scale=True)?
        output_activation: str = "linear", # 'linear' or 'tanh'.
        lod: float = 0.0,                  # Level of detail of a mid-training file (0 = full).
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, z_dim + c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.num_ws = 1
        self.mapping = LatentInput(z_dim, c_dim, normalize_latent, pixel_norm_eps)
        self.synthesis = SynthesisNetwork(
            w_dim=self.w_dim, img_resolution=img_resolution, img_channels=img_channels, channels=list(channels),
            lod=lod, output_activation=output_activation, dense_gain=dense_gain, torgb_gain=torgb_gain,
            equalized_lr=equalized_lr, fused_upscale=fused_upscale, pixel_norm=pixel_norm,
            dense_pixel_norm=dense_pixel_norm, pixel_norm_eps=pixel_norm_eps, lrelu_slope=lrelu_slope)

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, **synthesis_kwargs) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)
