# ruff: noqa: F811 - the fixtures imported from test_gui are used as test arguments
"""The window's docks on the real engine thread, offscreen: long jobs with progress and cancel, the
untransform checkbox, layer views with their spectrum, direction sliders, the timeline with video
export, the style-mixing grid, and the equivariance panel.

Settings, the default model and the directions cache live in the test's temporary folder.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from test_gui import (  # noqa: F401 - fixtures
    FRAME_TIMEOUT_MS,
    changed,
    fixture_model,
    open_window,
    private_locations,
    settings,
    wait_frame,
)

pytest.importorskip("pytestqt")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))


def wait_job(qtbot, bar) -> str:
    """Wait until the job on `bar` has ended; return its final text."""
    qtbot.waitUntil(lambda: not bar.running, timeout=FRAME_TIMEOUT_MS)
    return bar.label.text()


# -- transform and layers ------------------------------------------------------------------------


def test_untransform_checkbox(open_window, qtbot):
    window = open_window(fixture_model("stylegan3-t-32"))
    plain = window.canvas.image.copy()
    window.transform.untransform.setChecked(True)
    assert np.array_equal(wait_frame(qtbot, window), plain) and window.request.untransform
    window.transform.tx.setValue(4 / 32)
    back = wait_frame(qtbot, window)
    window.transform.untransform.setChecked(False)
    moved = wait_frame(qtbot, window)
    assert not window.request.untransform and changed(back, moved)
    inside = np.s_[:, 8:-8]
    assert (np.abs(back[inside].astype(int) - plain[inside]).mean()
            < np.abs(moved[inside].astype(int) - plain[inside]).mean())


def test_untransform_is_greyed_out_on_stylegan2(open_window):
    window = open_window(fixture_model("stylegan2-ada-32"))
    assert not window.transform.untransform.isEnabled() and window.request.untransform is False


def test_layer_view_and_its_spectrum(open_window, qtbot):
    window = open_window(fixture_model("stylegan3-t-32"))
    names = [window.layers.layer.itemData(i) for i in range(window.layers.layer.count())]
    assert names[0].startswith("L0_36") and len(names) == 15
    picture = window.canvas.image.copy()
    window.layers.select(names[6])  # L6_52_64
    image = wait_frame(qtbot, window)
    assert window.request.layer == names[6] and image.shape == (52, 52, 3)
    window.layers.channels.setCurrentIndex(window.layers.channels.findData(1))
    window.layers.offset.setValue(5)
    grey = wait_frame(qtbot, window)
    assert window.request.channels == 1 and np.array_equal(grey[..., 0], grey[..., 1])
    assert "channels 5–5 of 64" in window.layers.summary.text()
    assert window.spectrum.profile is None
    window.layers.fft.setChecked(True)
    spectrum = wait_frame(qtbot, window)
    assert spectrum.shape == (104, 104, 3) and window.spectrum.profile is not None
    assert window.spectrum_dock.isVisible()
    window.layers.enabled.setChecked(False)
    np.testing.assert_array_equal(wait_frame(qtbot, window), picture)
    assert window.spectrum.profile is None


def test_spectra_of_a_second_model_side_by_side(open_window, qtbot, tmp_path):
    window = open_window(fixture_model("stylegan2-ada-32"))
    dock = window.spectrum
    window.spectrum_dock.show()
    window.spectrum_dock.raise_()
    assert not dock.images.isVisible() and not dock.clear_button.isEnabled()
    dock.open_companion(fixture_model("stylegan3-t-32"))
    qtbot.waitUntil(lambda: dock.comparison is not None, timeout=FRAME_TIMEOUT_MS)
    assert [label.text for _, label in dock.legend.items] == ["stylegan2 · model.pkl", "stylegan3-t · model.pkl"]
    assert all(len(curve.getData()[0]) > 0 and curve.isVisible() for curve in dock.compare_curves)
    assert dock.images.isVisible() and all(item.image.shape == (64, 64) for item in dock.items)
    assert "output 32×32" in dock.views[1].titleLabel.text and dock.clear_button.isEnabled()

    first = dock.comparison
    window.latent.seed.setValue(4)  # a new frame, a new comparison of the same request
    qtbot.waitUntil(lambda: dock.comparison is not first, timeout=FRAME_TIMEOUT_MS)
    window.layers.select("b4")
    qtbot.waitUntil(lambda: dock.comparison.first.source.startswith("layer b4"), timeout=FRAME_TIMEOUT_MS)
    assert dock.comparison.second is None and "has no layer at 4×4" in dock.note.text()
    assert [label.text for _, label in dock.legend.items] == ["stylegan2 · model.pkl"]

    (tmp_path / "bad.pkl").write_bytes(b"not a checkpoint")
    dock.open_companion(tmp_path / "bad.pkl")
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=FRAME_TIMEOUT_MS)
    assert "Could not load the model to compare with" in window.banner.label.text()
    assert dock.companion.family == "stylegan3-t" and "Loading" not in dock.note.text()

    asked = []
    compare = window.engine.compare
    window.engine.compare = lambda request: asked.append(request) or compare(request)
    window.perf_dock.raise_()  # the spectrum tab is hidden: frames go by without comparisons
    window.latent.seed.setValue(5)
    wait_frame(qtbot, window)
    assert asked == []
    window.spectrum_dock.raise_()
    qtbot.waitUntil(lambda: len(asked) == 1 and asked[0].seeds == [(5, 1.0)], timeout=FRAME_TIMEOUT_MS)

    # A session keeps the second model: saved with it, it comes back; saved without it, it goes.
    window.save_session(tmp_path / "with.json")
    assert json.loads((tmp_path / "with.json").read_text())["compare_with"] == str(fixture_model("stylegan3-t-32"))
    dock.clear_button.click()
    window.load_session(tmp_path / "with.json")
    qtbot.waitUntil(lambda: dock.companion is not None and dock.comparison is not None, timeout=FRAME_TIMEOUT_MS)
    assert dock.companion.family == "stylegan3-t"
    wait_frame(qtbot, window)  # a frame asks for its comparison as it arrives: none is asked after this
    asked.clear()

    dock.clear_button.click()
    assert dock.companion is None and dock.comparison is None and not dock.images.isVisible()
    assert dock.legend.items == [] and not dock.clear_button.isEnabled()
    window.latent.seed.setValue(6)
    wait_frame(qtbot, window)
    assert asked == []


# -- directions ----------------------------------------------------------------------------------


def test_direction_sliders_edit_the_request_and_reset_exactly(open_window, qtbot):
    window = open_window(fixture_model("stylegan2-ada-32"))
    panel = window.directions
    panel.samples.setValue(300)
    panel.top.setValue(3)
    panel.compute.click()
    assert "PCA" in wait_job(qtbot, panel.progress) and len(panel.rows) == 3
    before = wait_frame(qtbot, window)
    row = panel.rows[0]
    row.slider.setValue(20)  # +2σ
    moved = wait_frame(qtbot, window)
    (edit,) = window.request.edits
    assert edit.name == "PC0" and edit.amount == pytest.approx(2 * row.sigma) and edit.layers is None
    assert changed(before, moved) and row.value.text() == "+2.0σ"
    row.layers.setCurrentText("coarse")
    coarse = wait_frame(qtbot, window)
    assert window.request.edits[0].layers == [0, 1, 2] and changed(moved, coarse)
    row.name.setText("pose")
    row.name.editingFinished.emit()
    wait_frame(qtbot, window)
    assert window.request.edits[0].name == "pose"
    session = json.loads(json.dumps(window.session()))
    assert session["request"]["edits"][0]["name"] == "pose"
    panel.reset.click()
    np.testing.assert_array_equal(wait_frame(qtbot, window), before)
    assert window.request.edits == []


def test_sefa_and_loading_directions(open_window, qtbot, tmp_path):
    window = open_window(fixture_model("stylegan2-ada-32"))
    panel = window.directions
    panel.samples.setValue(200)
    panel.method.setCurrentIndex(1)
    panel.sefa_layers.setText("0-3")
    panel.compute.click()
    wait_job(qtbot, panel.progress)
    assert panel.rows[0].name.text() == "SeFa0" and panel.rows[0].layer_indices() == [0, 1, 2, 3]
    np.save(tmp_path / "wrong.npy", np.ones(5))
    panel.load_file(str(tmp_path / "wrong.npy"))
    assert "does not fit this model" in wait_job(qtbot, panel.progress)
    assert "does not fit" in window.banner.label.text()
    np.save(tmp_path / "smile.npy", np.ones(window.info.w_dim))
    panel.load_file(str(tmp_path / "smile.npy"))
    wait_job(qtbot, panel.progress)
    assert panel.rows[-1].name.text() == "smile" and panel.rows[-1].sigma > 0
    before = window.canvas.image.copy()
    panel.rows[-1].slider.setValue(-10)
    assert changed(before, wait_frame(qtbot, window))
    panel.export_sheet(str(tmp_path / "sheet.png"), window.request, seeds=(0,))
    wait_job(qtbot, panel.progress)
    assert (tmp_path / "sheet.png").is_file()


# -- timeline and video --------------------------------------------------------------------------


def test_keyframes_scrub_reorder_and_session(open_window, qtbot, tmp_path):
    window = open_window(fixture_model("stylegan2-ada-32"))
    timeline = window.timeline
    seed0 = window.canvas.image.copy()
    timeline.add.click()
    window.latent.seed.setValue(7)
    seed7 = wait_frame(qtbot, window)
    timeline.add.click()
    assert [k.time for k in timeline.keyframes] == [0.0, 1.0] and timeline.list.count() == 2
    assert "seed 7" in timeline.list.item(1).text()
    timeline.scrub_to(0)
    np.testing.assert_array_equal(wait_frame(qtbot, window), seed0)
    timeline.scrub_to(500)
    middle = wait_frame(qtbot, window)
    assert timeline.scrub_label.text() == "0.50 s" and changed(middle, seed0) and changed(middle, seed7)
    timeline.list.setCurrentRow(0)
    timeline.down.click()  # seed 7 first now, at 0 s
    assert "seed 7" in timeline.list.item(0).text() and timeline.keyframes[0].time == 0.0
    timeline.scrub_to(0)
    np.testing.assert_array_equal(wait_frame(qtbot, window), seed7)
    timeline.easing.setCurrentText("ease-in-out")
    timeline.space.setCurrentIndex(1)  # Z
    wait_frame(qtbot, window)
    window.save_session(tmp_path / "s.json")
    walk = json.loads((tmp_path / "s.json").read_text())["walk"]
    assert walk["space"] == "z" and walk["easing"] == "ease-in-out" and len(walk["keyframes"]) == 2
    timeline.remove_keyframe(0)
    window.load_session(tmp_path / "s.json")
    assert len(timeline.keyframes) == 2 and timeline.space.currentData() == "z"


def test_video_export_writes_a_file_and_cancel_leaves_none(open_window, qtbot, tmp_path):
    from explorer.engine.video import VideoSettings

    window = open_window(fixture_model("stylegan2-ada-32"))
    timeline = window.timeline
    timeline.add_keyframe(window.current_request(), 0.0)
    timeline.add_keyframe(window.current_request(), 1.0)
    timeline.start_export(tmp_path / "walk.gif", VideoSettings(fps=8, grid=(1, 2)))
    assert "Video export: done" in wait_job(qtbot, timeline.progress)
    assert (tmp_path / "walk.gif").is_file()
    timeline.start_export(tmp_path / "long.gif", VideoSettings(fps=8, duration=600.0, batch_size=1))
    qtbot.waitUntil(lambda: timeline.progress.bar.maximum() == 4800, timeout=FRAME_TIMEOUT_MS)
    timeline.progress.cancel.click()
    assert "cancelled" in wait_job(qtbot, timeline.progress)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".gif" or "long" in p.name) == ["walk.gif"]


# -- style-mixing grid ---------------------------------------------------------------------------


def test_grid_computes_and_a_click_on_a_cell_sets_the_state(open_window, qtbot):
    window = open_window(fixture_model("stylegan2-ada-32"))
    window.grid_dock.show()
    window.grid_dock.raise_()
    grid = window.grid
    grid.rows.setText("1,2")
    grid.cols.setText("3-5")
    grid.layers.setCurrentText("coarse")
    grid.compute.click()
    wait_job(qtbot, grid.progress)
    assert grid.grid.cells.shape[:2] == (2, 3) and grid.export.isEnabled()
    qtbot.waitUntil(lambda: grid.view_widget.isVisible())
    # Click the middle of cell (1, 2): row seed 2, column seed 5 (sources head the rows and columns).
    scene_point = grid.view.mapViewToScene(pg_point(3.5 * 32, 2.5 * 32))
    widget_point = grid.view_widget.mapFromScene(scene_point)
    QTest.mouseClick(grid.view_widget.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(round(widget_point.x()), round(widget_point.y())))
    image = wait_frame(qtbot, window)
    assert window.request.seeds == [(2, 1.0)] and window.request.mix_seed == 5
    assert window.request.mix_layers == grid.grid.layers
    np.testing.assert_array_equal(image, grid.grid.cells[1, 2])


def pg_point(x: float, y: float):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_grid_export_png(open_window, qtbot, tmp_path):
    from PIL import Image

    window = open_window(fixture_model("stylegan2-ada-32"))
    grid = window.grid
    grid.rows.setText("0")
    grid.cols.setText("1")
    grid.start(window.current_request())
    wait_job(qtbot, grid.progress)
    grid.labels.setChecked(False)
    grid.save(str(tmp_path / "plain.png"))
    assert Image.open(tmp_path / "plain.png").size == (64, 64)
    grid.labels.setChecked(True)
    grid.save(str(tmp_path / "labelled.png"))
    assert Image.open(tmp_path / "labelled.png").size > (64, 64)


# -- equivariance --------------------------------------------------------------------------------


def test_equivariance_metric_sticking_and_diff(open_window, qtbot):
    window = open_window(fixture_model("stylegan3-t-32"))
    eq = window.equivariance
    assert eq.compute.isEnabled() and eq.note.isHidden()
    eq.samples.setValue(4)
    eq.compute.click()
    wait_job(qtbot, eq.eq_progress)
    assert np.isfinite(eq.results["EQ-T"]) and "EQ-T</b>:" in eq.result_label.text() and "dB" in eq.result_label.text()
    eq.frames.setValue(4)
    eq.sticking_compute.click()
    wait_job(qtbot, eq.sticking_progress)
    assert eq.sticking_view.image.shape == (32, 32, 3) and eq.sticking_export.isEnabled()
    eq.diff_compute.click()
    assert "nothing to compare" in wait_job(qtbot, eq.diff_progress)
    window.transform.rotate.setValue(20.0)
    wait_frame(qtbot, window)
    eq.diff_compute.click()
    wait_job(qtbot, eq.diff_progress)
    assert eq.diff_view.image.shape == (32, 32, 3) and "PSNR" in eq.diff_label.text()


def test_equivariance_is_disabled_on_stylegan2(open_window):
    window = open_window(fixture_model("stylegan2-ada-32"))
    eq = window.equivariance
    assert not eq.compute.isEnabled() and not eq.diff_compute.isEnabled()
    assert "no input transform" in eq.note.text()
