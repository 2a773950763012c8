"""Engine additions behind the window's live views: untransform, layer views with spectra, walk frames
as requests, direction files and sheets as jobs, texture sticking and the untransform diff of a request."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import fixtures_dir

from explorer.engine import load_model
from explorer.engine.directions import file_direction, pca_directions, save_direction_sheet
from explorer.engine.interpolate import Interpolator, walk_from_seeds
from explorer.engine.render import RenderRequest, layer_shapes, render
from explorer.engine.views import request_diff, request_sticking


@pytest.fixture(scope="module")
def sg3():
    return load_model(fixtures_dir() / "nvidia" / "stylegan3-t-32" / "model.pkl")


@pytest.fixture(scope="module")
def sg2():
    return load_model(fixtures_dir() / "nvidia" / "stylegan2-ada-32" / "model.pkl")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))


def test_untransform_is_exact_at_identity_and_undoes_a_shift(sg3):
    plain = render(sg3, RenderRequest()).image
    np.testing.assert_array_equal(render(sg3, RenderRequest(untransform=True)).image, plain)
    moved = render(sg3, RenderRequest(translate=(4 / 32, 0.0))).image
    back = render(sg3, RenderRequest(translate=(4 / 32, 0.0), untransform=True)).image
    assert not np.array_equal(moved, plain)
    inside = np.s_[:, 8:-8]  # away from the edge that moved in
    def error(img):
        return np.abs(img[inside].astype(int) - plain[inside]).mean()

    assert error(back) < error(moved)


def test_untransform_changes_nothing_without_an_input_transform(sg2):
    plain = render(sg2, RenderRequest()).image
    np.testing.assert_array_equal(render(sg2, RenderRequest(untransform=True)).image, plain)


@pytest.mark.parametrize("model_name", ["sg2", "sg3"])
def test_layer_views_have_the_layer_size(request, model_name):
    model = request.getfixturevalue(model_name)
    shapes = layer_shapes(model)
    assert [s[0] for s in shapes] == list(model.generator.synthesis.layer_names)
    name, c, h, w = shapes[1]
    grey = render(model, RenderRequest(layer=name, channels=1, channel_offset=c + 5))
    assert grey.image.shape == (h, w, 3) and grey.profile is None
    assert np.array_equal(grey.image[..., 0], grey.image[..., 2])
    fft = render(model, RenderRequest(layer=name, fft=True))
    assert fft.image.shape == (2 * h, 2 * w, 3)
    freq, db = fft.profile
    assert freq[0] > 0 and freq[-1] < 0.5 and np.isfinite(db).any()
    # The default path is untouched by the layer view's settings.
    plain = render(model, RenderRequest()).image
    np.testing.assert_array_equal(render(model, RenderRequest(channels=1, fft=True)).image, plain)


def test_a_bad_layer_is_a_clear_error(sg2):
    with pytest.raises(ValueError, match="no layer 'L99'"):
        render(sg2, RenderRequest(layer="L99"))


def test_a_walk_frame_as_a_request_renders_the_same_pixels(sg2):
    walk = walk_from_seeds([1, 2], RenderRequest(truncation_psi=0.7, mix_seed=5, mix_layers=[0, 1]), loop=True)
    interp = Interpolator(sg2, walk)
    for t in (0.0, 0.4, 1.5):
        req = interp.frame_request(t)
        assert req.ws is not None and req.mix_layers == [] and req.truncation_psi == 1.0
        np.testing.assert_array_equal(render(sg2, req).image, interp.render(t))


def test_direction_file_and_sheet_jobs(sg2, tmp_path):
    np.save(tmp_path / "good.npy", np.ones(sg2.info.w_dim))
    vector, sigma = file_direction(sg2, tmp_path / "good.npy", samples=200)
    assert vector.shape == (sg2.info.w_dim,) and sigma > 0
    np.save(tmp_path / "bad.npy", np.ones(7))
    with pytest.raises(ValueError, match="does not fit this model"):
        file_direction(sg2, tmp_path / "bad.npy", samples=200)
    directions = pca_directions(sg2, samples=200)
    out = save_direction_sheet(sg2, directions, tmp_path / "sheet.png", seeds=[0], top=2)
    assert out.is_file()


def test_sticking_and_diff_of_a_request(sg3, sg2):
    assert request_sticking(sg3, RenderRequest(seeds=[(3, 1.0)]), num_frames=3).shape == (32, 32, 3)
    diff = request_diff(sg3, RenderRequest(rotate=10.0))
    assert diff.heatmap.shape == (32, 32, 3) and np.isfinite(diff.psnr_db)
    with pytest.raises(ValueError, match="nothing to compare"):
        request_diff(sg3, RenderRequest())
    with pytest.raises(ValueError, match="no input transform"):
        request_diff(sg2, RenderRequest())
