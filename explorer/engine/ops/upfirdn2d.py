"""FIR resampling (upsample, pad, filter, downsample) and resampling convolution in pure PyTorch.

StyleGAN2 and StyleGAN3 generators resample feature maps with small FIR filters. These functions
are the engine's CPU path and the oracle that faster kernels are checked against, so they follow
the documented numerics of the original ops exactly while staying plain tensor code: zero
insertion by reshape and pad, padding by ``F.pad`` (cropping for negative values), filtering as
depthwise ``conv2d`` (two 1-D passes for separable filters) and downsampling by strided slicing.
"""

from numbers import Integral

import torch
import torch.nn.functional as F

from .impl import use_reference_ops


def _parse_scaling(scaling) -> tuple[int, int]:
    """Turn an up/down factor given as an int or ``[x, y]`` into ``(x, y)``."""
    if isinstance(scaling, Integral):
        scaling = [scaling, scaling]
    sx, sy = (int(s) for s in scaling)
    if sx < 1 or sy < 1:
        raise ValueError(f"scaling factors must be >= 1, got {scaling}")
    return sx, sy


def _parse_padding(padding) -> tuple[int, int, int, int]:
    """Turn padding given as an int, ``[x, y]`` or ``[x0, x1, y0, y1]`` into ``(x0, x1, y0, y1)``."""
    if isinstance(padding, Integral):
        padding = [padding, padding]
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        padding = [px, px, py, py]
    if len(padding) != 4:
        raise ValueError(f"padding must be an int, [x, y] or [x0, x1, y0, y1], got {padding}")
    px0, px1, py0, py1 = padding
    return px0, px1, py0, py1


