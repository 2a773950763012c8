"""How aliasing shows: power spectra of images and feature maps, and the texture-sticking image.

A generator that aliases leaves energy where its band limit says there should be none, and details
that stick to pixel coordinates instead of moving with the content. The StyleGAN3 paper shows the
first with Kaiser-windowed power spectra in dB (and their radial averages), the second by averaging
many frames of a small latent walk: equivariant details move and blur, sticking ones stay sharp.
Spectra of two models for the same request (`compare_spectra`) show how their families differ.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .equivariance import untransform
from .model import Model, ModelInfo
from .render import RenderRequest, capture_layers, frames_to_uint8, request_ws, synthesize_picture
from .video import Progress, ProgressMeter

MAPS_PER_FFT = 16  # maps transformed together by `power_spectrum`


@dataclass
class Spectrum:
    """A centred 2-D power spectrum: zero frequency at [H // 2, W // 2] of `power_db`."""

    power_db: np.ndarray  # [H, W] float64, 10 log10 of the power
    freq_y: np.ndarray    # [H] cycles per pixel, ascending, 0 at index H // 2
    freq_x: np.ndarray    # [W] cycles per pixel, ascending, 0 at index W // 2


def _as_maps(x) -> np.ndarray:
    """Tensor or array [..., H, W] -> float64 [M, H, W], every leading index one map."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"a spectrum needs maps of shape [..., H, W], got shape {list(x.shape)}")
    return x.reshape(-1, *x.shape[-2:])


def power_spectrum(x, beta: float = 8.0, pad: int = 2, remove_mean: bool = True) -> Spectrum:
    """The Kaiser-windowed power spectrum of images or feature maps, averaged over all maps, in dB.

    The window keeps the map borders from smearing energy over every frequency; zero padding by `pad`
    samples the spectrum more finely. The power is divided by the window's energy, so that levels do not
    depend on the map size or the window.

    Args:
        x: maps [..., H, W] (an image [N, C, H, W], a layer's activations [C, H, W], ...), tensor or array.
        beta: Kaiser window shape (0: rectangular; 8: the paper's).
        pad: the FFT size as a multiple of the map size.
        remove_mean: subtract each map's mean first, so the DC term does not dwarf the rest.

    Returns:
        A `Spectrum` of size [pad * H, pad * W].
    """
    maps = _as_maps(x)  # [MHW]
    m, h, w = maps.shape
    if remove_mean:
        maps = maps - maps.mean(axis=(1, 2), keepdims=True)
    window = np.outer(np.kaiser(h, beta), np.kaiser(w, beta))  # [HW]
    power = np.zeros((pad * h, pad * w))
    for start in range(0, m, MAPS_PER_FFT):  # A few maps at a time: all channels of a big layer at once need GBs.
        spec = np.fft.fft2(maps[start:start + MAPS_PER_FFT] * window, s=power.shape)  # [M', pad*H, pad*W]
        power += (np.abs(spec) ** 2).sum(axis=0)
    power = np.fft.fftshift(power / m / np.square(window).sum())  # [pad*H, pad*W]
    return Spectrum(power_db=10 * np.log10(power + 1e-30),
                    freq_y=np.fft.fftshift(np.fft.fftfreq(pad * h)), freq_x=np.fft.fftshift(np.fft.fftfreq(pad * w)))


def radial_profile(spectrum: Spectrum, num_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The radially averaged power of a spectrum, out to the Nyquist frequency 0.5 cycles per pixel.

    The corners beyond 0.5 are left out: only part of their rings exists, and they hold frequencies
    present along the diagonals only.

    Args:
        spectrum: from `power_spectrum`.
        num_bins: rings between 0 and 0.5 (default: one per frequency bin along the shorter axis).

    Returns:
        (ring centres [B] in cycles per pixel, mean power in each ring [B] in dB; nan for an empty ring).
    """
    if num_bins is None:
        num_bins = min(len(spectrum.freq_y), len(spectrum.freq_x)) // 2
    fy, fx = np.meshgrid(spectrum.freq_y, spectrum.freq_x, indexing="ij")
    radius = np.hypot(fx, fy)  # [HW]
    ring = np.floor(radius / 0.5 * num_bins).astype(np.int64)
    inside = ring < num_bins
    power = 10 ** (spectrum.power_db / 10)
    total = np.bincount(ring[inside], weights=power[inside], minlength=num_bins)
    count = np.bincount(ring[inside], minlength=num_bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        profile = 10 * np.log10(total / count)
    centres = (np.arange(num_bins) + 0.5) * 0.5 / num_bins
    return centres, profile


@dataclass
class ModelSpectrum:
    """What one model shows for a request, as a spectrum: which model, what was measured, and the result."""

    label: str                              # family and file name, e.g. 'stylegan2 · ffhq.pkl'
    source: str                             # 'output 32×32' or 'layer b16 (16 px, 512 channels)'
    spectrum: Spectrum
    profile: tuple[np.ndarray, np.ndarray]  # `radial_profile` of `spectrum`


@dataclass
class Comparison:
    """The spectra of two models for the same request (`compare_spectra`)."""

    first: ModelSpectrum
    second: ModelSpectrum | None  # None when the second model has no layer at the first one's resolution
    notes: tuple[str, ...]        # what of the request the second model did not get, in words


def model_label(info: ModelInfo) -> str:
    """How a legend names a model: its family and file name."""
    return f"{info.family} · {Path(info.path).name}"


def distinct_labels(a: ModelInfo, b: ModelInfo) -> tuple[str, str]:
    """Legend names for two models that tell them apart: family and file name, then the network (G_ema or
    G of one file), then the folder too (every NVIDIA snapshot may be 'network-snapshot-….pkl')."""
    candidates = (
        lambda i: model_label(i),
        lambda i: f"{model_label(i)} ({i.network})",
        lambda i: f"{i.family} · {Path(i.path).parent.name}/{Path(i.path).name} ({i.network})",
    )
    for label in candidates:
        if label(a) != label(b):
            return label(a), label(b)
    return f"{model_label(a)} (first)", f"{model_label(b)} (second)"


def layer_resolution(model: Model, name: str) -> int:
    """The resolution a synthesis layer works at: its sampling rate (StyleGAN3, margins aside) or its block's."""
    layer = getattr(model.generator.synthesis, name)
    return int(getattr(layer, "out_sampling_rate", None) or layer.resolution)


def matching_layer(model: Model, resolution: int) -> str | None:
    """The last synthesis layer of a model at a resolution (the most processed one there), None if none is."""
    names = [n for n in model.generator.synthesis.layer_names if layer_resolution(model, n) == resolution]
    return names[-1] if names else None


def model_spectrum(model: Model, req: RenderRequest) -> ModelSpectrum:
    """The power spectrum of what a request shows: its picture before quantising, or with `req.layer` set, the
    activations of that layer, averaged over all its channels (the layer view's channel choice aside)."""
    req.validate(model)
    ws = request_ws(model, req)
    if req.layer is None:
        x = synthesize_picture(model, ws, req)[0]  # [CHW]
        source = f"output {x.shape[2]}×{x.shape[1]}"
    else:
        x = capture_layers(model, ws, req, [req.layer])[req.layer][0]  # [CHW]
        source = f"layer {req.layer} ({layer_resolution(model, req.layer)} px, {x.shape[0]} channels)"
    spectrum = power_spectrum(x)
    return ModelSpectrum(model_label(model.info), source, spectrum, radial_profile(spectrum))


def companion_request(req: RenderRequest, model: Model, other: Model) -> tuple[RenderRequest, list[str]]:
    """The request that shows on `other` what `req` shows on `model`, and notes on what did not carry over.

    Seeds, ψ, cutoff, noise mode and seed carry over; the class where `other` is conditional (else class 0);
    translation and rotation where it has an input transform. A layer view becomes `other`'s last layer at the
    same resolution (`layer` None when it has none). Projected latents, style mixing, direction edits and noise
    settings per layer belong to `model` (positions in its W, its layers) and stay with it.
    """
    info = other.info
    own = [what for what, present in (
        ("projected latents", req.ws is not None), ("style mixing", bool(req.mix_layers)),
        ("direction edits", any(e.amount for e in req.edits)), ("noise maps from a file", req.noise_file is not None),
        ("per-layer noise switches", req.noise_enabled is not None and not all(req.noise_enabled)),
    ) if present]
    notes = [f"{', '.join(own)}: first model only"] if own else []
    class_idx = None
    if info.c_dim:
        class_idx = req.class_idx if req.class_idx is not None and req.class_idx < info.c_dim else 0
        if class_idx != req.class_idx:
            notes.append(f"class {class_idx} for the second model")
    moved = req.input_transform() is not None
    if moved and not info.has_input_transform:
        notes.append(f"a {info.family} model has no input transform: shown untranslated")
    keep = moved and info.has_input_transform
    layer = None if req.layer is None else matching_layer(other, layer_resolution(model, req.layer))
    other_req = RenderRequest(
        seeds=list(req.seeds), class_idx=class_idx, truncation_psi=req.truncation_psi,
        truncation_cutoff=req.truncation_cutoff, noise_mode=req.noise_mode, noise_seed=req.noise_seed,
        translate=req.translate if keep else (0.0, 0.0), rotate=req.rotate if keep else 0.0,
        untransform=req.untransform, layer=layer)
    return other_req, notes


def compare_spectra(model: Model, other: Model, req: RenderRequest) -> Comparison:
    """The spectra of a request's picture (or layer) on `model` and of the same request on `other`.

    See `companion_request` for what "the same" means across models; without a layer at the resolution of
    `req.layer`, `other` is left out and a note says so.
    """
    first = model_spectrum(model, req)
    other_req, notes = companion_request(req, model, other)
    if req.layer is not None and other_req.layer is None:
        res = layer_resolution(model, req.layer)
        notes.append(f"{model_label(other.info)} has no layer at {res}×{res}")
        return Comparison(first, None, tuple(notes))
    first.label, second_label = distinct_labels(model.info, other.info)
    second = model_spectrum(other, other_req)
    second.label = second_label
    return Comparison(first, second, tuple(notes))


def sticking_average(frames):
    """The average of frames, in their own dtype (uint8 frames are rounded): the texture-sticking image.

    Args:
        frames: [T, ...] array or tensor, e.g. [T, H, W, 3] uint8 or [T, 3, H, W] float.

    Returns:
        [...] of the same type and dtype.
    """
    if isinstance(frames, torch.Tensor):
        mean = frames.double().mean(0)
        return (mean if frames.is_floating_point() else mean.round()).to(frames.dtype)
    frames = np.asarray(frames)
    mean = frames.astype(np.float64).mean(0)
    return np.rint(mean).astype(frames.dtype) if np.issubdtype(frames.dtype, np.integer) else mean.astype(frames.dtype)


@torch.no_grad()
def texture_sticking(
    model: Model,
    z,
    c=None,
    truncation_psi: float = 1.0,
    num_frames: int = 32,
    radius: float = 0.2,
    translate: float = 0.0,
    untransform_frames: bool = False,
    seed: int = 0,
    batch_size: int = 8,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray | None:
    """Average the frames of a small latent walk (or of a slow translation) into one image; run it as a job.

    Walk (`translate` = 0): frame i renders z + radius * e_i, e_i standard normal from `seed`. Details
    that move with the content blur; details stuck to pixel coordinates stay sharp.
    Translation (StyleGAN3): frame i renders z with the input translated by i / (T - 1) * `translate`
    image widths along x. With `untransform_frames`, every frame is moved back first: an equivariant
    network then gives a sharp image and a sticking one a smeared one; pixels count where valid.

    Args:
        model: the generator.
        z: the centre latent [1, z_dim] or [z_dim].
        c: one-hot class [1, c_dim] for a conditional model, else None.
        truncation_psi: truncation of every frame.
        num_frames: frames to average.
        radius: size of the walk's steps in z (walk only).
        translate: total translation in image widths; 0 for the walk.
        untransform_frames: move each translated frame back before averaging.
        seed: seed of the walk.
        batch_size: frames per synthesis call (walk only).
        progress: called after every batch with the frames done so far.
        cancel: stop before the next batch once set.

    Returns:
        The average [H, W, 3] uint8, or None if it was cancelled.
    """
    z0 = np.asarray(z, dtype=np.float32).reshape(1, -1)
    if num_frames < 1:
        raise ValueError("texture sticking needs at least one frame")
    if translate != 0 and not model.info.has_input_transform:
        raise ValueError(f"a {model.info.family} model has no input transform to translate")
    meter = ProgressMeter(num_frames, progress)
    total = count = 0
    if translate == 0:
        rnd = np.random.RandomState(seed)
        for start in range(0, num_frames, batch_size):
            if cancel is not None and cancel.is_set():
                return None
            n = min(batch_size, num_frames - start)
            zs = z0 + radius * rnd.randn(n, z0.shape[1]).astype(np.float32)
            cs = None if c is None else np.repeat(np.asarray(c, dtype=np.float32).reshape(1, -1), n, 0)
            img = model.synthesize(model.map(zs, cs, truncation_psi)).double()  # [NCHW]
            total, count = total + img.sum(0), count + n
            meter.update(start + n)
    else:
        ws = model.map(z0, c, truncation_psi)
        for i in range(num_frames):
            if cancel is not None and cancel.is_set():
                return None
            m = np.eye(3)
            m[0, 2] = translate * i / max(num_frames - 1, 1)
            img = model.synthesize(ws, input_transform=m).double()  # [1CHW]
            mask = torch.ones_like(img[:, :1])
            if untransform_frames:
                img, mask = untransform(img, m)
            total, count = total + (img * mask).sum(0), count + mask.sum(0)
            meter.update(i + 1)
    mean = total / torch.as_tensor(count, dtype=torch.float64).clamp(min=1)  # [CHW]
    return frames_to_uint8(mean[None].float())[0]
