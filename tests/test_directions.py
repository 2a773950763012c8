"""Semantic directions: PCA in W, SeFa, slider edits in the request, user direction files, sheets."""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest
import torch
from conftest import assert_same_picture, fixtures_dir

from explorer.engine import load_model
from explorer.engine.directions import (
    CACHE_ENV,
    direction_sheet,
    direction_sigma,
    load_direction,
    pca_directions,
    sefa_directions,
    sheet_request,
    style_affines,
    w_statistics,
)
from explorer.engine.render import DirectionEdit, RenderRequest, render, request_ws

SAMPLES = 1000


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache folder: none touches the user's."""
    path = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(path))
    return path


@pytest.fixture(scope="module")
def sg2():
    return load_model(fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl")


@pytest.fixture(scope="module")
def sg2_pca(sg2, tmp_path_factory, request):
    mp = pytest.MonkeyPatch()
    mp.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("pca-cache")))
    request.addfinalizer(mp.undo)
    return pca_directions(sg2, samples=SAMPLES, seed=3, batch_size=256)


def test_pca_directions_are_orthonormal_and_sorted_by_variance(sg2, sg2_pca):
    d = sg2_pca
    w_dim = sg2.info.w_dim
    assert d.vectors.shape == (w_dim, w_dim) and d.values.shape == (w_dim,)
    np.testing.assert_allclose(d.vectors @ d.vectors.T, np.eye(w_dim), atol=1e-10)
    assert np.all(np.diff(d.values) <= 0) and d.values[-1] >= 0
    np.testing.assert_allclose(d.explained.sum(), 1.0)
    np.testing.assert_allclose(d.sigma, np.sqrt(d.values))

    # Independently: the same seeded samples in one batch, numpy's covariance and projections.
    z = np.random.RandomState(3).standard_normal((SAMPLES, sg2.info.z_dim)).astype(np.float32)
    w = sg2.map(z)[:, 0].double().numpy()  # [NW]
    cov = np.cov(w, rowvar=False)
    np.testing.assert_allclose(d.values, np.linalg.eigvalsh(cov)[::-1], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.var(w @ d.vectors[:5].T, axis=0, ddof=1), d.values[:5], rtol=1e-6)
    np.testing.assert_allclose(direction_sigma(d.vectors[0], w_statistics(sg2, SAMPLES, 3)), d.sigma[0], rtol=1e-9)


def _affines_by_hooks(model) -> list[tuple[int, torch.Tensor]]:
    """(ws index, weight) of every `.affine` in the synthesis network, found by which ws row it reads."""
    seen = []
    hooks = [m.register_forward_hook(lambda mod, args, out: seen.append((mod, args[0].clone())))
             for name, m in model.generator.synthesis.named_modules() if name.endswith("affine")]
    ws = torch.randn([1, model.info.num_ws, model.info.w_dim])  # every row different
    try:
        model.synthesize(ws)
    finally:
        for h in hooks:
            h.remove()
    found = []
    for mod, w in seen:
        (index,) = [i for i in range(model.info.num_ws) if torch.equal(ws[0, i], w[0])]
        found.append((index, mod.weight.detach()))
    return found


@pytest.mark.parametrize("case", ["nvidia/stylegan2-ada-32", "nvidia/stylegan3-t-32", "tf/stylegan1_32"])
def test_sefa_matches_an_independent_eigendecomposition(case):
    model = load_model(fixtures_dir() / case / "model.pkl")
    found = _affines_by_hooks(model)
    assert sorted((i, tuple(w.shape)) for i, w in found) == sorted(
        (i, tuple(a.weight.shape)) for i, _, a in style_affines(model))

    layers = [1, 2, 3]
    d = sefa_directions(model, layers=layers, samples=200)
    assert d.layers == tuple(layers)

    # Reference: unit-normalised rows of the affines reading those ws, numpy's SVD.
    a = np.concatenate([w.double().numpy() for i, w in found if i in layers])  # [OW]
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    a = a[norms[:, 0] > 0] / norms[norms[:, 0] > 0]
    _, s, vt = np.linalg.svd(a, full_matrices=True)
    ref_values = np.zeros(model.info.w_dim)
    ref_values[:len(s)] = s**2
    np.testing.assert_allclose(d.values, ref_values, rtol=1e-8, atol=1e-8)
    top = 5  # well separated eigenvalues: the same vectors up to sign
    np.testing.assert_allclose(np.abs(np.sum(d.vectors[:top] * vt[:top], axis=1)), 1.0, atol=1e-8)
    np.testing.assert_allclose(d.vectors @ d.vectors.T, np.eye(model.info.w_dim), atol=1e-10)


