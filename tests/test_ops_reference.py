"""The pure-PyTorch ops must reproduce the original ops' reference outputs and keep their contracts.

The fixture tests replay every recorded call of ``fixtures/nvidia/ops``; the property tests check
what the fixtures cannot: the output-size formula and the numerics on random configurations against
a direct evaluation of the definition, the fast ``conv2d_resample`` paths against its generic
definition, and a few edge behaviours.
"""

import functools
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FIXTURES, fixtures_dir, rel_err

from explorer.engine.ops import (
    ACTIVATIONS,
    bias_act,
    conv2d_resample,
    downsample2d,
    filter2d,
    filtered_lrelu,
    setup_filter,
    upfirdn2d,
    upsample2d,
)

FUNCTIONS = {
    "upfirdn2d": upfirdn2d,
    "upsample2d": upsample2d,
    "downsample2d": downsample2d,
    "filter2d": filter2d,
    "bias_act": bias_act,
    "filtered_lrelu": filtered_lrelu,
}
OPS = ("upfirdn2d", "bias_act", "filtered_lrelu")
OPS_DIR = ("nvidia", "ops")


@functools.cache
def _spec(op: str) -> dict:
    return json.loads((fixtures_dir().joinpath(*OPS_DIR) / f"{op}.json").read_text())


@functools.cache
def _arrays(op: str) -> dict[str, np.ndarray]:
    with np.load(fixtures_dir().joinpath(*OPS_DIR) / f"{op}.npz") as npz:
        return {key: npz[key] for key in npz.files}


def _reference_calls():
    """One pytest param per recorded call; a single skipped param per op when its file is missing."""
    for op in OPS:
        path = FIXTURES.joinpath(*OPS_DIR) / f"{op}.json"
        if not path.is_file():
            yield pytest.param(op, None, id=f"{op}-missing", marks=pytest.mark.skip(reason=f"{path} not found"))
            continue
        for call in json.loads(path.read_text())["calls"]:
            yield pytest.param(op, call, id=f"{op}-{call['name']}")


@pytest.mark.parametrize(("op", "call"), list(_reference_calls()))
def test_matches_reference(op, call):
    arrays = _arrays(op)
    name = call["name"]

    def tensor(key):
        return torch.from_numpy(arrays[f"{name}/{key}"]) if f"{name}/{key}" in arrays else None

    function = call["function"]
    if function == "bias_act":
        y = bias_act(tensor("x"), tensor("b"), **call["params"])
    elif function == "filtered_lrelu":
        y = filtered_lrelu(tensor("x"), tensor("fu"), tensor("fd"), tensor("b"), **call["params"])
    else:
        y = FUNCTIONS[function](tensor("x"), tensor("f"), **call["params"])
    ref = arrays[f"{name}/y"]
    assert y.dtype == torch.float32
    assert rel_err(y, ref) <= _spec(op)["tolerance"]


def test_activation_defaults_match_reference():
    for call in _spec("bias_act")["calls"]:
        spec = ACTIVATIONS[call["params"]["act"]]
        if "gain" not in call["params"]:
            assert spec.gain == pytest.approx(call["effective"]["gain"])
        if "alpha" not in call["params"] and call["params"]["act"] == "lrelu":
            assert spec.alpha == pytest.approx(call["effective"]["alpha"])


def test_setup_filter_matches_reference_filter():
    ref = _arrays("upfirdn2d")["upfirdn2d_up2_f4/f"]  # recorded as setup_filter([1, 3, 3, 1])
    assert rel_err(setup_filter([1, 3, 3, 1]), ref) <= 1e-6


def test_setup_filter_shapes_and_gain():
    assert setup_filter(None) is None
    assert setup_filter(np.hanning(12)).shape == (12,)
    assert setup_filter([1, 3, 3, 1], separable=True).shape == (4,)
    assert setup_filter([1, 2, 1]).shape == (3, 3)
    assert float(setup_filter([1, 3, 3, 1]).sum()) == pytest.approx(1.0)
    x = torch.randn(1, 2, 9, 9, generator=torch.Generator().manual_seed(0))
    for taps, separable in (([1, 3, 3, 1], True), ([1, 3, 3, 1], False), ([[1, 2], [3, 4]], False)):
        plain = setup_filter(taps, separable=separable)
        scaled = setup_filter(taps, separable=separable, gain=3.0)
        assert rel_err(upfirdn2d(x, scaled), 3.0 * upfirdn2d(x, plain)) <= 1e-6
    with pytest.raises(ValueError):
        setup_filter([[1, 2], [3, 4]], separable=True)


