"""Spectra of two models for the same request: what carries over from one model's request to another's,
which layer stands for which, a measured difference between StyleGAN2 and StyleGAN3-T, and the
engine worker's companion model and comparison mailbox."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import fixtures_dir
from test_worker import Events, worker_factory  # noqa: F401 - fixture

from explorer.engine import load_model
from explorer.engine.render import DirectionEdit, RenderRequest
from explorer.engine.spectrum import (
    MAPS_PER_FFT,
    companion_request,
    compare_spectra,
    distinct_labels,
    model_spectrum,
    power_spectrum,
)
from explorer.engine.worker import CompanionLoaded, JobFailed, SpectraCompared


def high_frequency_share(spectrum, above: float = 0.25) -> float:
    """The share of the power inside Nyquist that lies above `above` cycles per pixel."""
    fy, fx = np.meshgrid(spectrum.freq_y, spectrum.freq_x, indexing="ij")
    radius, power = np.hypot(fx, fy), 10 ** (spectrum.power_db / 10)
    inside = radius < 0.5
    return float(power[inside & (radius >= above)].sum() / power[inside].sum())


def test_power_spectrum_in_chunks_is_the_mean_of_the_maps_spectra():
    maps = np.random.RandomState(0).randn(MAPS_PER_FFT * 2 + 3, 12, 10)
    whole = 10 ** (power_spectrum(maps).power_db / 10)
    each = np.mean([10 ** (power_spectrum(m[None]).power_db / 10) for m in maps], axis=0)
    np.testing.assert_allclose(whole, each, rtol=1e-10)


def test_legend_names_tell_two_models_apart():
    ada, cond = (fixtures_dir() / f"nvidia/{name}/model.pkl" for name in ("stylegan2-ada-32", "stylegan2-32-cond"))
    g_ema, g, other = load_model(ada).info, load_model(ada, network="G").info, load_model(cond).info
    assert distinct_labels(g_ema, g) == ("stylegan2 · model.pkl (G_ema)", "stylegan2 · model.pkl (G)")
    assert distinct_labels(g_ema, other) == ("stylegan2 · stylegan2-ada-32/model.pkl (G_ema)",
                                             "stylegan2 · stylegan2-32-cond/model.pkl (G_ema)")
    assert distinct_labels(g_ema, g_ema) == ("stylegan2 · model.pkl (first)", "stylegan2 · model.pkl (second)")


def test_both_models_are_measured_for_the_same_request(sg2, sg3):
    req = RenderRequest(seeds=[(3, 0.6), (4, 0.4)], truncation_psi=0.7)
    comparison = compare_spectra(sg2, sg3, req)
    first, second = comparison.first, comparison.second
    assert (first.label, second.label) == ("stylegan2 · model.pkl", "stylegan3-t · model.pkl")
    assert first.source == second.source == "output 32×32" and comparison.notes == ()
    assert first.spectrum.power_db.shape == second.spectrum.power_db.shape == (64, 64)
    assert first.profile[0].shape == second.profile[0].shape == (32,)
    # One function measures both sides: each is the spectrum of its model for that request.
    np.testing.assert_array_equal(first.spectrum.power_db, model_spectrum(sg2, req).spectrum.power_db)
    np.testing.assert_array_equal(second.spectrum.power_db, model_spectrum(sg3, req).spectrum.power_db)


def test_stylegan3_t_output_holds_far_less_high_frequency_power(sg2, sg3):
    # Measured on the fixtures (seeds 0-3, ψ 1): above a quarter cycle per pixel StyleGAN2 keeps
    # 2-8 % of its power (mean 4.0 %), StyleGAN3-T 0-0.5 % (mean 0.13 %): its last layers are low-passed.
    shares = {"sg2": [], "sg3": []}
    for seed in range(4):
        comparison = compare_spectra(sg2, sg3, RenderRequest(seeds=[(seed, 1.0)]))
        shares["sg2"].append(high_frequency_share(comparison.first.spectrum))
        shares["sg3"].append(high_frequency_share(comparison.second.spectrum))
    sg2_share, sg3_share = np.mean(shares["sg2"]), np.mean(shares["sg3"])
    assert sg2_share > 0.02 and sg3_share < sg2_share / 10
    assert all(b < a for a, b in zip(shares["sg2"], shares["sg3"], strict=True))


def test_layers_are_matched_by_resolution(sg2, sg3):
    comparison = compare_spectra(sg2, sg3, RenderRequest(layer="b16"))
    assert comparison.first.source == "layer b16 (16 px, 32 channels)"
    assert comparison.second.source == "layer L4_36_64 (16 px, 64 channels)"  # the last one at 16 (+ margins)
    assert comparison.second.spectrum.power_db.shape == (72, 72)
    back = compare_spectra(sg3, sg2, RenderRequest(layer="L6_52_64"))
    assert back.second.source == "layer b32 (32 px, 16 channels)"
    none = compare_spectra(sg2, sg3, RenderRequest(layer="b4"))
    assert none.second is None and none.notes == ("stylegan3-t · model.pkl has no layer at 4×4",)


def test_what_belongs_to_the_first_model_stays_with_it(sg2, sg3):
    req = RenderRequest(seeds=[(5, 1.0)], truncation_psi=0.5, truncation_cutoff=4, mix_seed=9, mix_layers=[6, 7],
                        noise_mode="random", noise_seed=3, noise_enabled=[True] * 6 + [False],
                        edits=[DirectionEdit(direction=[0.1] * 512, amount=2.0)])
    other, notes = companion_request(req, sg2, sg3)
    assert other == RenderRequest(seeds=[(5, 1.0)], truncation_psi=0.5, truncation_cutoff=4, noise_mode="random",
                                  noise_seed=3)
    assert notes == ["style mixing, direction edits, per-layer noise switches: first model only"]
    moved = RenderRequest(translate=(0.1, 0.0), rotate=10.0, untransform=True)
    assert companion_request(moved, sg2, sg3)[0].translate == (0.1, 0.0)
    other, notes = companion_request(moved, sg3, sg2)
    assert (other.translate, other.rotate) == ((0.0, 0.0), 0.0)
    assert notes == ["a stylegan2 model has no input transform: shown untranslated"]


def test_conditional_second_model_gets_a_class(sg2):
    from explorer.engine import load_model

    cond = load_model(fixtures_dir() / "nvidia/stylegan2-32-cond/model.pkl")
    other, notes = companion_request(RenderRequest(), sg2, cond)
    assert other.class_idx == 0 and notes == ["class 0 for the second model"]
    assert compare_spectra(sg2, cond, RenderRequest()).second.spectrum.power_db.shape == (64, 64)


# -- the worker ------------------------------------------------------------------------------------


def test_worker_compares_with_a_companion_only_while_one_is_loaded(worker_factory, tmp_path):  # noqa: F811
    worker, events = worker_factory()
    nvidia = fixtures_dir() / "nvidia"
    worker.compare(RenderRequest())  # nothing on show, nothing to compare with: no event
    worker.load(nvidia / "stylegan2-ada-32/model.pkl")
    stamp = worker.load_companion(nvidia / "stylegan3-t-32/model.pkl")
    events.wait(lambda ev: any(isinstance(e, CompanionLoaded) for e in ev))
    (loaded,) = events.of(CompanionLoaded)
    assert loaded.stamp == stamp and loaded.info.family == "stylegan3-t"
    req = RenderRequest(seeds=[(2, 1.0)])
    stamp = worker.compare(req)
    events.wait(lambda ev: any(isinstance(e, SpectraCompared) for e in ev))
    (compared,) = events.of(SpectraCompared)
    assert compared.stamp == stamp and compared.request == req
    assert compared.comparison.second.label == "stylegan3-t · model.pkl"

    (tmp_path / "bad.pkl").write_bytes(b"not a pickle")
    stamp = worker.load_companion(tmp_path / "bad.pkl")
    events.wait(lambda ev: any(isinstance(e, JobFailed) for e in ev))
    (failed,) = events.of(JobFailed)
    assert (failed.stamp, failed.job) == (stamp, "compare")
    worker.compare(req)  # the companion before the failed load stays
    events.wait(lambda ev: len(events.of(SpectraCompared)) == 2)

    worker.load_companion(None)
    worker.compare(req)
    deadline = time.monotonic() + 30
    while worker.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not worker.busy and len(events.of(SpectraCompared)) == 2  # nothing to compare with: no event


@pytest.mark.parametrize("order", ["compare first", "render first"])
def test_a_waiting_render_goes_before_a_comparison(worker_factory, order):  # noqa: F811
    nvidia = fixtures_dir() / "nvidia"
    worker, events = worker_factory()
    worker.load(nvidia / "stylegan2-ada-32/model.pkl")
    worker.load_companion(nvidia / "stylegan3-t-32/model.pkl")
    calls = [lambda: worker.compare(RenderRequest()), lambda: worker.submit(RenderRequest())]
    for call in calls if order == "compare first" else calls[::-1]:
        call()
    events.wait(lambda ev: events.of(SpectraCompared))
    kinds = [type(e).__name__ for e in events.items if type(e).__name__ in ("FrameRendered", "SpectraCompared")]
    assert kinds == ["FrameRendered", "SpectraCompared"]