def _filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """Width and height of a filter: ``(1, 1)`` for none, ``(taps, taps)`` for separable taps."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[1], f.shape[0]


def _insert_zeros(x: torch.Tensor, upx: int, upy: int) -> torch.Tensor:
    """Insert ``up - 1`` zeros after every sample along each axis."""
    if upx == 1 and upy == 1:
        return x
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)  # [N, C, H, 1, W, 1]
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])  # [N, C, H, upy, W, upx]
    return x.reshape(n, c, h * upy, w * upx)  # [N, C, H * upy, W * upx]


def _pad_or_crop(x: torch.Tensor, px0: int, px1: int, py0: int, py1: int) -> torch.Tensor:
    """Pad with zeros where padding is positive and crop where it is negative."""
    if any(p > 0 for p in (px0, px1, py0, py1)):
        x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])  # [N, C, H', W']
    h, w = x.shape[2:]
    return x[:, :, max(-py0, 0) : h - max(-py1, 0), max(-px0, 0) : w - max(-px1, 0)]


def _fir(x: torch.Tensor, f: torch.Tensor, flip_filter: bool, gain: float) -> torch.Tensor:
    """Valid depthwise filtering of every channel by ``f``, scaled by ``gain``."""
    c = x.shape[1]
    f = f.to(device=x.device, dtype=x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))  # conv2d correlates; the flip makes it a true convolution
    if f.ndim == 1:
        f = f * gain**0.5  # [taps], one half of the gain per pass
        x = F.conv2d(x, f.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)  # along x
        return F.conv2d(x, f.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)  # along y
    f = f * gain  # [fh, fw]
    return F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)  # [N, C, H - fh + 1, W - fw + 1]


def setup_filter(f, normalize=True, flip_filter=False, gain=1, separable=None, device=None):
    """Build a float32 FIR filter tensor from a list, array or tensor of taps.

    Args:
        f: the taps, e.g. ``[1, 3, 3, 1]``, as a scalar, 1-D or 2-D ``[fh, fw]`` sequence, array
            or tensor; ``None`` stands for the identity filter and is returned as is.
        normalize: scale the taps so that the filter as applied in 2-D sums to 1.
        flip_filter: flip the taps along every axis.
        gain: overall gain of the filter as applied in 2-D. 1-D taps are applied once along x and
            once along y, so each of them is scaled by ``sqrt(gain)``; 2-D taps by ``gain``.
        separable: keep 1-D taps as a separable filter. ``None`` keeps them separable when there
            are at least 8 taps (the StyleGAN convention); shorter ones become their 2-D outer
            product, e.g. ``[1, 3, 3, 1]`` gives a 4x4 filter.
        device: device of the returned tensor.

    Returns:
        A float32 tensor, ``[taps]`` when separable and ``[fh, fw]`` otherwise, or ``None``.

    Raises:
        ValueError: when the taps have more than 2 dimensions, or are 2-D and ``separable`` is true.
    """
    if f is None:
        return None
    f = torch.as_tensor(f, dtype=torch.float32, device=device)
    if f.ndim == 0:
        f = f.reshape(1)  # [1]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)  # [taps, taps]
    if f.ndim != (1 if separable else 2):
        raise ValueError(f"expected {'1-D' if separable else '2-D'} filter taps, got shape {list(f.shape)}")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    return f * gain ** (f.ndim / 2)


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """Upsample, pad, FIR-filter and downsample every channel of a batch of images.

    Per channel: insert ``up - 1`` zeros after every sample, pad with zeros by ``padding``, convolve
    with ``f`` keeping only the outputs whose whole footprint lies inside, scale by ``gain``, then
    keep every ``down``-th sample starting from the first. Each output axis has
    ``ceil((in * up + p0 + p1 - taps + 1) / down)`` samples.

    Args:
        x: input ``[N, C, H, W]``.
        f: filter from ``setup_filter``: ``[taps]`` (separable, applied along x then y, each pass
            scaled by ``sqrt(gain)``), ``[fh, fw]``, or ``None`` for the identity.
        up: upsampling factor, an int or ``[x, y]``.
        down: downsampling factor, an int or ``[x, y]``.
        padding: an int, ``[x, y]`` or ``[x0, x1, y0, y1]``, applied after upsampling; negative
            values crop.
        flip_filter: correlate with ``f`` instead of convolving.
        gain: overall scale of the output.

    Returns:
        A tensor ``[N, C, H', W']`` with the dtype and device of ``x``.
    """
    if x.ndim != 4:
        raise ValueError(f"expected x of shape [N, C, H, W], got {list(x.shape)}")
    upx, upy = _parse_scaling(up)
    downx, downy = _parse_scaling(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    if f is not None and not use_reference_ops():
        if downx == downy == 1 and (upx > 1 or upy > 1):
            return _upsample_strided(x, f, upx, upy, px0, px1, py0, py1, flip_filter, gain)
        if upx == upy == 1 and (downx > 1 or downy > 1):
            return _downsample_strided(x, f, downx, downy, px0, px1, py0, py1, flip_filter, gain)
    return _upfirdn2d_ref(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain)


def _upfirdn2d_ref(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain):
    """The definition, step by step: the oracle for every faster path."""
    x = _insert_zeros(x, upx, upy)  # [N, C, H * upy, W * upx]
    x = _pad_or_crop(x, px0, px1, py0, py1)  # [N, C, H * upy + py0 + py1, W * upx + px0 + px1]
    if f is not None:
        x = _fir(x, f, flip_filter, gain)  # [N, C, H' - fh + 1, W' - fw + 1]
    elif gain != 1:
        x = x * gain
    return x[:, :, ::downy, ::downx]  # [N, C, ceil(. / downy), ceil(. / downx)]


def _depthwise_passes(f: torch.Tensor, x: torch.Tensor, flip: bool, gain: float) -> list[tuple]:
    """A filter as depthwise conv passes `(kernel, acts_along_y, acts_along_x)`: separable taps as an
    x pass [C,1,1,fw] and a y pass [C,1,fh,1], each with half the gain; 2-D taps as one [C,1,fh,fw]."""
    f = f.to(device=x.device, dtype=x.dtype)
    c = x.shape[1]
    if flip:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 1:
        f = f * gain**0.5
        return [(f.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1), False, True),
                (f.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1), True, False)]
    return [((f * gain)[None, None].repeat(c, 1, 1, 1), True, True)]


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """oneDNN's depthwise kernels on the CPU are several times faster on NHWC tensors."""
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x


