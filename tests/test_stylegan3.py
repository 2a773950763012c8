"""StyleGAN3 (-T and -R): filter design, and parity with NVIDIA's reference renders of the fixtures."""

import functools
import json
import math

import numpy as np
import pytest
import torch
from conftest import FIXTURES, fixtures_dir, rel_err

from explorer.engine.formats.nvidia_pickle import read_nvidia_pickle
from explorer.engine.networks.stylegan3 import Generator, SynthesisNetwork
from explorer.engine.ops.filter_design import bessel_j1, lowpass_filter, radial_lowpass_filter

CASES = ["stylegan3-t-32", "stylegan3-r-32"]
FILTER_TOLERANCE = 1e-6


def _case(name: str) -> tuple[dict, dict]:
    """The case description and its reference arrays."""
    folder = fixtures_dir() / "nvidia" / name
    with open(folder / "case.json") as f:
        case = json.load(f)
    with np.load(folder / "renders.npz") as npz:
        arrays = dict(npz)
    return case, arrays


@functools.cache
def _checkpoint(name: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """The G_ema constructor arguments and state dict, read through the safe reader."""
    record = read_nvidia_pickle(fixtures_dir() / "nvidia" / name / "model.pkl")["G_ema"]
    return record.init_kwargs, record.state_dict()


@functools.cache
def _generator(name: str) -> Generator:
    """Our Generator with the checkpoint's weights, loaded strictly."""
    init_kwargs, state = _checkpoint(name)
    G = Generator(**init_kwargs).eval()
    G.load_state_dict(state, strict=True)
    return G


def _renders():
    """(case, render name) for every render of every case, read without failing collection."""
    folder = FIXTURES / "nvidia"
    params = []
    for name in CASES:
        path = folder / name / "case.json"
        renders = json.loads(path.read_text())["renders"] if path.is_file() else [{"name": "missing"}]
        params += [pytest.param(name, r["name"], id=f"{name}/{r['name']}") for r in renders]
    return params


# ---------------------------------------------------------------------------------------------
# Filter design without the fixtures.


def test_bessel_j1_matches_its_power_series_and_tabulated_values():
    # Power series sum_k (-1)^k (x/2)^(2k+1) / (k! (k+1)!), exact to ~1e-14 for |x| <= 10.
    x = np.linspace(-10.0, 10.0, 801)
    series = [math.fsum((-1) ** k * (v / 2) ** (2 * k + 1) / (math.factorial(k) * math.factorial(k + 1))
                        for k in range(60)) for v in x]
    assert np.max(np.abs(bessel_j1(x) - series)) < 1e-12

    # Larger arguments, against values computed to 20 digits with mpmath.
    table = {7.5: 0.13524842757970550518, 20.0: 0.066833124175850045579,
             45.5: 0.079813799653066775898, 60.0: 0.046598383758166317869}
    for v, ref in table.items():
        assert abs(bessel_j1(v) - ref) < 1e-13 and abs(bessel_j1(-v) + ref) < 1e-13
    assert abs(bessel_j1(3.8317059702075123156)) < 1e-14  # First zero.
    assert abs(bessel_j1(0.0)) < 1e-15


@pytest.mark.parametrize("numtaps, cutoff, width, fs", [(12, 2.0, 4.0, 32), (24, 8.0, 8.0, 64), (12, 11.3, 5.1, 64)])
def test_lowpass_filters_are_symmetric_with_unit_dc_gain(numtaps, cutoff, width, fs):
    h = lowpass_filter(numtaps, cutoff, width, fs)
    assert h.shape == (numtaps,)
    assert np.allclose(h, h[::-1], atol=1e-15)
    assert abs(h.sum() - 1) < 1e-12

    f = radial_lowpass_filter(numtaps, cutoff, width, fs)
    assert f.shape == (numtaps, numtaps)
    assert np.allclose(f, f.T, atol=1e-15) and np.allclose(f, f[::-1, ::-1], atol=1e-15)
    assert abs(f.sum() - 1) < 1e-12


def test_lowpass_filter_attenuates_the_stopband():
    numtaps, cutoff, width, fs = 24, 4.0, 4.0, 32
    h = lowpass_filter(numtaps, cutoff, width, fs)
    freqs = np.linspace(0, fs / 2, 513)
    m = np.arange(numtaps) - (numtaps - 1) / 2
    response = np.abs(np.cos(2 * math.pi * np.outer(freqs, m) / fs) @ h)  # Real: h is symmetric.
    assert np.all(response[freqs <= cutoff - width / 2] > 0.95)
    assert np.all(response[freqs >= cutoff + width / 2] < 0.02)


# ---------------------------------------------------------------------------------------------
# Construction and the forward contract, on a small random network.


@pytest.fixture(scope="module")
def small_generator():
    torch.manual_seed(0)
    return Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                     channel_base=64, channel_max=8, num_layers=4, num_critical=1).eval()


def test_generator_shapes_and_attributes(small_generator):
    G = small_generator
    assert (G.z_dim, G.c_dim, G.w_dim, G.img_resolution, G.img_channels) == (8, 0, 8, 16, 3)
    assert G.num_ws == G.synthesis.num_ws == G.mapping.num_ws == 6
    assert G.synthesis.noise_layers == [] and G.synthesis.img_resolution == 16
    assert len(G.synthesis.layer_names) == 5 and G.synthesis.layer_names[-1].endswith("_16_3")
    assert G.mapping.num_layers == 2 and G.mapping.w_avg_beta == 0.998
    assert torch.equal(G.synthesis.input.affine.bias, torch.tensor([1.0, 0.0, 0.0, 0.0]))
    with torch.no_grad():
        img = G(torch.randn([2, 8]))
    assert img.shape == (2, 3, 16, 16) and img.dtype == torch.float32 and torch.isfinite(img).all()