def test_sefa_needs_style_affines():
    progan = load_model(fixtures_dir() / "tf/progan_32/model.pkl")
    with pytest.raises(ValueError, match="no style affines"):
        sefa_directions(progan, samples=100)


def test_slider_moved_and_back_returns_the_same_w_exactly(sg2, sg2_pca):
    base = RenderRequest(seeds=[(5, 0.5), (6, 0.5)], truncation_psi=0.7, mix_seed=9, mix_layers=[6, 7])
    w0 = request_ws(sg2, base)
    per_layer = np.random.RandomState(0).standard_normal((sg2.info.num_ws, sg2.info.w_dim))
    other = DirectionEdit(per_layer.tolist(), amount=0.37, layers=[2, 3])

    def ws_at(position: float, edits=()) -> torch.Tensor:
        """W with the slider of PC0 on layers 0-3 at `position` sigma, after `edits`."""
        return request_ws(sg2, dataclasses.replace(base, edits=[*edits, sg2_pca.edit(0, position, [0, 1, 2, 3])]))

    assert torch.equal(ws_at(0.0), w0)
    start = ws_at(0.75, [other])
    for a in (0.5, 1.25, -2.5, 2.0**-20):
        moved = 0.75 + a
        assert not torch.equal(ws_at(moved, [other]), start)
        back = moved - a
        assert back == 0.75 and torch.equal(ws_at(back, [other]), start)  # +a, then -a
        assert torch.equal(ws_at(moved - moved), w0)                     # and back to zero

    # Two edits +a and -a along one direction cancel exactly, too.
    plus, minus = sg2_pca.edit(1, 1.7), sg2_pca.edit(1, -1.7)
    assert torch.equal(request_ws(sg2, dataclasses.replace(base, edits=[plus, minus])), w0)

    # The edit moves only its layers, by amount * direction.
    moved = ws_at(2.0) - w0
    expected = torch.as_tensor(2.0 * sg2_pca.sigma[0] * sg2_pca.vectors[0], dtype=torch.float32)
    torch.testing.assert_close(moved[0, :4], expected.expand(4, -1), atol=1e-5, rtol=0)
    assert torch.equal(moved[0, 4:], torch.zeros_like(moved[0, 4:]))


def test_request_with_edits_round_trips_through_json(sg2):
    req = RenderRequest(seeds=[(1, 1.0)], edits=[
        DirectionEdit([0.1, -0.2, 1 / 3], amount=1.25, layers=[0, 2], name="smile"),
        DirectionEdit([[0.5, 0.25]] * 2, amount=-0.5)])
    back = RenderRequest.from_json(req.to_json())
    assert back == req and isinstance(back.edits[0], DirectionEdit)
    assert RenderRequest.from_dict({"seeds": [[1, 1.0]]}).edits == []  # older files: no edits
    data = json.loads(req.to_json())
    data["edits"][0]["amout"] = 1
    with pytest.raises(ValueError, match="unknown direction edit field"):
        RenderRequest.from_dict(data)
    with pytest.raises(ValueError, match=r"has shape \[3\]; this model takes \[512\]"):
        render(sg2, req)