def _upsample_strided(x, f, upx, upy, px0, px1, py0, py1, flip_filter, gain):
    """Up-sampling as strided transposed convolutions, then the padding as a crop or pad.

    A transposed convolution is the full convolution of the zero-inserted input with the filter;
    the definition's output starts `taps - 1 - p0` samples into it and ends `up + p1 - taps`
    samples past its end (negative: before it), which `F.pad` crops or zero-fills.
    """
    fw, fh = _filter_size(f)
    x = _channels_last(x)
    for w, along_y, along_x in _depthwise_passes(f, x, flip=flip_filter, gain=gain):  # convolves: no flip
        stride = (upy if along_y else 1, upx if along_x else 1)
        x = F.conv_transpose2d(x, w, stride=stride, groups=x.shape[1])
    return F.pad(x, [px0 - fw + 1, upx + px1 - fw, py0 - fh + 1, upy + py1 - fh])  # stays NHWC for the next op


def _downsample_strided(x, f, downx, downy, px0, px1, py0, py1, flip_filter, gain):
    """Down-sampling as strided convolutions: only the kept outputs are computed."""
    x = _channels_last(_pad_or_crop(x, px0, px1, py0, py1))
    for w, along_y, along_x in _depthwise_passes(f, x, flip=not flip_filter, gain=gain):  # correlates: flip
        x = F.conv2d(x, w, stride=(downy if along_y else 1, downx if along_x else 1), groups=x.shape[1])
    return x.contiguous()


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1):
    """Upsample by ``up`` with filter ``f``, padded so that the output is ``up`` times the input.

    Args:
        x: input ``[N, C, H, W]``.
        f: filter from ``setup_filter``, or ``None`` for the identity (zero insertion only).
        up: upsampling factor, an int or ``[x, y]``.
        padding: extra padding, an int, ``[x, y]`` or ``[x0, x1, y0, y1]``; negative values crop.
        flip_filter: correlate with ``f`` instead of convolving.
        gain: overall scale; the output is further scaled by ``upx * upy`` to keep the mean.

    Returns:
        A tensor ``[N, C, H * upy + py0 + py1, W * upx + px0 + px1]``.
    """
    upx, upy = _parse_scaling(up)
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    padding = [
        px0 + (fw + upx - 1) // 2,
        px1 + (fw - upx) // 2,
        py0 + (fh + upy - 1) // 2,
        py1 + (fh - upy) // 2,
    ]
    return upfirdn2d(x, f, up=(upx, upy), padding=padding, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1):
    """Filter with ``f`` and downsample by ``down``, padded so that the output is the input / ``down``.

    Args:
        x: input ``[N, C, H, W]``.
        f: filter from ``setup_filter``, or ``None`` for the identity (plain subsampling).
        down: downsampling factor, an int or ``[x, y]``.
        padding: extra padding, an int, ``[x, y]`` or ``[x0, x1, y0, y1]``; negative values crop.
        flip_filter: correlate with ``f`` instead of convolving.
        gain: overall scale of the output.

    Returns:
        A tensor ``[N, C, ceil((H + py0 + py1) / downy), ceil((W + px0 + px1) / downx)]`` (for
        filters no larger than their usual size).
    """
    downx, downy = _parse_scaling(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    padding = [
        px0 + (fw - downx + 1) // 2,
        px1 + (fw - downx) // 2,
        py0 + (fh - downy + 1) // 2,
        py1 + (fh - downy) // 2,
    ]
    return upfirdn2d(x, f, down=(downx, downy), padding=padding, flip_filter=flip_filter, gain=gain)


def filter2d(x, f, padding=0, flip_filter=False, gain=1):
    """Filter with ``f``, padded so that the output has the size of the input.

    Args:
        x: input ``[N, C, H, W]``.
        f: filter from ``setup_filter``, or ``None`` for the identity.
        padding: extra padding, an int, ``[x, y]`` or ``[x0, x1, y0, y1]``; negative values crop.
        flip_filter: correlate with ``f`` instead of convolving.
        gain: overall scale of the output.

    Returns:
        A tensor ``[N, C, H + py0 + py1, W + px0 + px1]``.
    """
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    padding = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=padding, flip_filter=flip_filter, gain=gain)


