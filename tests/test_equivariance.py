"""Equivariance metrics against the reference values, the band-limited resampling, spectra and sticking."""

from __future__ import annotations

import copy
import json
import math
import threading

import numpy as np
import pytest
import torch
from conftest import fixtures_dir

from explorer.engine import load_model
from explorer.engine.equivariance import (
    METRICS,
    EqDraw,
    apply_affine_bandlimited,
    compute_eq,
    diff_heatmap,
    draw_metric,
    replay_metric,
    resample_affine,
    shift_integer,
    shift_lanczos,
    untransform,
    untransform_diff,
)
from explorer.engine.render import seed_z
from explorer.engine.spectrum import power_spectrum, radial_profile, sticking_average, texture_sticking

CASES = ("stylegan3-t-32", "stylegan3-r-32")


def reference(case: str) -> tuple[dict, dict]:
    """(the case's equivariance JSON, its draws) from the fixtures."""
    folder = fixtures_dir() / "nvidia/equivariance"
    with np.load(folder / f"{case}.npz") as npz:
        draws = {k: npz[k] for k in npz.files}
    return json.loads((folder / f"{case}.json").read_text()), draws


def smooth_image(seed: int = 0, size: int = 32, cutoff: float = 0.3) -> torch.Tensor:
    """Random image [1, 3, size, size] holding only frequencies below `cutoff` cycles per pixel."""
    spec = np.fft.fft2(np.random.RandomState(seed).randn(3, size, size))
    f = np.fft.fftfreq(size)
    spec[:, np.hypot(*np.meshgrid(f, f)) > cutoff] = 0
    return torch.as_tensor(np.fft.ifft2(spec).real * 3, dtype=torch.float32)[None]


# ---------------------------------------------------------------------------------------------
# The metrics against the reference.


@pytest.mark.parametrize("case", CASES)
def test_draws_reproduce_the_reference(case):
    ref, npz = reference(case)
    settings = ref["settings"]
    for metric in METRICS:
        draws = draw_metric(metric, settings["num_samples"], settings["batch_size"], npz[f"{metric}/z"].shape[2],
                            32, ref["results"][metric]["torch_manual_seed"], settings["translate_max"],
                            settings["rotate_max"])
        np.testing.assert_array_equal(np.stack([d.z for d in draws]), npz[f"{metric}/z"])
        np.testing.assert_array_equal(np.stack([d.rand for d in draws]), npz[f"{metric}/rand"])
        network = np.stack([np.linalg.inv(d.input_transform) for d in draws])  # what the network is given
        np.testing.assert_allclose(network, npz[f"{metric}/transform"], rtol=0, atol=1e-6)  # float32 there


def test_eqt_int_matches_the_reference(sg3):
    ref, _ = reference("stylegan3-t-32")
    s, expected = ref["settings"], ref["results"]["eqt_int"]
    result = compute_eq(sg3, "eqt_int", s["num_samples"], s["batch_size"], expected["torch_manual_seed"])
    assert result.num_samples == 64
    assert abs(result.psnr_db - expected["psnr_db"]) <= ref["tolerance_db"]


@pytest.mark.slow
@pytest.mark.parametrize(("case", "metric"), [(c, m) for c in CASES for m in METRICS
                                              if (c, m) != ("stylegan3-t-32", "eqt_int")])
def test_metrics_match_the_reference(case, metric):
    """Replayed from the stored draws, without torch's generator."""
    ref, npz = reference(case)
    model = load_model(fixtures_dir() / f"nvidia/{case}/model.pkl")
    draws = [EqDraw(z=z, rand=r, input_transform=np.linalg.inv(t.astype(np.float64)))
             for z, r, t in zip(npz[f"{metric}/z"], npz[f"{metric}/rand"], npz[f"{metric}/transform"], strict=True)]
    result = replay_metric(model, metric, draws)
    assert abs(result.psnr_db - ref["results"][metric]["psnr_db"]) <= ref["tolerance_db"]


