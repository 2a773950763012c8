"""StyleGAN2 generator (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

Modulated/demodulated convolutions, per-layer noise, FIR up-sampling and the `skip`, `orig` and
`resnet` output architectures, for conditional and unconditional models. Module, parameter and
buffer names follow NVIDIA's checkpoints so that their state dicts load as they are. Layers marked
fp16 run in half precision on CUDA only; on the CPU everything is float32.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..ops import ACTIVATIONS, bias_act, conv2d_resample, upsample2d
from .common import BlockLayout, check_synthesis_inputs
from .mapping import FullyConnectedLayer, MappingNetwork

NoiseArg = Sequence[torch.Tensor | None] | None


def fir_filter_2d(taps: Sequence[float] = (1, 3, 3, 1)) -> torch.Tensor:
    """The normalised 2-D outer product of a 1-D FIR kernel, as StyleGAN2 stores its resample filter."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = f.ger(f)  # [HW]
    return f / f.sum()


def modulated_conv2d(
    x: torch.Tensor,            # Input activations, [NIHW].
    weight: torch.Tensor,       # Convolution weights, [OIkk].
    styles: torch.Tensor,       # Per-sample input-channel scales, [NI].
    noise: torch.Tensor | None = None,  # Noise to add after demodulation, [N1HW] (already scaled).
    up: int = 1,                # Integer up-sampling factor.
    padding: int = 0,           # Padding of the convolution.
    resample_filter: torch.Tensor | None = None,  # FIR filter for up-sampling.
    demodulate: bool = True,    # Normalise each output channel to unit expected variance?
    flip_weight: bool = True,   # False = true convolution (used when up-sampling).
    fused: bool = True,         # False = scale the activations instead of the weights (same result).
) -> torch.Tensor:
    """Style-modulated convolution as one grouped convolution over the batch, or (`fused=False`, what
    training uses) as one shared convolution between per-sample input and output scalings, which
    avoids building a weight per sample and is several times faster for training batches."""
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape

    if not fused:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, padding=padding, flip_weight=flip_weight)
        if demodulate:
            # sum over (i, kh, kw) of (weight * style_i)^2, without the per-sample weights.
            dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [NO]
            x = x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    # Keep fp16 in range: rescale weights and styles before they multiply.
    if x.dtype == torch.float16 and demodulate:
        w_max = weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True)
        weight = weight * (1 / math.sqrt(in_channels * kh * kw) / w_max)
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    # Modulate and demodulate the weights per sample.
    w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)  # [NOIkk]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [NO]
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)  # [NOIkk]

    # Convolve every sample with its own weights as one grouped convolution.
    x = x.reshape(1, -1, *x.shape[2:])  # [1,N*I,H,W]
    w = w.reshape(-1, in_channels, kh, kw).to(x.dtype)  # [N*O,I,k,k]
    x = conv2d_resample(x, w, f=resample_filter, up=up, padding=padding, groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])  # [NOHW]
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


class Conv2dLayer(nn.Module):
    """Plain equalised-lr convolution with optional FIR up- or downsampling: the generator's `resnet`
    skip path and every layer of the discriminator."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,             # Add a bias?
        activation: str = "linear",    # Activation after the bias.
        up: int = 1,                   # Integer up-sampling factor.
        down: int = 1,                 # Integer down-sampling factor.
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,  # Clamp the output to +-this value, None = no clamp.
    ):
        super().__init__()
        self.activation = activation
        self.up, self.down = up, down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", fir_filter_2d(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation].gain
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down,
                            padding=self.padding, flip_weight=(self.up == 1))
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (+ optional 2x up-sampling) -> noise -> bias -> activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,               # Output resolution of this layer.
        kernel_size: int = 3,
        up: int = 1,                   # Integer up-sampling factor.
        use_noise: bool = True,        # Add per-pixel noise?
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,  # Clamp the output to +-this value, None = no clamp.
    ):
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", fir_filter_2d(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation].gain
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.fused_modconv = True  # see modulated_conv2d; trainers switch it off

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "const",
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        gain: float = 1,
    ) -> torch.Tensor:
        styles = self.affine(w)  # [NI]
        n = None
        if self.use_noise:
            n = layer_noise(x.shape[0], self.resolution, self.noise_const, noise_mode, noise, generator)
            if n is not None:
                n = n * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise=n, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused=self.fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)


def layer_noise(
    batch_size: int,
    resolution: int,
    noise_const: torch.Tensor,
    noise_mode: str,
    noise: torch.Tensor | None,
    generator: torch.Generator | None,
) -> torch.Tensor | None:
    """Unit-variance noise for one layer, [N1HW] or [11HW], before its learned strength scales it."""
    if noise is not None:
        return noise.to(device=noise_const.device, dtype=torch.float32)
    if noise_mode == "const":
        return noise_const.reshape(1, 1, resolution, resolution)
    if noise_mode == "random":
        return torch.randn([batch_size, 1, resolution, resolution], generator=generator,
                           device=noise_const.device)
    if noise_mode == "none":
        return None
    raise ValueError(f"unknown noise mode {noise_mode!r}: use 'const', 'random' or 'none'")


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to RGB, without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.fused_modconv = True  # see modulated_conv2d; trainers switch it off

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain  # [NI]
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=self.fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const | up-conv) -> conv -> (toRGB), with the chosen output architecture."""

    def __init__(
        self,
        in_channels: int,              # Input channels, 0 = first block (learned constant input).
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",    # 'orig', 'skip' or 'resnet'.
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,        # Run this block in fp16 (honoured on CUDA only)?
        **layer_kwargs,                # Passed on to SynthesisLayer.
    ):
        super().__init__()
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"unknown StyleGAN2 architecture {architecture!r}")
        self.in_channels = in_channels
        self.resolution = resolution
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", fir_filter_2d(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution,
                                    conv_clamp=conv_clamp, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    @property
    def noise_layers(self) -> list[str]:
        """Names of this block's layers that take noise, in order."""
        return [name for name in ("conv0", "conv1") if hasattr(self, name) and getattr(self, name).use_noise]

    def forward(self, x, img, ws, noise_mode="const", noise=None, generator=None, force_fp32=False):
        w_iter = iter(ws.unbind(dim=1))
        noise_iter = iter(noise if noise is not None else [None] * len(self.noise_layers))
        dtype = torch.float16 if self.use_fp16 and ws.device.type == "cuda" and not force_fp32 else torch.float32
        kw = dict(noise_mode=noise_mode, generator=generator)

        # Main layers.
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])  # [NCHW]
            x = self.conv1(x, next(w_iter), noise=next(noise_iter, None), **kw)
        elif self.architecture == "resnet":
            x = x.to(dtype)
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise=next(noise_iter, None), **kw)
            x = self.conv1(x, next(w_iter), noise=next(noise_iter, None), gain=math.sqrt(0.5), **kw)
            x = y + x
        else:
            x = x.to(dtype)
            x = self.conv0(x, next(w_iter), noise=next(noise_iter, None), **kw)
            x = self.conv1(x, next(w_iter), noise=next(noise_iter, None), **kw)

        # Output image.
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter)).to(torch.float32)
            img = y if img is None else img + y
        return x, img