def _transpose_weight(w: torch.Tensor, groups: int) -> torch.Tensor:
    """Rearrange a conv2d weight ``[out, in / g, kh, kw]`` into conv_transpose2d's ``[in, out / g, kh, kw]``."""
    out_c, in_per_group, kh, kw = w.shape
    w = w.reshape(groups, out_c // groups, in_per_group, kh, kw)  # [g, out / g, in / g, kh, kw]
    w = w.transpose(1, 2)  # [g, in / g, out / g, kh, kw]
    return w.reshape(groups * in_per_group, out_c // groups, kh, kw)  # [in, out / g, kh, kw]


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """2-D convolution with optional FIR upsampling or downsampling, as in StyleGAN2's layers.

    With ``padding`` as ``[px0, px1, py0, py1]`` and ``fw, fh`` the filter size, upsampling adds
    ``[(fw + upx - 1) // 2, (fw - upx) // 2, (fh + upy - 1) // 2, (fh - upy) // 2]`` and
    downsampling adds ``[(fw - downx + 1) // 2, (fw - downx) // 2, (fh - downy + 1) // 2,
    (fh - downy) // 2]``. The result is then, by definition::

        x = upfirdn2d(x, f if up > 1 else None, up=up, padding=padding, gain=upx * upy, flip_filter=flip_filter)
        x = conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)  # only when down > 1

    Upsampling alone is computed as a strided transposed convolution followed by the filter, and
    downsampling alone as the filter followed by a strided convolution; both equal the definition
    because the filter and the convolution commute.

    Args:
        x: input ``[N, in, H, W]``.
        w: weight ``[out, in / groups, kh, kw]``, cast to the dtype of ``x``.
        f: filter from ``setup_filter`` for the resampling, or ``None`` for the identity.
        up: upsampling factor, an int or ``[x, y]``.
        down: downsampling factor, an int or ``[x, y]``.
        padding: an int, ``[x, y]`` or ``[x0, x1, y0, y1]``; negative values crop.
        groups: number of convolution groups.
        flip_weight: ``True`` correlates with ``w`` (as ``torch.nn.functional.conv2d`` does);
            ``False`` convolves.
        flip_filter: correlate with ``f`` instead of convolving.

    Returns:
        A tensor ``[N, out, H', W']`` with the dtype and device of ``x``.
    """
    upx, upy = _parse_scaling(up)
    downx, downy = _parse_scaling(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    upsampling = upx > 1 or upy > 1
    downsampling = downx > 1 or downy > 1
    if upsampling:
        px0, px1 = px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2
        py0, py1 = py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2
    if downsampling:
        px0, px1 = px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2
        py0, py1 = py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2
    padding = [px0, px1, py0, py1]
    w = w.to(dtype=x.dtype)
    w_corr = w if flip_weight else w.flip([2, 3])  # [out, in / g, kh, kw], the kernel conv2d correlates with
    kh, kw = w.shape[2:]

    if upsampling and not downsampling:
        w_t = _transpose_weight(w_corr.flip([2, 3]), groups)  # [in, out / g, kh, kw]
        x = F.conv_transpose2d(x, w_t, stride=(upy, upx), groups=groups)  # [N, out, (H-1)*upy+kh, (W-1)*upx+kw]
        padding = [px0 - kw + 1, px1 + upx - kw, py0 - kh + 1, py1 + upy - kh]
        return upfirdn2d(x, f, padding=padding, gain=upx * upy, flip_filter=flip_filter)  # [N, out, H', W']

    if downsampling and not upsampling:
        x = upfirdn2d(x, f, padding=padding, flip_filter=flip_filter)  # [N, in, H + py0 + py1 - fh + 1, ...]
        return F.conv2d(x, w_corr, stride=(downy, downx), groups=groups)  # [N, out, H', W']

    x = upfirdn2d(x, f if upsampling else None, up=(upx, upy), padding=padding, gain=upx * upy, flip_filter=flip_filter)
    x = F.conv2d(x, w_corr, groups=groups)  # [N, out, H * upy + py0 + py1 - kh + 1, ...]
    if downsampling:
        x = upfirdn2d(x, f, down=(downx, downy), flip_filter=flip_filter)  # [N, out, H', W']
    return x
