"""FIR lowpass design for the alias-free (StyleGAN3) layers, in numpy alone.

StyleGAN3 designs its up/down filters when a layer is built: a Kaiser-windowed sinc for the separable
case and a Kaiser-windowed jinc for the radially symmetric one (paper, Sections 3.2 and 3.3). The
checkpoints store the results as buffers, so these helpers must reproduce them to float32 precision;
the equivariance tooling reuses them to design its own band limits.
"""

from __future__ import annotations

import math

import numpy as np


def kaiser_attenuation(numtaps: int, width: float) -> float:
    """Stopband attenuation in dB that a Kaiser FIR of `numtaps` reaches for a transition `width`.

    `width` is relative to the Nyquist frequency (1 = fs / 2); this is Kaiser's empirical formula.
    """
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(attenuation: float) -> float:
    """Kaiser window shape parameter that achieves `attenuation` dB (Kaiser's empirical formula)."""
    if attenuation > 50:
        return 0.1102 * (attenuation - 8.7)
    if attenuation > 21:
        return 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21)
    return 0.0


def kaiser_window(numtaps: int, width: float, fs: float) -> np.ndarray:
    """Symmetric Kaiser window for a filter of `numtaps` whose transition band is `width` (in Hz at `fs`)."""
    beta = kaiser_beta(kaiser_attenuation(numtaps, width / (fs / 2)))
    return np.kaiser(numtaps, beta)  # [taps]


def bessel_j1(x: np.ndarray | float) -> np.ndarray:
    """Bessel function of the first kind, order 1, in float64.

    Bessel's integral J1(x) = (1/pi) * int_0^pi cos(t - x sin t) dt has a smooth periodic, even
    integrand, so the trapezoidal rule converges geometrically once the number of nodes exceeds |x|;
    the node count grows with |x| to keep the error near float64 round-off.
    """
    x = np.asarray(x, dtype=np.float64)
    intervals = 64 + 2 * int(np.ceil(np.abs(x).max(initial=0.0)))
    t = np.linspace(0.0, math.pi, intervals + 1)  # [T]
    weights = np.full(intervals + 1, 1.0 / intervals)  # [T] trapezoid weights, times 1/pi * pi/n.
    weights[[0, -1]] *= 0.5
    integrand = np.cos(t - np.multiply.outer(x, np.sin(t)))  # [..., T]
    return integrand @ weights


def lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """1-D Kaiser-windowed sinc lowpass with unit DC gain (applied separably along x and y).

    `cutoff` and `width` (the full transition band) are in the same units as the sampling rate `fs`.
    """
    # Ideal lowpass impulse response, sampled symmetrically around the centre tap.
    m = np.arange(numtaps) - (numtaps - 1) / 2  # [taps]
    band = cutoff / (fs / 2)
    h = band * np.sinc(band * m)  # [taps]

    # Window it and normalise the DC gain.
    h = h * kaiser_window(numtaps, width, fs)
    return h / h.sum()


def radial_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """2-D radially symmetric lowpass: a jinc with a separable Kaiser window, unit DC gain.

    The jinc is the 2-D analogue of the sinc for a disc-shaped passband of radius `cutoff`, which is what
    rotation equivariance asks of the filters (paper, Section 3.3).
    """
    # Ideal disc lowpass: 2 * cutoff * J1(2 pi cutoff r) / (2 r), with its limit `cutoff` at r = 0.
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs  # [taps]
    r = np.hypot(*np.meshgrid(x, x))  # [taps, taps]
    safe_r = np.where(r > 0, r, 1.0)
    f = np.where(r > 0, bessel_j1(2 * math.pi * cutoff * safe_r) / (math.pi * safe_r), cutoff)

    # Window it separably and normalise the DC gain.
    w = kaiser_window(numtaps, width, fs)  # [taps]
    f = f * np.outer(w, w)
    return f / f.sum()
