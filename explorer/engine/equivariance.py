"""Equivariance of StyleGAN3 generators, measured as the StyleGAN3 paper does, and the band-limited
resampling that the measurement and the live view's "untransform" need.

The paper ("Alias-Free Generative Adversarial Networks", Karras et al. 2021, appendix on the
equivariance metrics) asks whether a generator commutes with a transformation: render once with the
transformation applied to the network's input (its Fourier features), once without, move the second
image by the same transformation, and report the PSNR between the two over the pixels valid in both.

- EQ-T: translations by whole pixels; the image is shifted exactly.
- EQ-T_frac: sub-pixel translations; the image is shifted with a Lanczos (windowed sinc) kernel.
- EQ-R: rotations; the image is rotated with a 2-D windowed-sinc filter whose passband is the
  intersection of the input and output pixel grids' Nyquist squares, at 4x the pixel rate, then
  sampled bilinearly. The other image is low-passed to the same passband without moving, so that the
  two are compared on the same spectral content.

Coordinates: a transformation is a 3x3 matrix in the convention of `Model.synthesize`'s
`input_transform` (and of `RenderRequest`): it moves content at p to M @ p, with p in centred
coordinates, x to the right, y down, and translations in units of the image width.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .model import Model
from .video import Progress, ProgressMeter

METRICS = ("eqt_int", "eqt_frac", "eqr")
METRIC_LABELS = {"eqt_int": "EQ-T", "eqt_frac": "EQ-T_frac", "eqr": "EQ-R"}
PEAK_DB = 20 * math.log10(2)  # the images span [-1, 1]: a peak-to-peak range of 2


# ----------------------------------------------------------------------------------------------
# Resampling.


def _pixel_shift(matrix: np.ndarray, width: int) -> tuple[float, float] | None:
    """The (dx, dy) in pixels of a pure translation, None when the matrix rotates, scales or shears."""
    m = np.asarray(matrix, dtype=np.float64)
    if not (np.allclose(m[:2, :2], np.eye(2), rtol=0, atol=1e-9) and np.allclose(m[2], [0, 0, 1], rtol=0, atol=1e-9)):
        return None
    return float(m[0, 2] * width), float(m[1, 2] * width)


def shift_integer(img: torch.Tensor, dx: int, dy: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Move an image by whole pixels: exact, zeros where nothing moved in.

    Args:
        img: images [N, C, H, W].
        dx: pixels to the right (negative: to the left).
        dy: pixels down (negative: up).

    Returns:
        (moved [N, C, H, W], mask [1, 1, H, W]: 1 where the pixel came from inside the image).
    """
    _, _, h, w = img.shape
    out = torch.zeros_like(img)
    mask = torch.zeros([1, 1, h, w], dtype=img.dtype, device=img.device)
    if abs(dx) < w and abs(dy) < h:
        dst = (slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0)))
        src = (slice(max(-dy, 0), h + min(-dy, 0)), slice(max(-dx, 0), w + min(-dx, 0)))
        out[:, :, dst[0], dst[1]] = img[:, :, src[0], src[1]]
        mask[:, :, dst[0], dst[1]] = 1
    return out, mask