def test_progress_and_cancel(sg3):
    reports = []
    result = compute_eq(sg3, "eqt_frac", num_samples=3, batch_size=2, seed=5, progress=reports.append)
    assert [(p.done, p.total) for p in reports] == [(2, 4), (4, 4)]  # whole batches, as the reference
    assert result.num_samples == 4 and math.isfinite(result.psnr_db)
    stop = threading.Event()
    stop.set()
    assert compute_eq(sg3, "eqr", num_samples=8, cancel=stop) is None


def test_models_without_input_transform_and_empty_runs_are_refused(sg2, sg3):
    with pytest.raises(ValueError, match="need a StyleGAN3 model"):
        compute_eq(sg2, "eqt_int", num_samples=4)
    with pytest.raises(ValueError, match="at least 1"):
        compute_eq(sg3, "eqt_int", num_samples=0)
    with pytest.raises(ValueError, match="unknown equivariance metric"):
        draw_metric("eqx", 4, 4, 8, 32, 0)


# ---------------------------------------------------------------------------------------------
# Resampling.


def test_identity_untransform_returns_the_input(sg3):
    img = sg3.synthesize(sg3.map(seed_z(0, sg3.info.z_dim)))
    for matrix in (None, np.eye(3)):
        out, mask = untransform(img, matrix)
        torch.testing.assert_close(out, img, rtol=0, atol=0)
        assert bool(mask.all())
    # The general band-limited path, forced on the identity, is the identity up to its filter's truncation.
    out, mask = resample_affine(img, np.eye(3))
    assert mask.sum() > 0
    assert float(((out - img) * mask).abs().max()) < 1e-4


def test_shifts_move_content_the_way_the_input_transform_does():
    img = smooth_image()
    out, mask = shift_integer(img, 3, -2)
    torch.testing.assert_close(out[..., :-2, 3:], img[..., 2:, :-3])
    assert int(mask.sum()) == 29 * 30
    out, mask = shift_lanczos(img, 3.0, -2.0)  # whole pixels: the Lanczos kernel is a pure shift
    torch.testing.assert_close(out[..., 3:-5, 6:-2], img[..., 5:-3, 3:-5], rtol=0, atol=1e-6)
    low = smooth_image(cutoff=0.1)
    half, mask = shift_lanczos(low, 0.5, 0.0)
    back, mask2 = shift_lanczos(half, -0.5, 0.0)
    valid = (mask * mask2).bool().expand_as(low)
    assert float((back - low)[valid].abs().max()) < 0.02  # low frequencies survive a half-pixel round trip
    # apply_affine_bandlimited takes translations in image widths, like Model.synthesize's input_transform.
    m = np.eye(3)
    m[:2, 2] = [3 / 32, -2 / 32]
    torch.testing.assert_close(apply_affine_bandlimited(img, m)[0], shift_integer(img, 3, -2)[0])


def test_quarter_turn_matches_rot90():
    img = smooth_image(1)
    m = np.array([[0.0, 1, 0], [-1, 0, 0], [0, 0, 1]])  # content at (x, y) -> (y, -x): counter-clockwise
    out, mask = resample_affine(img, m)
    expected = torch.rot90(img, 1, dims=(2, 3))
    valid = mask.bool().expand_as(img)
    assert valid.sum() > 0
    assert float((out - expected)[valid].abs().max()) < 1e-3