def _direct_upfirdn2d(x, f, up, down, padding, flip_filter, gain):
    """Evaluate the definition sample by sample: each output is a sum over the filter footprint."""
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
    f = np.ones((1, 1)) if f is None else (np.outer(f, f) if f.ndim == 1 else f)
    g = f if flip_filter else f[::-1, ::-1]  # the weights, correlated with the padded signal
    fh, fw = g.shape
    n, c, h, w = x.shape
    out_h = math.ceil((h * upy + py0 + py1 - fh + 1) / downy)
    out_w = math.ceil((w * upx + px0 + px1 - fw + 1) / downx)
    zeros = np.zeros((n, c, h * upy, w * upx))
    zeros[:, :, ::upy, ::upx] = x
    y = np.zeros((n, c, out_h, out_w))
    for oy in range(out_h):
        for ox in range(out_w):
            for ty in range(fh):
                for tx in range(fw):
                    sy, sx = oy * downy + ty - py0, ox * downx + tx - px0  # sample in the upsampled signal
                    if 0 <= sy < h * upy and 0 <= sx < w * upx:
                        y[:, :, oy, ox] += g[ty, tx] * zeros[:, :, sy, sx]
    return gain * y


@pytest.mark.parametrize("seed", range(12))
def test_upfirdn2d_random_configurations(seed):
    rng = np.random.default_rng(seed)
    while True:
        h, w = rng.integers(2, 8, size=2)
        up, down = tuple(rng.integers(1, 4, size=2)), tuple(rng.integers(1, 4, size=2))
        padding = tuple(int(p) for p in rng.integers(-2, 5, size=4))
        kind = seed % 3
        if kind == 0:
            f = None
        elif kind == 1:
            f = rng.uniform(0.1, 1, size=rng.integers(1, 6)).astype(np.float32)
        else:
            f = rng.uniform(0.1, 1, size=rng.integers(1, 5, size=2)).astype(np.float32)
        fw, fh = (1, 1) if f is None else (f.shape[-1], f.shape[0])
        out_w = math.ceil((w * up[0] + padding[0] + padding[1] - fw + 1) / down[0])
        out_h = math.ceil((h * up[1] + padding[2] + padding[3] - fh + 1) / down[1])
        if out_w > 0 and out_h > 0:
            break
    x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
    flip_filter, gain = bool(rng.integers(2)), float(rng.uniform(0.5, 3))
    y = upfirdn2d(
        torch.from_numpy(x),
        None if f is None else torch.from_numpy(f),
        up=list(up),
        down=list(down),
        padding=list(padding),
        flip_filter=flip_filter,
        gain=gain,
    )
    assert tuple(y.shape) == (2, 3, out_h, out_w)
    assert rel_err(y, _direct_upfirdn2d(x, f, up, down, padding, flip_filter, gain)) <= 1e-5


def _generic_conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    """The contract of ``conv2d_resample`` written out literally: resample, convolve, resample."""
    upx, upy = (up, up) if isinstance(up, int) else up
    downx, downy = (down, down) if isinstance(down, int) else down
    px0, px1, py0, py1 = padding
    fw, fh = (1, 1) if f is None else (f.shape[-1], f.shape[0])
    if upx > 1 or upy > 1:
        px0, px1 = px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2
        py0, py1 = py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2
    if downx > 1 or downy > 1:
        px0, px1 = px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2
        py0, py1 = py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2
    upsampling = upx > 1 or upy > 1
    padding = [px0, px1, py0, py1]
    x = upfirdn2d(x, f if upsampling else None, up=up, padding=padding, gain=upx * upy, flip_filter=flip_filter)
    x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
    if downx > 1 or downy > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x


