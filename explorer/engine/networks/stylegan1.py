"""StyleGAN generator (Karras et al. 2019, "A Style-Based Generator Architecture for Generative
Adversarial Networks").

Mapping network f: z -> w (pixel-normalised z through an MLP), then a synthesis network g that
starts from a learned 4x4 constant and doubles the resolution per block. Every synthesis layer is

    [3x3 conv | 2x up-sample + 3x3 conv + blur] -> + noise * strength -> + bias -> leaky ReLU
    -> AdaIN(x, y = A(w)) = y_scale * instance_norm(x) + y_bias

with two layers, hence two ws, per resolution; a 1x1 ToRGB conv turns the last block into the image.

One module serves the NVlabs TF pickles and rosinality's PyTorch checkpoints. Their layers compute
the same thing up to a few constants (gains, epsilons, where a bias sits); those are constructor
arguments, so each loader only renames and re-lays out the file's tensors. Every conv and dense
weight is stored unit-scale and scaled at run time (the equalised learning rate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .common import BlockLayout, check_synthesis_inputs
from .mapping import FullyConnectedLayer, MappingNetwork
from .stylegan2 import fir_filter_2d, layer_noise

NoiseArg = Sequence[torch.Tensor | None] | None

LRELU_SLOPE = 0.2  # Leaky ReLU slope everywhere; StyleGAN (1) applies no gain after it.


def default_channels(img_resolution: int) -> list[int]:
    """NVlabs' default widths (fmap_base 8192, fmap_max 512), also rosinality's table: 4..img_resolution."""
    log2 = int(math.log2(img_resolution))
    return [min(16384 // 2**i, 512) for i in range(2, log2 + 1)]


def blur_kernel(taps: Sequence[float], channels: int) -> torch.Tensor:
    """The normalised outer product of 1-D taps, one copy per channel: [C, 1, k, k]."""
    f = fir_filter_2d(taps)  # [kk]
    return f.reshape(1, 1, *f.shape).repeat(channels, 1, 1, 1)


class StyleLayer(nn.Module):
    """One synthesis layer: conv -> (blur) -> noise -> bias -> leaky ReLU -> AdaIN with the layer's w."""

    def __init__(
        self,
        in_channels: int,                  # Input feature maps.
        out_channels: int,                 # Output feature maps.
        w_dim: int,                        # Dimensionality of w.
        resolution: int,                   # Output resolution.
        conv: str = "conv",                # 'const': no conv (the layer on the learned constant); 'conv': 3x3;
                                           # 'up': 2x nearest up-sampling + 3x3; 'fused_up': the same as one
                                           # 4x4 transposed conv of stride 2 built from the 3x3 weight.
        blur_filter: Sequence[float] | None = (1, 2, 1),  # Blur taps after up-sampling, None = no blur.
        fused_up_gain: float = 1.0,        # Gain of the fused 4x4 kernel (rosinality averages its taps: 0.25).
        bias_before_blur: bool = False,    # Add the up-conv's bias before the blur (rosinality), not after (TF).
        use_noise: bool = True,            # Add per-pixel noise?
        noise_wscale: bool = False,        # Scale noise strengths by sqrt(2 / channels) at run time (rosinality).
        style_gain: float = 1.0,           # Gain of the affine w -> style layer (TF 1, rosinality sqrt(2)).
        style_scale_offset: float = 1.0,   # Added to the style scale: TF stores scale - 1, rosinality the scale.
        norm_eps: float = 1e-8,            # Instance-norm epsilon (TF 1e-8, torch's InstanceNorm2d 1e-5).
    ):
        super().__init__()
        if conv not in ("const", "conv", "up", "fused_up"):
            raise ValueError(f"unknown StyleGAN layer kind {conv!r}")
        self.conv = conv
        self.resolution = resolution
        self.out_channels = out_channels
        self.use_noise = use_noise
        self.fused_up_gain = fused_up_gain
        self.bias_before_blur = bias_before_blur
        self.style_scale_offset = style_scale_offset
        self.norm_eps = norm_eps

        # Convolution weights (He-scaled at run time) and, after up-sampling, the blur.
        if conv != "const":
            self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))  # [OIkk]
            self.weight_gain = math.sqrt(2) / math.sqrt(in_channels * 3 * 3)
        if conv in ("up", "fused_up") and blur_filter is not None:
            self.register_buffer("blur_kernel", blur_kernel(blur_filter, out_channels))  # [O1kk]
        else:
            self.blur_kernel = None

        # Noise input, bias and the style affine A: w -> (scale, bias) per channel.
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([out_channels]))
            self.noise_gain = math.sqrt(2 / out_channels) if noise_wscale else 1.0
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.affine = FullyConnectedLayer(w_dim, 2 * out_channels)
        self.affine.weight_gain = style_gain / math.sqrt(w_dim)
        with torch.no_grad():
            self.affine.bias[:out_channels] = 1 - style_scale_offset  # Identity style at init.

    def _convolve(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain  # [OIkk]
        if self.conv == "conv":
            return F.conv2d(x, w, padding=1)
        if self.conv == "up":
            x = F.interpolate(x, scale_factor=2, mode="nearest")  # [NI,2H,2W]
            return F.conv2d(x, w, padding=1)
        # Fused: pad the 3x3 kernel to 4x4 and sum its four 1-pixel shifts; a stride-2 transposed
        # conv with it up-samples and convolves in one go.
        w = F.pad(w, [1, 1, 1, 1])  # [OI55]
        w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]  # [OI44]
        w = w * self.fused_up_gain
        return F.conv_transpose2d(x, w.transpose(0, 1), stride=2, padding=1)  # [NO,2H,2W]

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        k = self.blur_kernel.shape[-1]
        x = F.pad(x, [(k - 1) // 2, k // 2, (k - 1) // 2, k // 2])  # 'SAME' padding
        return F.conv2d(x, self.blur_kernel.to(x.dtype), groups=self.out_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """x [NIHW] (or the tiled constant), w [N, w_dim], noise: unit noise [N|1,1,H,W] or None."""
        bias = self.bias.to(x.dtype).reshape(1, -1, 1, 1)

        # Convolution, with the blur after an up-sampling.
        if self.conv != "const":
            x = self._convolve(x)  # [NOHW]
        if self.blur_kernel is not None:
            if self.bias_before_blur:
                x = x + bias
            x = self._blur(x)

        # Noise, bias, activation.
        if noise is not None:
            strength = self.noise_strength * self.noise_gain
            x = x + noise.to(x.dtype) * strength.reshape(1, -1, 1, 1)
        if self.blur_kernel is None or not self.bias_before_blur:
            x = x + bias
        x = F.leaky_relu(x, LRELU_SLOPE)

        # AdaIN: normalise each feature map, then scale and shift it by the style of w.
        x = x - x.mean(dim=[2, 3], keepdim=True)
        x = x * (x.square().mean(dim=[2, 3], keepdim=True) + self.norm_eps).rsqrt()
        styles = self.affine(w)  # [N,2O]
        scale = styles[:, :self.out_channels] + self.style_scale_offset  # [NO]
        shift = styles[:, self.out_channels:]  # [NO]
        return x * scale.reshape(*scale.shape, 1, 1) + shift.reshape(*shift.shape, 1, 1)

    def extra_repr(self) -> str:
        return f"conv={self.conv}, out_channels={self.out_channels}, resolution={self.resolution}"


class ToRGB(nn.Module):
    """1x1 conv from feature maps to image channels, linear output."""

    def __init__(self, in_channels: int, img_channels: int, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn([img_channels, in_channels, 1, 1]))  # [OI11]
        self.bias = nn.Parameter(torch.zeros([img_channels]))
        self.weight_gain = gain / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.weight_gain, self.bias)


class SynthesisBlock(nn.Module):
    """One resolution: (learned constant | up-sampling layer) -> 3x3 layer -> (ToRGB in the last block)."""

    def __init__(
        self,
        in_channels: int,                  # Input feature maps, 0 = the first block (learned constant).
        out_channels: int,                 # Feature maps of this block.
        w_dim: int,                        # Dimensionality of w.
        resolution: int,                   # Resolution of this block.
        img_channels: int,                 # Image channels of the ToRGB.
        is_last: bool,                     # Make the image here?
        fused_up: bool = False,            # Up-sample with the fused transposed conv?
        share_block_noise: bool = False,   # Both layers add the same noise map (rosinality).
        torgb_gain: float = 1.0,           # Gain of the ToRGB 1x1 conv (TF 1, rosinality sqrt(2)).
        **layer_kwargs,                    # Passed on to StyleLayer.
    ):
        super().__init__()
        self.resolution = resolution
        self.is_last = is_last
        self.share_block_noise = share_block_noise
        first = in_channels == 0
        if first:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))  # [CHW]
        kind = "const" if first else ("fused_up" if fused_up else "up")
        self.conv0 = StyleLayer(in_channels, out_channels, w_dim, resolution, conv=kind, **layer_kwargs)
        self.conv1 = StyleLayer(out_channels, out_channels, w_dim, resolution, conv="conv", **layer_kwargs)
        if is_last:
            self.torgb = ToRGB(out_channels, img_channels, gain=torgb_gain)

    @property
    def layers(self) -> list[StyleLayer]:
        return [self.conv0, self.conv1]

    @property
    def noise_layers(self) -> list[str]:
        """Names of this block's layers that take noise, in order."""
        return [name for name, layer in (("conv0", self.conv0), ("conv1", self.conv1)) if layer.use_noise]

    def forward(self, x, ws, noise_mode="const", noise=None, generator=None):
        """x [NIHW] (None in the first block), ws [N,2,w_dim] -> x [NCHW] (and the image in the last)."""
        if x is None:
            x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])  # [NCHW]
        given = list(noise) if noise is not None else [None, None]
        first_map = None
        for i, layer in enumerate(self.layers):
            n = None
            if layer.use_noise:
                if given[i] is None and self.share_block_noise and first_map is not None:
                    n = first_map  # The block's one map: the first layer's (given, drawn or constant).
                else:
                    n = layer_noise(ws.shape[0], self.resolution, layer.noise_const, noise_mode, given[i], generator)
                first_map = n if first_map is None else first_map
            x = layer(x, ws[:, i], noise=n)
        if self.is_last:
            return x, self.torgb(x)
        return x, None