def lanczos_taps(size: int, shift: float, a: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The taps of a 1-D shift by `shift` pixels with a Lanczos-`a` kernel.

    Output pixel x reads the 2a input pixels nearest to its source p = x - shift (from ceil(p) - a
    to ceil(p) + a - 1) with weights sinc(p - j) * sinc((p - j) / a), normalised to sum to 1 so that
    flat areas stay flat. An output pixel is valid when all of its taps lie inside the image.

    Args:
        size: pixels along the axis.
        shift: displacement in pixels (positive: toward higher indices).
        a: kernel half-width in pixels.

    Returns:
        (indices [size, 2a] int64 clamped into the image, weights [size, 2a] float64 with the taps
        outside the image zeroed, valid [size] bool).
    """
    src = np.arange(size) - shift  # [size]
    taps = np.ceil(src).astype(np.int64)[:, None] - a + np.arange(2 * a)  # [size, 2a]
    d = src[:, None] - taps  # [size, 2a]
    weights = np.sinc(d) * np.sinc(d / a)
    weights /= weights.sum(axis=1, keepdims=True)
    inside = (taps >= 0) & (taps < size)
    return np.clip(taps, 0, size - 1), np.where(inside, weights, 0.0), inside.all(axis=1)


def _resample_axis(img: torch.Tensor, dim: int, indices: np.ndarray, weights: np.ndarray) -> torch.Tensor:
    """Sum over taps of img gathered along `dim` at `indices` [size, T], times `weights` [size, T]."""
    idx = torch.as_tensor(indices, device=img.device)
    wts = torch.as_tensor(weights, dtype=img.dtype, device=img.device)
    shape = [1] * img.ndim
    shape[dim] = -1
    out = torch.zeros_like(img)
    for t in range(idx.shape[1]):
        out += img.index_select(dim, idx[:, t]) * wts[:, t].reshape(shape)
    return out


def shift_lanczos(img: torch.Tensor, dx: float, dy: float, a: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Move an image by a fractional number of pixels with a separable Lanczos-`a` kernel.

    Args:
        img: images [N, C, H, W].
        dx: pixels to the right.
        dy: pixels down.
        a: kernel half-width in pixels (3, as the EQ-T_frac metric).

    Returns:
        (moved [N, C, H, W], mask [1, 1, H, W]: 1 where every tap read a pixel of the image).
    """
    _, _, h, w = img.shape
    ix, wx, vx = lanczos_taps(w, dx, a)
    iy, wy, vy = lanczos_taps(h, dy, a)
    out = _resample_axis(_resample_axis(img, 3, ix, wx), 2, iy, wy)  # along x, then y
    mask = torch.as_tensor(np.outer(vy, vx), dtype=img.dtype, device=img.device)[None, None]  # [11HW]
    return out, mask


def _circular_convolve(f: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.fft.ifft2(np.fft.fft2(f) * np.fft.fft2(g)).real


def design_affine_filter(matrix, up: int = 4, a: int = 3, support: int = 6, extent: int = 64) -> np.ndarray:
    """The 2-D interpolation filter of the band-limited affine resampling, at `up` times the pixel rate.

    Ideal part: the convolution of a sinc aligned with the input pixel grid and one aligned with the
    output grid, i.e. a lowpass whose passband is the intersection of the two grids' Nyquist squares
    (nothing beyond what the input holds, nothing the output grid would alias). Window: the convolution
    of the two grids' separable Lanczos-`a` windows. Both convolutions are evaluated on a grid of
    offsets up to `extent` pixels; the product is cut to offsets below `support` pixels and every
    polyphase component (taps whose offsets agree modulo `up`) is normalised to unit sum, so that each
    upsampled position keeps flat areas flat.

    Args:
        matrix: the transformation [3, 3] (only its linear part matters here).
        up: taps per pixel.
        a: Lanczos window half-width in pixels.
        support: half-width of the returned filter in pixels.
        extent: half-width in pixels of the grid the convolutions are evaluated on.

    Returns:
        Taps [2 * support * up - 1, 2 * support * up - 1] float64, indexed [y, x], centred.
    """
    lin = np.asarray(matrix, dtype=np.float64)[:2, :2]
    return _design_affine_filter(tuple(lin.ravel().tolist()), up, a, support, extent).copy()


@functools.lru_cache(maxsize=32)  # the live view asks again for every frame while only the seed changes
def _design_affine_filter(lin: tuple[float, ...], up: int, a: int, support: int, extent: int) -> np.ndarray:
    n = extent * up
    offsets = np.fft.ifftshift(np.arange(1 - n, n) / up)  # [2n-1], offset 0 first
    xi, yi = np.meshgrid(offsets, offsets)  # input-grid offsets, [2n-1, 2n-1] each
    xo = lin[0] * xi + lin[1] * yi  # the same offsets in output-grid units
    yo = lin[2] * xi + lin[3] * yi

    def window(t):
        return np.where(np.abs(t) < a, np.sinc(t / a), 0.0)

    ideal = _circular_convolve(np.sinc(xi) * np.sinc(yi), np.sinc(xo) * np.sinc(yo))
    win = _circular_convolve(window(xi) * window(yi), window(xo) * window(yo))
    taps = np.fft.fftshift(ideal * win)  # centre at [n - 1, n - 1]
    r = support * up - 1
    taps = taps[n - 1 - r : n + r, n - 1 - r : n + r].copy()
    for py in range(up):
        for px in range(up):
            taps[py::up, px::up] /= taps[py::up, px::up].sum()
    return taps


def _phase_kernels(taps: np.ndarray, up: int, support: int) -> np.ndarray:
    """Split centred taps into the up*up polyphase kernels of an upsampler, flipped for `conv2d`.

    Kernel (sy, sx) holds the taps at offsets up*m + s, m in [-support, support - 1], so that
    upsampled sample up*q + s = sum_m img[q - m] * kernel_s[m].
    """
    r = support * up - 1
    m = np.arange(-support, support)
    kernels = np.zeros([up, up, 2 * support, 2 * support])
    for sy in range(up):
        for sx in range(up):
            iy, ix = up * m + sy + r, up * m + sx + r  # indices into taps
            oky, okx = (iy >= 0) & (iy < taps.shape[0]), (ix >= 0) & (ix < taps.shape[1])
            kernels[sy, sx][np.ix_(oky, okx)] = taps[np.ix_(iy[oky], ix[okx])]
    return kernels[:, :, ::-1, ::-1].reshape(up * up, 1, 2 * support, 2 * support).copy()


def _source_positions(matrix: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel's content comes from, in input pixel coordinates: p = M^-1 q."""
    inv = np.linalg.inv(np.asarray(matrix, dtype=np.float64))
    qy, qx = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")  # centred
    tx, ty = inv[0, 2] * w, inv[1, 2] * w  # translations are in image widths
    px = inv[0, 0] * qx + inv[0, 1] * qy + tx + (w - 1) / 2
    py = inv[1, 0] * qx + inv[1, 1] * qy + ty + (h - 1) / 2
    return px, py


def resample_affine(
    img: torch.Tensor, matrix, up: int = 4, a: int = 3, support: int = 6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move an image by an affine transformation without aliasing: the EQ-R metric's resampler.

    Upsample by `up` with `design_affine_filter`, then sample bilinearly at each output pixel's source
    M^-1 q. An output pixel is valid when its source, snapped to the upsampled grid, lies about `support`
    pixels inside the image, so that the filter read no pixel from outside (the reference metric's region).

    Args:
        img: images [N, C, H, W] float.
        matrix: the transformation [3, 3], as `Model.synthesize`'s input_transform.
        up: upsampling factor of the intermediate image.
        a: Lanczos window half-width in pixels.
        support: filter half-width in pixels.

    Returns:
        (moved [N, C, H, W], mask [1, 1, H, W] of the valid pixels).
    """
    n, c, h, w = img.shape
    kernels = _phase_kernels(design_affine_filter(matrix, up, a, support), up, support)
    kernels = torch.as_tensor(kernels, dtype=img.dtype, device=img.device).repeat(c, 1, 1, 1)  # [(C*up*up)1kk]

    # Upsampled image at positions q + s / up for q in [-support, size - 1 + support], s in [0, up).
    x = F.pad(img, [2 * support - 1, 2 * support] * 2)
    x = F.conv2d(x, kernels, groups=c)  # [N, C*up*up, H + 2s, W + 2s]
    hq, wq = x.shape[2:]
    x = x.reshape(n, c, up, up, hq, wq).permute(0, 1, 4, 2, 5, 3).reshape(n, c, hq * up, wq * up)

    # Bilinear samples at the sources; grid_sample's align_corners=True puts -1 / 1 on the end samples.
    px, py = _source_positions(matrix, h, w)
    ix, iy = (px + support) * up, (py + support) * up  # indices into the upsampled image
    grid = np.stack([2 * ix / (wq * up - 1) - 1, 2 * iy / (hq * up - 1) - 1], axis=-1)  # [HW2]
    grid = torch.as_tensor(grid, dtype=img.dtype, device=img.device)[None].expand(n, h, w, 2)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)

    # Valid where the source, snapped to the upsampled grid, keeps `lo` pixels from the first pixel centre
    # and `hi` from the last: `support` pixels to the image edge, plus one upsampled sample on the high
    # side where the reference metric's centring of the upsampled grid leaves one sample less.
    sx, sy = np.round(px * up) / up, np.round(py * up) / up
    lo, hi = support - 0.5, support - 0.5 + 1 / up
    valid = (sx >= lo) & (sx <= w - 1 - hi) & (sy >= lo) & (sy <= h - 1 - hi)
    mask = torch.as_tensor(valid, dtype=img.dtype, device=img.device)[None, None]
    return out, mask


def lowpass_affine(img: torch.Tensor, matrix, a: int = 3, support: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Band-limit an image to the passband a transformation leaves, without moving it (a "pseudo rotation").

    EQ-R compares a rotated reference with an image the network rendered rotated. The latter lives on the
    output grid at full bandwidth; filtering it with a Lanczos-windowed sinc aligned with the input grid as
    the transformation carries it (the design of M^-1 at the pixel rate) leaves it the frequencies the
    rotated reference holds, so that the two are compared on the same spectral content.

    Args:
        img: images [N, C, H, W] float.
        matrix: the transformation [3, 3] whose passband to apply.
        a: Lanczos window half-width in pixels.
        support: the filter spans offsets below `support` pixels.

    Returns:
        (filtered [N, C, H, W], mask [1, 1, H, W]: 1 where the filter read only image pixels).
    """
    _, c, h, w = img.shape
    taps = design_affine_filter(np.linalg.inv(np.asarray(matrix, dtype=np.float64)), up=1, a=a, support=support)
    k = support - 1
    kernel = torch.as_tensor(taps[::-1, ::-1].copy(), dtype=img.dtype, device=img.device)
    out = F.conv2d(F.pad(img, [k] * 4), kernel[None, None].repeat(c, 1, 1, 1), groups=c)
    mask = torch.zeros([1, 1, h, w], dtype=img.dtype, device=img.device)
    mask[:, :, k : h - k, k : w - k] = 1
    return out, mask


def apply_affine_bandlimited(img: torch.Tensor, matrix, a: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Move an image by any affine transformation with the resampling the metrics use for its kind.

    Whole-pixel translations (the identity included) are exact shifts, other translations a separable
    Lanczos shift, anything else `resample_affine`. The ideal band-limited result of a whole-pixel
    shift is the shift itself; a filter would only add its own truncation error.

    Args:
        img: images [N, C, H, W] float.
        matrix: the transformation [3, 3], as `Model.synthesize`'s input_transform.
        a: Lanczos half-width in pixels.

    Returns:
        (moved [N, C, H, W], mask [1, 1, H, W] of the valid pixels).
    """
    shift = _pixel_shift(matrix, img.shape[3])
    if shift is None:
        return resample_affine(img, matrix, a=a)
    dx, dy = shift
    if abs(dx - round(dx)) < 1e-6 and abs(dy - round(dy)) < 1e-6:
        return shift_integer(img, round(dx), round(dy))
    return shift_lanczos(img, dx, dy, a)


def untransform(img: torch.Tensor, input_transform) -> tuple[torch.Tensor, torch.Tensor]:
    """Undo a user's input transform on a rendered image: an equivariant network then shows a still image.

    Args:
        img: images [N, C, H, W] rendered with `input_transform`.
        input_transform: the 3x3 matrix the user set (None: the identity).

    Returns:
        (image moved back [N, C, H, W], mask [1, 1, H, W] of the valid pixels).
    """
    m = np.eye(3) if input_transform is None else np.linalg.inv(np.asarray(input_transform, dtype=np.float64))
    return apply_affine_bandlimited(img, m)


# ----------------------------------------------------------------------------------------------
# Comparing images.


def masked_error_sums(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """Sum of masked squared differences and the number of values it covers, in float64.

    Args:
        a: images [N, C, H, W].
        b: images [N, C, H, W].
        mask: [N or 1, 1 or C, H, W] of 0 / 1.

    Returns:
        (sum of squared error where mask is 1, number of values counted, channels included).
    """
    mask = mask.expand_as(a)
    return float((a - b).square().mul(mask).sum().double()), float(mask.sum().double())


def psnr_db(err_sum: float, count: float) -> float:
    """PSNR in dB of images in [-1, 1] from summed squared error: inf for no error, nan for nothing counted."""
    if count == 0:
        return math.nan
    if err_sum == 0:
        return math.inf
    return PEAK_DB - 10 * math.log10(err_sum / count)


@dataclass
class DiffResult:
    """Two images compared where both are valid: a heat map of the error and its PSNR."""

    error: np.ndarray     # [H, W] float32 RMS difference over channels, 0 outside the mask
    mask: np.ndarray      # [H, W] bool, the pixels compared
    heatmap: np.ndarray   # [H, W, 3] uint8, the error on a log scale (black: none), grey where not compared
    psnr_db: float


def diff_heatmap(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None,
                 floor_db: float = -80.0) -> DiffResult:
    """Compare two images over a mask as a heat map of the error with its PSNR.

    Args:
        a: image [1, C, H, W] or [C, H, W] in about [-1, 1].
        b: image of the same shape.
        mask: [..., H, W] of 0 / 1, None for all pixels.
        floor_db: error level (dB relative to the range 2) shown black; 0 dB is shown white.

    Returns:
        A `DiffResult`.
    """
    a, b = a.reshape(-1, *a.shape[-2:]).double(), b.reshape(-1, *b.shape[-2:]).double()  # [CHW]
    m = torch.ones(a.shape[-2:], dtype=torch.bool) if mask is None else mask.reshape(mask.shape[-2:]).cpu() > 0
    sq = (a - b).square().mean(0).cpu()  # [HW]
    sq = torch.where(m, sq, torch.zeros_like(sq))
    err_sum, count = float(sq.sum()) * a.shape[0], float(m.sum()) * a.shape[0]
    level = 10 * torch.log10(sq / 4 + 1e-30)  # dB relative to the peak-to-peak range
    t = ((level - floor_db) / -floor_db).clamp(0, 1).numpy()
    heat = _heat_colours(t)
    heat[~m.numpy()] = 96
    return DiffResult(error=sq.sqrt().numpy().astype(np.float32), mask=m.numpy(), heatmap=heat,
                      psnr_db=psnr_db(err_sum, count))


_HEAT_STOPS = np.array([[0, 0, 0], [80, 18, 120], [200, 50, 60], [250, 160, 30], [255, 255, 255]], np.float64)


def _heat_colours(t: np.ndarray) -> np.ndarray:
    """[H, W] values in [0, 1] -> [H, W, 3] uint8 on a black-purple-red-orange-white ramp."""
    pos = t * (len(_HEAT_STOPS) - 1)
    i = np.minimum(pos.astype(np.int64), len(_HEAT_STOPS) - 2)
    f = (pos - i)[..., None]
    return np.rint(_HEAT_STOPS[i] * (1 - f) + _HEAT_STOPS[i + 1] * f).astype(np.uint8)


def untransform_diff(model: Model, ws: torch.Tensor, input_transform, noise_mode: str = "const") -> DiffResult:
    """Render with and without a user transform, undo it, and compare: the live view's diff.

    Args:
        model: a model with an input transform (StyleGAN3).
        ws: latents [1, num_ws, w_dim].
        input_transform: the 3x3 matrix the user set.
        noise_mode: as `Model.synthesize`.

    Returns:
        A `DiffResult` of the untransformed image against the plain one.
    """
    plain = model.synthesize(ws, noise_mode=noise_mode)
    moved = model.synthesize(ws, noise_mode=noise_mode, input_transform=input_transform)
    back, mask = untransform(moved, input_transform)
    return diff_heatmap(back, plain, mask)


# ----------------------------------------------------------------------------------------------
# The metrics.


@dataclass
class EqDraw:
    """One batch of a metric: its latents and the transformation the network input gets."""

    z: np.ndarray                # [batch, z_dim] float32
    rand: np.ndarray             # the uniform draw the transformation came from: [2] or []
    input_transform: np.ndarray  # [3, 3] float64, as `Model.synthesize` takes it (the network sees its inverse)


@dataclass
class EqResult:
    """A metric's value and what it was computed from."""

    metric: str
    psnr_db: float
    num_samples: int
    err_sum: float
    count: float

    @property
    def label(self) -> str:
        return METRIC_LABELS[self.metric]


def metric_transform(metric: str, rand, resolution: int, translate_max: float = 0.125,
                     rotate_max: float = 1.0) -> np.ndarray:
    """The user transform a metric makes of its uniform draw, as the reference metric.

    EQ-T: a translation of (2 rand - 1) * translate_max image widths per axis, rounded to whole pixels;
    EQ-T_frac: the same unrounded; EQ-R: a rotation by (2 rand - 1) * rotate_max * pi.

    Args:
        metric: one of `METRICS`.
        rand: [2] uniform numbers for a translation, [] for a rotation.
        resolution: image width in pixels.
        translate_max: largest translation in image widths.
        rotate_max: largest rotation in half turns.

    Returns:
        The 3x3 matrix for `Model.synthesize`'s input_transform.
    """
    r = np.asarray(rand, dtype=np.float64)
    m = np.eye(3)
    if metric == "eqr":
        angle = (float(r) * 2 - 1) * rotate_max * math.pi
        m[:2, :2] = [[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]]
        return m
    t = (r * 2 - 1) * translate_max
    if metric == "eqt_int":
        t = np.round(t * resolution) / resolution
    m[:2, 2] = t
    return m


def draw_metric(metric: str, num_samples: int, batch_size: int, z_dim: int, resolution: int, seed: int,
                translate_max: float = 0.125, rotate_max: float = 1.0) -> list[EqDraw]:
    """The random draws of a metric, as the reference makes them with torch's CPU generator.

    After seeding, per batch: z = randn([batch_size, z_dim]), then rand([2]) for a translation or
    rand([]) for an angle. Batches are always full, so ceil(num_samples / batch_size) of them.

    Args:
        metric: one of `METRICS`.
        num_samples: images to measure.
        batch_size: images per batch.
        z_dim: latent size.
        resolution: image width in pixels.
        seed: seed of the generator.
        translate_max: largest translation in image widths.
        rotate_max: largest rotation in half turns.

    Returns:
        One `EqDraw` per batch.
    """
    _check_metric(metric)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    draws = []
    for _ in range(-(-num_samples // batch_size)):
        z = torch.randn([batch_size, z_dim], generator=gen)
        rand = torch.rand([] if metric == "eqr" else [2], generator=gen)
        draws.append(EqDraw(z=z.numpy(), rand=rand.numpy(),
                            input_transform=metric_transform(metric, rand.numpy(), resolution, translate_max,
                                                             rotate_max)))
    return draws


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown equivariance metric {metric!r}: use one of {', '.join(METRICS)}")


def check_model(model: Model) -> None:
    """Raise ValueError unless the model can be measured: the metrics move the network's input."""
    info = model.info
    if not info.has_input_transform:
        raise ValueError(f"the equivariance metrics need a StyleGAN3 model (one with an input transform); "
                         f"this is a {info.family} model")
    if info.c_dim > 0:
        raise ValueError("the equivariance metrics support unconditional models only")


@torch.no_grad()
def batch_error(model: Model, metric: str, z, input_transform) -> tuple[float, float]:
    """One batch of a metric: the summed masked squared error and the number of values counted.

    Args:
        model: a StyleGAN3 model.
        metric: one of `METRICS`.
        z: latents [batch, z_dim].
        input_transform: the 3x3 user transform of this batch.

    Returns:
        (sum of squared error, count), both float64, to accumulate over batches.
    """
    _check_metric(metric)
    m = np.asarray(input_transform, dtype=np.float64)
    ws = model.map(z)
    # float32 throughout, as the metric asks (fp16 layers and TF32 off on a GPU)
    ref = model.synthesize(ws, force_fp32=True)
    img = model.synthesize(ws, input_transform=m, force_fp32=True)
    res = ref.shape[3]
    if metric == "eqt_int":
        ref, mask = shift_integer(ref, round(m[0, 2] * res), round(m[1, 2] * res))
    elif metric == "eqt_frac":
        ref, mask = shift_lanczos(ref, m[0, 2] * res, m[1, 2] * res)
    else:
        ref, mask = resample_affine(ref, m)
        img, img_mask = lowpass_affine(img, m)
        mask = mask * img_mask
    return masked_error_sums(img, ref, mask)


def replay_metric(model: Model, metric: str, draws: Sequence[EqDraw],
                  progress: Callable[[Progress], None] | None = None,
                  cancel: threading.Event | None = None) -> EqResult | None:
    """A metric from given draws (e.g. the reference's), accumulated in float64 over the batches.

    Args:
        model: a StyleGAN3 model.
        metric: one of `METRICS`.
        draws: the batches to measure.
        progress: called after every batch with the images done so far.
        cancel: stop before the next batch once set.

    Returns:
        An `EqResult`, or None if it was cancelled.
    """
    check_model(model)
    _check_metric(metric)
    meter = ProgressMeter(sum(len(d.z) for d in draws), progress)
    err_sum = count = 0.0
    done = 0
    for draw in draws:
        if cancel is not None and cancel.is_set():
            return None
        e, c = batch_error(model, metric, draw.z, draw.input_transform)
        err_sum, count, done = err_sum + e, count + c, done + len(draw.z)
        meter.update(done)
    return EqResult(metric=metric, psnr_db=psnr_db(err_sum, count), num_samples=done, err_sum=err_sum, count=count)


def compute_eq(model: Model, metric: str, num_samples: int = 1000, batch_size: int = 4, seed: int = 0,
               progress: Callable[[Progress], None] | None = None, cancel: threading.Event | None = None,
               translate_max: float = 0.125, rotate_max: float = 1.0) -> EqResult | None:
    """One equivariance metric of a StyleGAN3 model, reproducible from its seed; run it as a job.

    With the reference's settings (e.g. num_samples=64, batch_size=4 and its seed) this draws the same
    latents and transformations as the reference metric and gives its value.

    Args:
        model: a StyleGAN3 model.
        metric: 'eqt_int' (EQ-T), 'eqt_frac' (EQ-T_frac) or 'eqr' (EQ-R).
        num_samples: images to measure (the paper uses 50000); rounded up to whole batches.
        batch_size: images per batch; part of what the seed reproduces.
        seed: seed of torch's CPU generator for this metric's draws.
        progress: called after every batch with the images done so far.
        cancel: stop before the next batch once set.
        translate_max: largest translation in image widths.
        rotate_max: largest rotation in half turns.

    Returns:
        An `EqResult` with the PSNR in dB, or None if it was cancelled.
    """
    check_model(model)
    if num_samples < 1 or batch_size < 1:
        raise ValueError("the number of samples and the batch size must be at least 1")
    draws = draw_metric(metric, num_samples, batch_size, model.info.z_dim, model.info.resolution, seed,
                        translate_max, rotate_max)
    return replay_metric(model, metric, draws, progress=progress, cancel=cancel)
