"""StyleGAN3 generator (configs -T and -R), after "Alias-Free Generative Adversarial Networks"
(Karras et al., 2021).

The synthesis network treats every feature map as a band-limited continuous signal: Fourier features
at the input, then layers that modulate-convolve, upsample, apply a leaky ReLU at a higher rate and
low-pass back down, with cutoffs and stopbands that grow geometrically from layer to layer.

Module, parameter and buffer names follow NVIDIA's released checkpoints (`synthesis.L3_52_64.affine`,
`synthesis.input.transform`, `mapping.w_avg`, ...), so their state dicts load with
`load_state_dict(strict=True)` and the numbers match theirs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..ops import filtered_lrelu
from ..ops.filter_design import lowpass_filter, radial_lowpass_filter
from .common import check_synthesis_inputs
from .mapping import FullyConnectedLayer, MappingNetwork


def modulated_conv2d(
    x: torch.Tensor,                         # Input feature maps [NIHW].
    w: torch.Tensor,                         # Weights [OIkk].
    s: torch.Tensor,                         # Styles [NI].
    demodulate: bool = True,                 # Normalise each output channel's weights?
    padding: int = 0,                        # Padding on every side.
    input_gain: torch.Tensor | None = None,  # Scale of the input channels, [] or [NI].
) -> torch.Tensor:
    """Per-sample modulated convolution, run as one grouped convolution over the batch."""
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = w.shape

    # Pre-normalise weights and styles so that demodulation stays well-conditioned in fp16.
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()  # [OIkk]
        s = s * s.square().mean().rsqrt()  # [NI]

    # Modulate.
    w = w.unsqueeze(0) * s.reshape(batch_size, 1, in_channels, 1, 1)  # [NOIkk]

    # Demodulate: unit expected output variance per output channel.
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [NO]
        w = w * dcoefs.reshape(batch_size, out_channels, 1, 1, 1)  # [NOIkk]

    # Fold the input normalisation into the weights.
    if input_gain is not None:
        input_gain = input_gain.expand(batch_size, in_channels)  # [NI]
        w = w * input_gain.reshape(batch_size, 1, in_channels, 1, 1)  # [NOIkk]

    # One grouped convolution, one group per sample.
    x = x.reshape(1, batch_size * in_channels, *x.shape[2:])  # [1,(N*I),H,W]
    w = w.reshape(batch_size * out_channels, in_channels, kh, kw)  # [(N*O)Ikk]
    x = F.conv2d(x, w.to(x.dtype), padding=padding, groups=batch_size)  # [1,(N*O),H,W]
    return x.reshape(batch_size, out_channels, *x.shape[2:])  # [NOHW]


class SynthesisInput(nn.Module):
    """Fourier-feature input: band-limited sinusoids that w can rotate and translate (paper, Sec. 3.1).

    The features live in continuous coordinates, so a user transform (`transform` buffer, or the
    `transform` argument of a call) moves the whole image without breaking the band limit.
    """

    def __init__(
        self,
        w_dim: int,            # Intermediate latent (w) dimensionality.
        channels: int,         # Number of output channels.
        size: int,             # Output spatial size, including the margin.
        sampling_rate: float,  # Output sampling rate.
        bandwidth: float,      # Output bandwidth (the frequencies lie within this radius).
    ):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2])
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth

        # Random frequencies, denser towards the centre of the disc of radius `bandwidth`, and phases.
        freqs = torch.randn([channels, 2])  # [C2]
        radii = freqs.norm(dim=1, keepdim=True)  # [C1]
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth  # [C2]
        phases = torch.rand([channels]) - 0.5  # [C]

        # w -> (cos, sin, tx, ty) of a per-sample rotation and translation, identity at init.
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))

        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.register_buffer("transform", torch.eye(3, 3))  # User transform (already inverted).
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        """w [NW] -> features [NCHW]; `transform` [3,3] replaces the buffer for this call only."""
        user = self.transform if transform is None else transform.to(self.transform)
        transforms = user.unsqueeze(0)  # [1,3,3]
        freqs = self.freqs.unsqueeze(0)  # [1C2]
        phases = self.phases.unsqueeze(0)  # [1C]

        # Rotation and translation predicted from w, with the rotation normalised to unit length.
        t = self.affine(w)  # [N4]
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        m_r = torch.eye(3, device=w.device).unsqueeze(0).repeat([w.shape[0], 1, 1])  # [N33]
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = torch.eye(3, device=w.device).unsqueeze(0).repeat([w.shape[0], 1, 1])  # [N33]
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        transforms = m_r @ m_t @ transforms  # [N33]

        # Transform the frequencies and phases: a sinusoid seen through an affine map.
        phases = phases + (freqs @ transforms[:, :2, 2:]).squeeze(2)  # [NC]
        freqs = freqs @ transforms[:, :2, :2]  # [NC2]

        # Fade out the frequencies that the transform pushed near or past the Nyquist limit.
        headroom = self.sampling_rate / 2 - self.bandwidth
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / headroom).clamp(0, 1)  # [NC]

        # Sampling grid covering the output, margin included, in the units of the frequencies.
        theta = torch.eye(2, 3, device=w.device)  # [23]
        theta[0, 0] = 0.5 * self.size[0] / self.sampling_rate
        theta[1, 1] = 0.5 * self.size[1] / self.sampling_rate
        grids = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size[1], self.size[0]], align_corners=False)  # [1HW2]

        # Evaluate the sinusoids.
        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [NHWC]
        x = x + phases.unsqueeze(1).unsqueeze(2)  # [NHWC]
        x = torch.sin(x * (2 * math.pi))  # [NHWC]
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)  # [NHWC]

        # Mix the channels with a learned 1x1 linear map.
        weight = self.weight / math.sqrt(self.channels)
        x = x @ weight.t()  # [NHWC]
        return x.permute(0, 3, 1, 2)  # [NCHW]

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={self.size.tolist()}, "
                f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}")


class SynthesisLayer(nn.Module):
    """Modulated conv, then a leaky ReLU at `lrelu_upsampling` times the rate between lowpass filters.

    The up filter band-limits to the input cutoff, the down filter to the output cutoff, so the
    nonlinearity's new high frequencies are removed before resampling (paper, Sections 3.2-3.3).
    """

    def __init__(
        self,
        w_dim: int,                         # Intermediate latent (w) dimensionality.
        is_torgb: bool,                     # Is this the final ToRGB layer?
        is_critically_sampled: bool,        # Does this layer use critical sampling?
        use_fp16: bool,                     # Run in fp16 (on CUDA only)?
        in_channels: int,                   # Number of input channels.
        out_channels: int,                  # Number of output channels.
        in_size: int,                       # Input spatial size, margin included.
        out_size: int,                      # Output spatial size, margin included.
        in_sampling_rate: int,              # Input sampling rate.
        out_sampling_rate: int,             # Output sampling rate.
        in_cutoff: float,                   # Input cutoff frequency.
        out_cutoff: float,                  # Output cutoff frequency.
        in_half_width: float,               # Input transition band half-width.
        out_half_width: float,              # Output transition band half-width.
        conv_kernel: int = 3,               # Convolution kernel size (ignored by ToRGB).
        filter_size: int = 6,               # Filter taps per unit of resampling factor.
        lrelu_upsampling: int = 2,          # Rate increase around the nonlinearity (ignored by ToRGB).
        use_radial_filters: bool = False,   # Radially symmetric down filter where not critically sampled?
        conv_clamp: float | None = 256,     # Clamp of the output values, None = off.
        magnitude_ema_beta: float = 0.999,  # Decay of the tracked input magnitude during training.
    ):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        # Learned parameters and the tracked input magnitude.
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # Upsampling filter: band-limit to the input cutoff at the temporary rate.
        self.up_factor = int(np.rint(self.tmp_sampling_rate / in_sampling_rate))
        if in_sampling_rate * self.up_factor != self.tmp_sampling_rate:
            raise ValueError("the temporary sampling rate must be an integer multiple of the input rate")
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", self.design_lowpass_filter(
            numtaps=self.up_taps, cutoff=in_cutoff, width=in_half_width * 2, fs=self.tmp_sampling_rate))

        # Downsampling filter: band-limit to the output cutoff, radially where rotations must survive.
        self.down_factor = int(np.rint(self.tmp_sampling_rate / out_sampling_rate))
        if out_sampling_rate * self.down_factor != self.tmp_sampling_rate:
            raise ValueError("the temporary sampling rate must be an integer multiple of the output rate")
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer("down_filter", self.design_lowpass_filter(
            numtaps=self.down_taps, cutoff=out_cutoff, width=out_half_width * 2, fs=self.tmp_sampling_rate,
            radial=self.down_radial))

        # Padding that yields `out_size` samples centred like the input (symmetric convention, App. C.3).
        pad_total = (self.out_size - 1) * self.down_factor + 1  # Size wanted before downsampling.
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor  # Size after upsampling.
        pad_total += self.up_taps + self.down_taps - 2  # Samples the two filters consume.
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]

    @staticmethod
    def design_lowpass_filter(
        numtaps: int,          # Taps per axis; 1 means no filter.
        cutoff: float,         # Cutoff frequency.
        width: float,          # Full transition band width.
        fs: float,             # Sampling rate.
        radial: bool = False,  # Radially symmetric 2-D filter instead of a separable 1-D one?
    ) -> torch.Tensor | None:
        """The layer's filter as float32 ([taps] separable or [taps, taps] radial), None for identity."""
        if numtaps == 1:
            return None
        design = radial_lowpass_filter if radial else lowpass_filter
        return torch.as_tensor(design(numtaps, cutoff, width, fs), dtype=torch.float32)

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        force_fp32: bool = False,
        update_emas: bool = False,
    ) -> torch.Tensor:
        # Track the input magnitude while training; normalise by it.
        if update_emas:
            magnitude_cur = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude_cur.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        # Styles; ToRGB folds its weight gain into them instead of demodulating.
        styles = self.affine(w)  # [NI]
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel ** 2))

        # Modulated convolution.
        use_fp16 = self.use_fp16 and not force_fp32 and x.device.type == "cuda"
        dtype = torch.float16 if use_fp16 else torch.float32
        x = modulated_conv2d(x.to(dtype), self.weight, styles, demodulate=not self.is_torgb,
                             padding=self.conv_kernel - 1, input_gain=input_gain)  # [NOHW]

        # Bias, upsample, leaky ReLU, clamp, downsample (linear for ToRGB).
        gain = 1 if self.is_torgb else math.sqrt(2)
        slope = 1 if self.is_torgb else 0.2
        return filtered_lrelu(x, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(x.dtype),
                              up=self.up_factor, down=self.down_factor, padding=self.padding,
                              gain=gain, slope=slope, clamp=self.conv_clamp)  # [NOHW]

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, is_torgb={self.is_torgb}, "
                f"is_critically_sampled={self.is_critically_sampled}, use_fp16={self.use_fp16}, "
                f"in_sampling_rate={self.in_sampling_rate:g}, out_sampling_rate={self.out_sampling_rate:g}, "
                f"in_cutoff={self.in_cutoff:g}, out_cutoff={self.out_cutoff:g}, "
                f"in_half_width={self.in_half_width:g}, out_half_width={self.out_half_width:g}, "
                f"in_size={self.in_size.tolist()}, out_size={self.out_size.tolist()}, "
                f"in_channels={self.in_channels}, out_channels={self.out_channels}")


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, C, H, W]: the input and `num_layers + 1` synthesis layers.

    Cutoffs and minimum stopbands grow geometrically from the first layer to the last `num_critical`
    layers, which are critically sampled at the output resolution (paper, Section 3.2 and Figure 4).
    """

    def __init__(
        self,
        w_dim: int,                           # Intermediate latent (w) dimensionality.
        img_resolution: int,                  # Output image resolution.
        img_channels: int,                    # Number of colour channels.
        channel_base: int = 32768,            # Overall multiplier for the number of channels.
        channel_max: int = 512,               # Maximum number of channels in any layer.
        num_layers: int = 14,                 # Number of layers, excluding the input and ToRGB.
        num_critical: int = 2,                # Number of critically sampled layers at the end.
        first_cutoff: float = 2,              # Cutoff frequency of the first layer.
        first_stopband: float = 2 ** 2.1,     # Minimum stopband of the first layer.
        last_stopband_rel: float = 2 ** 0.3,  # Minimum stopband of the last layer, relative to its cutoff.
        margin_size: int = 10,                # Samples added beyond the image on each side.
        output_scale: float = 0.25,           # Scale of the output image.
        num_fp16_res: int = 4,                # Run the highest-rate layers in fp16 (on CUDA only).
        **layer_kwargs,                       # Passed to SynthesisLayer.
    ):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res
        self.noise_layers: list[str] = []

        # Geometric progression of the cutoffs and minimum stopbands.
        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents

        # Sampling rates (powers of two above twice the stopband), transition bands, sizes, channels.
        sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
        sizes = sampling_rates + margin_size * 2
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels
        self.cutoffs, self.stopbands = cutoffs, stopbands
        self.sampling_rates, self.half_widths = sampling_rates, half_widths

        # The Fourier-feature input.
        self.input = SynthesisInput(w_dim=w_dim, channels=int(channels[0]), size=int(sizes[0]),
                                    sampling_rate=sampling_rates[0], bandwidth=cutoffs[0])

        # The layers, named L{index}_{size}_{channels} as in the released checkpoints.
        self.layer_names: list[str] = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim,
                is_torgb=idx == num_layers,
                is_critically_sampled=idx >= num_layers - num_critical,
                use_fp16=bool(sampling_rates[idx] * 2 ** num_fp16_res > img_resolution),
                in_channels=int(channels[prev]),
                out_channels=int(channels[idx]),
                in_size=int(sizes[prev]),
                out_size=int(sizes[idx]),
                in_sampling_rate=int(sampling_rates[prev]),
                out_sampling_rate=int(sampling_rates[idx]),
                in_cutoff=cutoffs[prev],
                out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev],
                out_half_width=half_widths[idx],
                **layer_kwargs,
            )
            name = f"L{idx}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(
        self,
        ws: torch.Tensor,                          # Per-layer latents [N, num_ws, w_dim].
        noise_mode: str = "const",                 # Accepted for the engine's contract; StyleGAN3 has no noise.
        noise: list | None = None,                 # Accepted and ignored, as noise_mode.
        generator: torch.Generator | None = None,  # Accepted and ignored, as noise_mode.
        transform: torch.Tensor | None = None,     # [3,3] inverted user transform replacing the buffer, or None.
        force_fp32: bool = False,                  # Stay in float32 on CUDA too?
        update_emas: bool = False,                 # Track the layers' input magnitudes (training)?
    ) -> torch.Tensor:
        """Render float32 images [NCHW]; a `transform` applies to this call only, the buffer stays."""
        check_synthesis_inputs(ws, self.num_ws, self.w_dim, network="StyleGAN3")
        if transform is not None and tuple(transform.shape) != (3, 3):
            raise ValueError(f"transform must be a 3x3 matrix, got shape {list(transform.shape)}")

        # One w for the input, one per layer.
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0], transform=transform)  # [NCHW]
        for name, w in zip(self.layer_names, ws[1:], strict=True):
            x = getattr(self, name)(x, w, force_fp32=force_fp32, update_emas=update_emas)  # [NCHW]

        # Scale to the image range.
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)  # [NCHW]

    @property
    def ws_resolutions(self) -> list[int]:
        """The sampling rate each ws drives: the input's, then each layer's (the last is ToRGB)."""
        rates = [int(r) for r in self.sampling_rates]
        return [rates[0], *rates]

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, num_layers={self.num_layers}, "
                f"num_critical={self.num_critical}, margin_size={self.margin_size}, "
                f"num_fp16_res={self.num_fp16_res}")


class Generator(nn.Module):
    """z (+ c) -> image: the StyleGAN3 mapping network followed by the synthesis network."""

    def __init__(
        self,
        z_dim: int,                          # Input latent (z) dimensionality.
        c_dim: int,                          # Conditioning label (c) dimensionality, 0 = no label.
        w_dim: int,                          # Intermediate latent (w) dimensionality.
        img_resolution: int,                 # Output resolution.
        img_channels: int,                   # Number of output colour channels.
        mapping_kwargs: dict | None = None,  # Passed to MappingNetwork.
        **synthesis_kwargs,                  # Passed to SynthesisNetwork.
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution,
                                          img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws

        # StyleGAN3's mapping defaults differ from StyleGAN2's: 2 layers, slower w_avg decay.
        mapping_kwargs = {"num_layers": 2, "w_avg_beta": 0.998, **(mapping_kwargs or {})}
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **mapping_kwargs)

    def forward(
        self,
        z: torch.Tensor,                       # Latents [N, z_dim].
        c: torch.Tensor | None = None,         # One-hot labels [N, c_dim], for conditional models.
        truncation_psi: float = 1.0,           # Truncation strength toward w_avg, 1 = none.
        truncation_cutoff: int | None = None,  # Truncate only the first ws, None = all.
        update_emas: bool = False,             # Track w_avg and the input magnitudes (training)?
        **synthesis_kwargs,                    # Passed to SynthesisNetwork.forward.
    ) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)  # [NLW]
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)  # [NCHW]