ASYM_2D = [[0.1, 0.5, 0.2, 0.9, 0.3], [0.7, 0.2, 0.4, 0.1, 0.6], [0.3, 0.8, 0.5, 0.2, 0.4]]
CONV_CASES = {
    "up2_k3_f4": dict(up=2, down=1, k=(3, 3), f=[1, 3, 3, 1], padding=(1, 1, 1, 1), groups=1),
    "up2_k1_f4": dict(up=2, down=1, k=(1, 1), f=[1, 3, 3, 1], padding=(0, 0, 0, 0), groups=1),
    "up2_k3_nofilter": dict(up=2, down=1, k=(3, 3), f=None, padding=(1, 1, 1, 1), groups=2),
    "up2x1_k3x2_asym": dict(up=(2, 1), down=1, k=(3, 2), f=ASYM_2D, padding=(1, 0, 2, -1), groups=2),
    "up3_k4_sep12": dict(up=3, down=1, k=(4, 4), f=np.hanning(14)[1:-1], padding=(-1, 0, 0, -1), groups=1),
    "down2_k3_f4": dict(up=1, down=2, k=(3, 3), f=[1, 3, 3, 1], padding=(1, 1, 1, 1), groups=1),
    "down2_k1_f4": dict(up=1, down=2, k=(1, 1), f=[1, 3, 3, 1], padding=(0, 0, 0, 0), groups=2),
    "down1x3_k2x3_asym": dict(up=1, down=(1, 3), k=(2, 3), f=ASYM_2D, padding=(0, 2, -1, 1), groups=1),
    "down2_k3_nofilter": dict(up=1, down=2, k=(3, 3), f=None, padding=(1, 0, 0, 1), groups=1),
    "same_k3_f4": dict(up=1, down=1, k=(3, 3), f=[1, 3, 3, 1], padding=(1, 2, 0, -1), groups=1),
    "same_k5_asym": dict(up=1, down=1, k=(5, 5), f=ASYM_2D, padding=(2, 2, 2, 2), groups=2),
    "up2_down2_k3_f4": dict(up=2, down=2, k=(3, 3), f=[1, 3, 3, 1], padding=(1, 1, 1, 1), groups=1),
}


@pytest.mark.parametrize("flip_weight", [True, False])
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_resample_equals_generic_definition(case, flip_weight):
    spec = CONV_CASES[case]
    gen = torch.Generator().manual_seed(sum(map(ord, case)))
    groups, (kh, kw) = spec["groups"], spec["k"]
    x = torch.randn(2, 4, 7, 6, generator=gen)  # [N, in, H, W]
    w = torch.randn(6, 4 // groups, kh, kw, generator=gen)  # [out, in / groups, kh, kw]
    f = setup_filter(spec["f"])
    kwargs = dict(up=spec["up"], down=spec["down"], padding=spec["padding"], groups=groups, flip_weight=flip_weight)
    kwargs["flip_filter"] = not flip_weight  # each flip takes both values across the parametrisation
    assert rel_err(conv2d_resample(x, w, f, **kwargs), _generic_conv2d_resample(x, w, f, **kwargs)) <= 1e-5


def test_bias_act_clamp_clamps():
    x = 10 * torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    b = torch.tensor([0.5, -1.0, 2.0])
    free = bias_act(x, b, act="lrelu")
    clamped = bias_act(x, b, act="lrelu", clamp=0.5)
    assert float(free.abs().max()) > 0.5
    assert float(clamped.abs().max()) == pytest.approx(0.5)
    inside = free.abs() <= 0.5
    assert torch.equal(clamped[inside], free[inside])
    assert torch.equal(bias_act(x, b, act="lrelu", clamp=-1), free)


def test_bias_act_unknown_activation_names_valid_ones():
    with pytest.raises(ValueError, match="lrelu.*swish"):
        bias_act(torch.zeros(1, 1), act="gelu")


def test_filtered_lrelu_with_identity_filters_is_bias_lrelu_gain():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 5, 4, generator=gen)  # [N, C, H, W]
    b = torch.randn(3, generator=gen)  # [C]
    expected = F.leaky_relu(x + b[None, :, None, None], 0.1) * 1.7
    assert rel_err(filtered_lrelu(x, b=b, gain=1.7, slope=0.1), expected) <= 1e-6
    clamped = filtered_lrelu(x, b=b, gain=1.7, slope=0.1, clamp=0.3)
    assert rel_err(clamped, expected.clamp(-0.3, 0.3)) <= 1e-6


def test_ops_preserve_dtype():
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)  # [N, C, H, W]
    f = setup_filter([1, 3, 3, 1])
    assert upfirdn2d(x, f, up=2, padding=1).dtype == torch.float64
    assert conv2d_resample(x, torch.randn(3, 2, 3, 3), f, up=2, padding=1).dtype == torch.float64
    assert bias_act(x, torch.zeros(2, dtype=torch.float32), act="lrelu").dtype == torch.float64
    assert filtered_lrelu(x, f, f, up=2, down=2, padding=3).dtype == torch.float64
