"""Style-mixing grids: layer presets, cells equal to `render` of their requests, the PNG layout."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from conftest import fixtures_dir
from PIL import Image

from explorer.engine import load_model
from explorer.engine.grid import cell_request, layer_presets, mixing_grid, parse_layers, save_png
from explorer.engine.render import RenderRequest, render


@pytest.fixture(scope="module")
def sg2():
    return load_model(fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl")


@pytest.fixture(scope="module")
def grid(sg2):
    base = RenderRequest(truncation_psi=0.7, noise_mode="random", noise_seed=5)
    return base, mixing_grid(sg2, [1, 2], [3, 4, 5], layer_presets(sg2.info.ws_resolutions)["coarse"], base,
                             batch_size=4)


def test_presets_follow_the_paper_at_1024():
    res = [4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024]
    assert layer_presets(res) == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": list(range(8, 18))}


def test_presets_of_small_models_split_what_there_is():
    assert layer_presets([4, 8, 8, 16, 16, 32, 32, 32]) == {"coarse": [0, 1, 2], "middle": [3, 4],
                                                            "fine": [5, 6, 7]}
    sg3 = [16] * 6 + [32] * 10  # StyleGAN3 at 32 px: two sampling rates only
    assert layer_presets(sg3) == {"coarse": list(range(6)), "middle": list(range(6, 11)),
                                  "fine": list(range(11, 16))}
    with pytest.raises(ValueError, match="several ws"):
        layer_presets([32])


def test_parse_layers(sg2):
    assert parse_layers("coarse", sg2.info) == [0, 1, 2]
    assert parse_layers("fine,0-1", sg2.info) == [0, 1, 5, 6, 7]
    assert parse_layers("all", sg2.info) == list(range(8))
    for bad, text in (("8", "outside"), ("3-1", "outside"), ("huge", "not a layer list")):
        with pytest.raises(ValueError, match=text):
            parse_layers(bad, sg2.info)


def test_cells_and_sources_are_what_render_draws(sg2, grid):
    base, g = grid
    assert g.cells.shape == (2, 3, 32, 32, 3)
    for i, r in enumerate(g.row_seeds):
        for j, c in enumerate(g.col_seeds):
            expected = render(sg2, cell_request(base, r, c, g.layers)).image
            assert np.abs(g.cells[i, j].astype(int) - expected).max() <= 1
    row = render(sg2, dataclasses.replace(base, seeds=[(2, 1.0)])).image
    col = render(sg2, dataclasses.replace(base, seeds=[(3, 1.0)])).image
    assert np.abs(g.row_images[1].astype(int) - row).max() <= 1
    assert np.abs(g.col_images[0].astype(int) - col).max() <= 1


def test_png_layout(grid, tmp_path):
    _, g = grid
    path = save_png(g.compose(), tmp_path / "grid.png")
    image = np.asarray(Image.open(path))
    assert image.shape == (3 * 32, 4 * 32, 3)
    assert not image[:32, :32].any()  # the corner stays black
    np.testing.assert_array_equal(image[:32, 32 * 3:], g.col_images[2])
    np.testing.assert_array_equal(image[32 * 2:, :32], g.row_images[1])
    np.testing.assert_array_equal(image[32:64, 64:96], g.cells[0, 1])
    assert g.compose(sources=False).shape == (2 * 32, 3 * 32, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_labels_add_bands_above_and_left(grid):
    _, g = grid
    plain, labelled = g.compose(), g.compose(labels=True)
    top = labelled.shape[0] - plain.shape[0]
    left = labelled.shape[1] - plain.shape[1]
    assert top > 0 and left > 0
    np.testing.assert_array_equal(labelled[top:, left:], plain)
    assert (labelled[:top, left:] < 128).any()  # dark text on the white band
    assert (labelled[top:, :left] < 128).any()


def test_cancel_and_progress(sg2):
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p.done)
        cancel.set()

    assert mixing_grid(sg2, [1, 2], [3, 4], [0], batch_size=3, progress=progress, cancel=cancel) is None
    assert seen == [3]
    with pytest.raises(ValueError, match="at least one layer"):
        mixing_grid(sg2, [1], [2], [])