def test_synthesis_rejects_bad_shapes(small_generator):
    synthesis = small_generator.synthesis
    with pytest.raises(ValueError, match=r"ws must have shape \[N, 6, 8\]"):
        synthesis(torch.zeros([2, 5, 8]))
    with pytest.raises(ValueError, match=r"ws must have shape"):
        synthesis(torch.zeros([6, 8]))
    with pytest.raises(ValueError, match=r"transform must be a 3x3 matrix"):
        synthesis(torch.zeros([1, 6, 8]), transform=torch.eye(2))


def test_synthesis_ignores_noise_arguments(small_generator):
    ws = torch.randn([2, 6, 8], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = small_generator.synthesis(ws)
        other = small_generator.synthesis(ws, noise_mode="random", noise=[torch.ones(1)],
                                          generator=torch.Generator().manual_seed(2))
    assert torch.equal(ref, other)


def test_transform_argument_leaves_the_buffer_alone(small_generator):
    synthesis = small_generator.synthesis
    ws = torch.randn([1, 6, 8], generator=torch.Generator().manual_seed(3))
    angle = 0.3
    transform = torch.tensor([[math.cos(angle), -math.sin(angle), 0.1],
                              [math.sin(angle), math.cos(angle), 0.0],
                              [0.0, 0.0, 1.0]])
    with torch.no_grad():
        plain = synthesis(ws)
        moved = synthesis(ws, transform=transform)
        identity = synthesis(ws, transform=torch.eye(3))
    assert torch.equal(synthesis.input.transform, torch.eye(3))
    assert not torch.allclose(plain, moved)
    assert torch.equal(plain, identity)


def test_layer_schedule_names_match_the_released_layout():
    synthesis = SynthesisNetwork(w_dim=8, img_resolution=1024, img_channels=3)
    assert synthesis.layer_names == [
        "L0_36_512", "L1_36_512", "L2_52_512", "L3_52_512", "L4_84_512", "L5_148_512", "L6_148_512",
        "L7_276_323", "L8_276_203", "L9_532_128", "L10_1044_81", "L11_1044_51", "L12_1044_32",
        "L13_1024_32", "L14_1024_3",
    ]


# ---------------------------------------------------------------------------------------------
# Against the fixtures.


@pytest.mark.parametrize("name", CASES)
def test_designed_filters_match_checkpoint_buffers(name):
    init_kwargs, state = _checkpoint(name)
    fresh = Generator(**init_kwargs)  # Filters as designed at construction, nothing loaded.
    worst = 0.0
    for layer_name in fresh.synthesis.layer_names:
        layer = getattr(fresh.synthesis, layer_name)
        for kind in ("up_filter", "down_filter"):
            ours, ref = getattr(layer, kind), state.get(f"synthesis.{layer_name}.{kind}")
            assert (ours is None) == (ref is None), f"{layer_name}.{kind}: presence differs"
            if ref is None:
                continue
            assert ours.shape == ref.shape, f"{layer_name}.{kind}: {list(ours.shape)} vs {list(ref.shape)}"
            err = float((ours - ref).abs().max())
            assert err < FILTER_TOLERANCE, f"{layer_name}.{kind}: max abs error {err:.3g}"
            worst = max(worst, err)
    print(f"{name}: worst filter error {worst:.3g}")


@pytest.mark.parametrize("name, render", _renders())
def test_render_parity(name, render):
    case, arrays = _case(name)
    spec = next(r for r in case["renders"] if r["name"] == render)
    G = _generator(name)
    z, w_ref, img_ref = (arrays[f"{render}/{key}"] for key in ("z", "w", "img"))
    c = torch.from_numpy(arrays[f"{render}/c"]) if f"{render}/c" in arrays else None

    # Mapping with truncation.
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(z), c, truncation_psi=spec["truncation_psi"],
                       truncation_cutoff=spec["truncation_cutoff"])
    w_err = rel_err(ws, w_ref)
    assert w_err < 1e-5, f"w rel err {w_err:.3g}"

    # Synthesis from the reference ws, with the transform buffer the reference used.
    transforms = [None]
    if spec["input_transform"] is not None:
        inverse = np.linalg.inv(np.asarray(spec["input_transform"], dtype=np.float64)).astype(np.float32)
        transforms = [torch.tensor(spec["transform_buffer"]), torch.from_numpy(inverse)]
    errors = []
    for transform in transforms:
        with torch.no_grad():
            img = G.synthesis(torch.from_numpy(w_ref), noise_mode=spec["noise_mode"], transform=transform)
        errors.append(rel_err(img, img_ref))
    print(f"{name}/{render}: w rel err {w_err:.3g}, img rel err {max(errors):.3g}")
    assert max(errors) < case["tolerance"], f"img rel errs {errors} above {case['tolerance']}"
    assert torch.equal(G.synthesis.input.transform, _checkpoint(name)[1]["synthesis.input.transform"])