def test_untransform_sg3t_is_equivariant_sg2_is_not(sg3, sg2):
    """An 8-pixel translation (a quarter of the image), undone exactly, against the untranslated render.

    StyleGAN2 has no input transform, so "the same translation" is made on what plays the role of its
    input: the learned 4x4 constant and every noise map are rolled by a quarter of their width (1 pixel
    at 4x4, 8 at 32x32), which is the input translation a translation-equivariant network would turn
    into this output shift. StyleGAN3-T translates its Fourier features by the same quarter width.
    """
    shift = 8
    m = np.eye(3)
    m[0, 2] = shift / 32
    sg3_psnr = untransform_diff(sg3, sg3.map(seed_z(0, sg3.info.z_dim)), m).psnr_db

    moved_model = copy.deepcopy(sg2)
    syn = moved_model.generator.synthesis
    with torch.no_grad():
        syn.b4.const.copy_(torch.roll(syn.b4.const, shift * 4 // 32, dims=-1))
    noise = []
    for name, res in sg2.info.noise_layers:
        block, layer = name.split(".")
        const = getattr(getattr(syn, block), layer).noise_const  # [res, res]
        noise.append(torch.roll(const, shift * res // 32, dims=-1)[None, None])
    ws = sg2.map(seed_z(0, sg2.info.z_dim))
    back, mask = untransform(moved_model.synthesize(ws, noise=noise), m)
    sg2_psnr = diff_heatmap(back, sg2.synthesize(ws), mask).psnr_db
    assert sg3_psnr > sg2_psnr + 20, (sg3_psnr, sg2_psnr)


def test_diff_heatmap():
    img = smooth_image()
    same = diff_heatmap(img, img)
    assert same.psnr_db == math.inf and not same.heatmap.any()
    other = img.clone()
    other[..., 5, 7] += 0.5
    mask = torch.ones(1, 1, 32, 32)
    mask[..., :, 20:] = 0
    d = diff_heatmap(other, img, mask)
    assert d.heatmap.shape == (32, 32, 3) and d.heatmap.dtype == np.uint8
    assert np.unravel_index(np.argmax(d.error), d.error.shape) == (5, 7)
    assert d.psnr_db == pytest.approx(20 * math.log10(2) - 10 * math.log10(0.25 / (32 * 20)))
    assert (d.heatmap[:, 20:] == 96).all()  # not compared: grey


# ---------------------------------------------------------------------------------------------
# Spectra and texture sticking.


def test_spectrum_of_a_sinusoid_peaks_at_its_frequency():
    y, x = np.mgrid[0:32, 0:48]
    fx, fy = 5 / 48, 3 / 32
    spec = power_spectrum(np.cos(2 * np.pi * (fx * x + fy * y) + 0.4)[None])
    assert spec.power_db.shape == (64, 96)
    iy, ix = np.unravel_index(np.argmax(spec.power_db), spec.power_db.shape)
    assert abs(abs(spec.freq_y[iy]) - fy) < 1e-9 and abs(abs(spec.freq_x[ix]) - fx) < 1e-9
    assert spec.power_db.max() - np.median(spec.power_db) > 60  # the Kaiser window keeps leakage low
    radius, profile = radial_profile(spec)
    assert abs(radius[np.nanargmax(profile)] - math.hypot(fx, fy)) <= 0.5 / len(radius)


def test_sticking_average_of_identical_frames_is_the_frame():
    frame = np.random.RandomState(0).randint(0, 256, (16, 16, 3)).astype(np.uint8)
    np.testing.assert_array_equal(sticking_average(np.stack([frame] * 7)), frame)
    t = torch.randn(3, 16, 16)
    assert torch.equal(sticking_average(torch.stack([t] * 5)), t)


def test_texture_sticking_job(sg3):
    z = seed_z(3, sg3.info.z_dim)
    from explorer.engine.render import to_uint8

    still = texture_sticking(sg3, z, num_frames=2, radius=0.0)
    single = to_uint8(sg3.synthesize(sg3.map(z)))
    assert np.abs(still.astype(int) - single).max() <= 1
    stop = threading.Event()
    stop.set()
    assert texture_sticking(sg3, z, num_frames=4, cancel=stop) is None
    with pytest.raises(ValueError, match="no input transform"):
        texture_sticking(load_model(fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl"), seed_z(0, 512),
                         translate=0.1)