def channel_kwargs(channels: Mapping[int, int]) -> dict:
    """SynthesisNetwork arguments for a channel table {resolution: channels} of one generator.

    `channel_base`/`channel_max` when `min(channel_base // res, channel_max)` reproduces the table,
    else the table itself as `block_channels` (keys as strings, so the config survives JSON).
    """
    table = {int(res): int(ch) for res, ch in channels.items()}
    channel_max = max(table.values())
    for base in sorted({ch * res for res, ch in table.items()}):
        if all(min(base // res, channel_max) == ch for res, ch in table.items()):
            return {"channel_base": base, "channel_max": channel_max}
    return {"block_channels": {str(res): ch for res, ch in sorted(table.items())}}


class SynthesisNetwork(BlockLayout):
    """ws [N, num_ws, w_dim] -> image [N, C, H, W] through one block per resolution from 4x4 up."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,           # Output resolution (a power of two >= 4).
        img_channels: int,
        channel_base: int = 32768,     # Overall multiplier for the number of channels.
        channel_max: int = 512,        # Maximum number of channels in any layer.
        num_fp16_res: int = 0,         # Use fp16 for the N highest resolutions (CUDA only).
        block_channels: Mapping[int | str, int] | None = None,  # Channels per resolution, instead of base/max.
        **block_kwargs,                # Passed on to SynthesisBlock.
    ):
        super().__init__()
        log2 = int(np.log2(img_resolution))
        if img_resolution < 4 or 2**log2 != img_resolution:
            raise ValueError(f"StyleGAN2 resolution must be a power of two >= 4, not {img_resolution}")
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        if block_channels is None:
            channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        else:
            channels = {int(res): int(ch) for res, ch in block_channels.items()}  # JSON gives str keys
            missing = [res for res in self.block_resolutions if res not in channels]
            if missing:
                raise ValueError(f"block_channels has no entry for resolution(s) {missing}")
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                in_channels=channels[res // 2] if res > 4 else 0, out_channels=channels[res], w_dim=w_dim,
                resolution=res, img_channels=img_channels, is_last=(res == img_resolution),
                use_fp16=(res >= fp16_resolution), **block_kwargs)
            self.num_ws += block.num_conv
            if block.is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    @property
    def ws_resolutions(self) -> list[int]:
        """The resolution each of the num_ws ws feeds (a toRGB w is counted with the next block)."""
        return [b.resolution for b in self.blocks for _ in range(b.num_conv)] + [self.img_resolution]

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        noise: NoiseArg = None,
        generator: torch.Generator | None = None,
        transform: torch.Tensor | None = None,
        force_fp32: bool = False,
    ) -> torch.Tensor:
        """Args as `Model.synthesize`; `noise` lists unit noise per noise layer (None = use noise_mode)."""
        check_synthesis_inputs(ws, self.num_ws, self.w_dim, noise, len(self.noise_layers))
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = n_idx = 0
        for block in self.blocks:
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            k = len(block.noise_layers)
            block_noise = noise[n_idx:n_idx + k] if noise is not None else None
            x, img = block(x, img, block_ws, noise_mode, block_noise, generator, force_fp32)
            w_idx += block.num_conv
            n_idx += k
        return img


class Generator(nn.Module):
    """Mapping + synthesis, constructed from the arguments NVIDIA's pickles record."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int = 3,
        mapping_kwargs: dict | None = None,
        **synthesis_kwargs,
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution,
                                          img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **(mapping_kwargs or {}))