def test_loaded_direction_of_the_wrong_shape_gives_a_clear_error(sg2, tmp_path):
    num_ws, w_dim = sg2.info.num_ws, sg2.info.w_dim
    rng = np.random.RandomState(1)
    v = rng.standard_normal(w_dim)
    np.save(tmp_path / "flat.npy", v)
    np.save(tmp_path / "interfacegan.npy", v[None].astype(np.float32))
    torch.save(torch.from_numpy(rng.standard_normal((num_ws, w_dim))), tmp_path / "layers.pt")
    np.testing.assert_array_equal(load_direction(tmp_path / "flat.npy", num_ws, w_dim), v)
    assert load_direction(tmp_path / "interfacegan.npy", num_ws, w_dim).shape == (w_dim,)
    assert load_direction(tmp_path / "layers.pt", num_ws, w_dim).shape == (num_ws, w_dim)

    np.save(tmp_path / "short.npy", v[:100])
    torch.save(torch.zeros(3, w_dim), tmp_path / "rows.pt")
    torch.save({"direction": torch.zeros(w_dim)}, tmp_path / "dict.pt")
    (tmp_path / "text.txt").write_text("1 2 3")
    cases = {
        "short.npy": r"short.npy: a direction of shape \[100\] does not fit this model, which takes \[512\] "
                     r"\(all layers\) or \[8, 512\] \(one row per ws\)",
        "rows.pt": r"shape \[3, 512\] does not fit",
        "dict.pt": "holds a dict, not a single tensor",
        "text.txt": "use a .npy, .pt or .pth file",
        "missing.npy": "cannot read a direction",
    }
    for name, message in cases.items():
        with pytest.raises(ValueError, match=message):
            load_direction(tmp_path / name, num_ws, w_dim)

    # A per-layer direction's sigma is that of the w it moves.
    stats = w_statistics(sg2, 200, 0)
    assert direction_sigma(np.tile(v, (num_ws, 1)), stats) == pytest.approx(direction_sigma(v, stats))
    assert direction_sigma(2 * v, stats) == pytest.approx(direction_sigma(v, stats) / 2)


def test_cache_hit_skips_sampling(sg2, cache, monkeypatch):
    calls = []
    first = pca_directions(sg2, samples=300, seed=1, batch_size=100, progress=calls.append)
    assert [p.done for p in calls] == [100, 200, 300]
    assert len(list(cache.glob("w-stats-*.npz"))) == 1

    def no_mapping(*args, **kwargs):
        raise AssertionError("mapped although the statistics are cached")

    monkeypatch.setattr(sg2, "map", no_mapping)
    calls.clear()
    again = pca_directions(sg2, samples=300, seed=1, batch_size=50, progress=calls.append)  # batch is not in the key
    sefa = sefa_directions(sg2, samples=300, seed=1)  # SeFa's sigma shares the statistics
    np.testing.assert_array_equal(again.values, first.values)
    np.testing.assert_array_equal(again.vectors, first.vectors)
    assert [p.done for p in calls] == [300] and sefa.sigma.shape == (sg2.info.w_dim,)
    with pytest.raises(AssertionError, match="mapped although"):
        pca_directions(sg2, samples=300, seed=2)  # other parameters: a miss


def test_cancel_stops_jobs_and_caches_nothing(sg2, sg2_pca, cache):
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p.done)
        cancel.set()

    assert pca_directions(sg2, samples=400, batch_size=100, progress=progress, cancel=cancel) is None
    assert seen == [100] and not list(cache.glob("*.npz"))
    cancel.clear()
    assert sefa_directions(sg2, samples=400, batch_size=100, progress=progress, cancel=cancel) is None
    cancel.clear()
    assert direction_sheet(sg2, sg2_pca, [0], top=2, steps=[-1, 0, 1], batch_size=2, progress=progress,
                           cancel=cancel) is None


def test_direction_sheet_cells_are_what_render_draws(sg2, sg2_pca):
    base = RenderRequest(truncation_psi=0.8)
    steps = [-3.0, 0.0, 3.0]
    sheet = direction_sheet(sg2, sg2_pca, seeds=[4, 5], top=2, steps=steps, layers=[0, 1, 2], base=base,
                            batch_size=5)
    assert sheet.cells.shape == (2, 2, 3, 32, 32, 3) and sheet.names == ["PC0", "PC1"]
    for k, s, t in [(0, 0, 0), (1, 1, 2), (1, 0, 1)]:
        req = sheet_request(base, sheet.seeds[s], sg2_pca.edit(k, steps[t], layers=[0, 1, 2]))
        assert_same_picture(sheet.cells[k, s, t], render(sg2, req).image)
    plain = render(sg2, RenderRequest(seeds=[(5, 1.0)], truncation_psi=0.8)).image
    assert_same_picture(sheet.cells[0, 1, 1], plain)  # the middle column is the seed unedited
    assert not np.array_equal(sheet.cells[0, 1, 0], sheet.cells[0, 1, 2])
    assert sheet.compose().shape == (4 * 32, 3 * 32, 3)
    labelled = sheet.compose(labels=True)
    assert labelled.shape[0] > 4 * 32 and labelled.shape[1] > 3 * 32