class SynthesisNetwork(BlockLayout):
    """ws [N, num_ws, w_dim] -> image [N, C, H, W]: two ws per resolution from 4x4 up, image at the last."""

    def __init__(
        self,
        w_dim: int,                              # Dimensionality of w.
        img_resolution: int,                     # Output resolution (a power of two >= 4).
        img_channels: int = 3,                   # Image channels.
        channels: Sequence[int] | None = None,   # Feature maps per block, 4x4 up to img_resolution (None: NVlabs').
        fused_up_min_res: int | None = 128,      # Up-sample with the fused transposed conv at and above this
                                                 # resolution (None = never); NVlabs' 'auto' and rosinality: 128.
        share_block_noise: bool = False,         # Both layers of a block add the same noise map (rosinality).
        torgb_gain: float = 1.0,                 # Gain of the ToRGB 1x1 conv (TF 1, rosinality sqrt(2)).
        **layer_kwargs,                          # Passed on to StyleLayer (blur, noise, style and norm constants).
    ):
        super().__init__()
        log2 = int(math.log2(img_resolution)) if img_resolution > 0 else 0
        if img_resolution < 4 or 2**log2 != img_resolution:
            raise ValueError(f"StyleGAN resolution must be a power of two >= 4, not {img_resolution}")
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = list(channels) if channels is not None else default_channels(img_resolution)
        if len(channels) != len(self.block_resolutions):
            raise ValueError(f"channels needs one width per block {self.block_resolutions}, got {channels}")

        for i, res in enumerate(self.block_resolutions):
            block = SynthesisBlock(
                in_channels=channels[i - 1] if i > 0 else 0,
                out_channels=channels[i],
                w_dim=w_dim,
                resolution=res,
                img_channels=img_channels,
                is_last=(res == img_resolution),
                fused_up=fused_up_min_res is not None and res >= fused_up_min_res,
                share_block_noise=share_block_noise,
                torgb_gain=torgb_gain,
                **layer_kwargs,
            )
            setattr(self, f"b{res}", block)
        self.num_ws = 2 * len(self.block_resolutions)

    @property
    def ws_resolutions(self) -> list[int]:
        """The resolution each of the num_ws ws drives: two per block."""
        return [res for res in self.block_resolutions for _ in range(2)]

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        noise: NoiseArg = None,
        generator: torch.Generator | None = None,
        transform: torch.Tensor | None = None,
        force_fp32: bool = False,
    ) -> torch.Tensor:
        """Args as `Model.synthesize`; `noise` lists unit noise per noise layer (None = use noise_mode).
        `transform` and `force_fp32` are accepted for the common interface: StyleGAN has no input
        transform and always runs in float32."""
        check_synthesis_inputs(ws, self.num_ws, self.w_dim, noise, len(self.noise_layers))
        ws = ws.to(torch.float32)
        x = img = None
        n_idx = 0
        for i, block in enumerate(self.blocks):
            k = len(block.noise_layers)
            block_noise = noise[n_idx:n_idx + k] if noise is not None and k > 0 else None
            x, img = block(x, ws[:, 2 * i:2 * i + 2], noise_mode, block_noise, generator)
            n_idx += k
        return img


class Generator(nn.Module):
    """Mapping + synthesis; the constructor arguments are what `Checkpoint.config` records."""

    def __init__(
        self,
        z_dim: int,                        # Input latent (z) dimensionality.
        w_dim: int,                        # Intermediate latent (w) dimensionality.
        img_resolution: int,               # Output resolution.
        img_channels: int = 3,             # Output image channels.
        c_dim: int = 0,                    # Conditioning labels: unsupported for StyleGAN (1), must be 0.
        mapping_kwargs: dict | None = None,  # Passed on to MappingNetwork (num_layers, layer_features, lr_multiplier).
        **synthesis_kwargs,                # Passed on to SynthesisNetwork.
    ):
        super().__init__()
        if c_dim != 0:
            raise ValueError("conditional StyleGAN (1) generators are not supported")
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution,
                                          img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=0, w_dim=w_dim, num_ws=self.num_ws,
                                      **{"activation": "lrelu", **(mapping_kwargs or {})})

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)
