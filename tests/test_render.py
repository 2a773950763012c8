"""The render request: JSON round trip, what each field does to the picture, and seed latents."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import fixtures_dir

from explorer.engine import load_model
from explorer.engine.render import RenderRequest, render, request_ws, seed_z


def test_json_round_trip():
    req = RenderRequest(seeds=[(3, 0.25), (4, 0.75)], truncation_psi=0.6, truncation_cutoff=4, mix_seed=9,
                        mix_layers=[4, 5, 6], noise_mode="random", noise_seed=2, noise_enabled=[True, False],
                        translate=(0.1, -0.2), rotate=12.5)
    back = RenderRequest.from_json(req.to_json())
    assert back == req
    with pytest.raises(ValueError, match="unknown render request field"):
        RenderRequest.from_dict({**json.loads(req.to_json()), "sede": 1})


def test_seed_latents_match_nvidia_tools():
    arrays = np.load(fixtures_dir() / "nvidia/stylegan2-ada-32/renders.npz")
    for row, seed in enumerate([30, 31, 32]):
        np.testing.assert_array_equal(seed_z(seed, 512)[0], arrays["psi1_const/z"][row])


def test_render_matches_reference(sg2):
    arrays = np.load(fixtures_dir() / "nvidia/stylegan2-ada-32/renders.npz")
    ref = arrays["psi0.7_cutoff4/img"][0]
    expected = np.clip(np.transpose(ref, (1, 2, 0)) * 127.5 + 128, 0, 255).astype(np.uint8)
    result = render(sg2, RenderRequest(seeds=[(33, 1.0)], truncation_psi=0.7, truncation_cutoff=4))
    assert result.image.shape == (32, 32, 3) and result.image.dtype == np.uint8
    assert np.abs(result.image.astype(int) - expected).max() <= 1
    assert result.timings["total"] > 0


def test_seed_blending_is_linear_in_w(sg2):
    a = request_ws(sg2, RenderRequest(seeds=[(1, 1.0)], truncation_psi=0.5))
    b = request_ws(sg2, RenderRequest(seeds=[(2, 1.0)], truncation_psi=0.5))
    mid = request_ws(sg2, RenderRequest(seeds=[(1, 0.25), (2, 0.75)], truncation_psi=0.5))
    torch.testing.assert_close(mid, 0.25 * a + 0.75 * b)


def test_style_mixing_takes_chosen_layers(sg2):
    base = request_ws(sg2, RenderRequest(seeds=[(1, 1.0)]))
    other = request_ws(sg2, RenderRequest(seeds=[(7, 1.0)]))
    mixed = request_ws(sg2, RenderRequest(seeds=[(1, 1.0)], mix_seed=7, mix_layers=[2, 3]))
    torch.testing.assert_close(mixed[:, 2:4], other[:, 2:4])
    torch.testing.assert_close(mixed[:, [0, 1, 4, 5, 6, 7]], base[:, [0, 1, 4, 5, 6, 7]])


def test_noise_toggles(sg2):
    n = len(sg2.info.noise_layers)
    on = render(sg2, RenderRequest(seeds=[(5, 1.0)])).image
    all_off = render(sg2, RenderRequest(seeds=[(5, 1.0)], noise_enabled=[False] * n)).image
    none = render(sg2, RenderRequest(seeds=[(5, 1.0)], noise_mode="none")).image
    one_off = render(sg2, RenderRequest(seeds=[(5, 1.0)], noise_enabled=[True] * (n - 1) + [False])).image
    np.testing.assert_array_equal(all_off, none)
    assert not np.array_equal(on, one_off)
    r1 = render(sg2, RenderRequest(seeds=[(5, 1.0)], noise_mode="random", noise_seed=1)).image
    r1b = render(sg2, RenderRequest(seeds=[(5, 1.0)], noise_mode="random", noise_seed=1)).image
    r2 = render(sg2, RenderRequest(seeds=[(5, 1.0)], noise_mode="random", noise_seed=2)).image
    np.testing.assert_array_equal(r1, r1b)
    assert not np.array_equal(r1, r2)


def test_transform_only_where_the_model_has_one(sg2, sg3):
    still = render(sg3, RenderRequest(seeds=[(0, 1.0)])).image
    moved = render(sg3, RenderRequest(seeds=[(0, 1.0)], translate=(0.25, 0.0), rotate=10)).image
    assert not np.array_equal(still, moved)
    # StyleGAN3 has no noise: noise settings leave the picture unchanged.
    np.testing.assert_array_equal(still, render(sg3, RenderRequest(seeds=[(0, 1.0)], noise_mode="none")).image)
    with pytest.raises(ValueError, match="no input transform"):
        render(sg2, RenderRequest(translate=(0.1, 0.0)))


@pytest.mark.parametrize(
    ("req", "match"),
    [
        (RenderRequest(seeds=[]), "at least one seed"),
        (RenderRequest(mix_layers=[99], mix_seed=1), "outside"),
        (RenderRequest(mix_layers=[1]), "no mixing seed"),
        (RenderRequest(noise_mode="loud"), "unknown noise mode"),
        (RenderRequest(noise_enabled=[True]), "noise layers"),
    ],
)
def test_bad_requests_are_explained(sg2, req, match):
    with pytest.raises(ValueError, match=match):
        render(sg2, req)


def test_conditional_model_needs_a_class():
    model = load_model(fixtures_dir() / "nvidia/stylegan2-32-cond/model.pkl")
    with pytest.raises(ValueError, match="choose a class from 0 to 3"):
        render(model, RenderRequest())
    a = render(model, RenderRequest(class_idx=0)).image
    b = render(model, RenderRequest(class_idx=3)).image
    assert not np.array_equal(a, b)
