"""The real window, offscreen, on the real engine thread: each control changes the request it should
and the picture changes (or stays the same where it should); errors, capture, sessions, settings,
shortcuts, drag-and-drop, and a responsiveness check while the engine is slow.

Settings always live in a temporary INI file; the default model is written to a temporary folder.
"""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import fixtures_dir

pytest.importorskip("pytestqt")

from PySide6.QtCore import QElapsedTimer, QMimeData, QPoint, QPointF, Qt, QTimer, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QGuiApplication  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from explorer.app import create_window  # noqa: E402
from explorer.engine import load_model  # noqa: E402
from explorer.engine.default_model import BUNDLED_MODELS  # noqa: E402
from explorer.engine.render import render  # noqa: E402
from explorer.engine.worker import RenderWorker  # noqa: E402
from explorer.widgets.bridge import EngineBridge  # noqa: E402
from explorer.widgets.main_window import MainWindow  # noqa: E402
from explorer.widgets.settings import Settings  # noqa: E402

FRAME_TIMEOUT_MS = 30000


@pytest.fixture(autouse=True)
def private_locations(tmp_path, monkeypatch):
    """Never the user's settings or cache: both go to the test's temporary folder."""
    monkeypatch.setenv("EXPLORER_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("EXPLORER_DEFAULT_MODEL", str(tmp_path / "default.pt"))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.at(tmp_path / "settings.ini")


def fixture_model(name: str) -> Path:
    path = fixtures_dir() / "nvidia" / name / "model.pkl"
    if not path.is_file():
        pytest.skip(f"fixture checkpoint {path} not found")
    return path


def wait_frame(qtbot, window) -> np.ndarray:
    """Wait until the frame of the last request is on the canvas; return a copy of it."""
    qtbot.waitUntil(lambda: window.info is not None and not window.loading
                    and window.shown_stamp == window.submitted_stamp > 0, timeout=FRAME_TIMEOUT_MS)
    return window.canvas.image.copy()


@pytest.fixture
def open_window(qtbot, settings):
    """Open a window on a model (None: the default model) and wait for its first frame."""

    def make(model: Path | None, **kwargs) -> MainWindow:
        window = create_window(model, settings=kwargs.pop("settings", settings), device="cpu")
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        wait_frame(qtbot, window)
        return window

    return make


def changed(before: np.ndarray, after: np.ndarray) -> bool:
    return before.shape != after.shape or not np.array_equal(before, after)


def drag(qtbot, widget, start: QPoint, delta: QPoint, button=Qt.MouseButton.LeftButton, steps: int = 5) -> None:
    """A real press-move-release on a widget, in a few steps."""
    QTest.mousePress(widget, button, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, steps + 1):
        QTest.mouseMove(widget, start + delta * i / steps)
        qtbot.wait(10)
    QTest.mouseRelease(widget, button, Qt.KeyboardModifier.NoModifier, start + delta)


# -- opening models ------------------------------------------------------------------------------


def test_opens_on_the_first_trained_model(open_window):
    window = open_window(None)
    assert window.info.family == "stylegan2" and window.info.path == str(BUNDLED_MODELS[0].path())
    assert window.canvas.image.shape == (64, 64, 3)
    labels = [a.text() for a in window.bundled_menu.actions()]
    assert labels == [m.label for m in BUNDLED_MODELS] and labels[-1].startswith("Untrained placeholder")
    assert "stylegan2" in window.model_panel.text() and "latent-explorer" in window.model_panel.text()
    assert "stylegan2" in window.windowTitle()
    # It opens on its chosen first face, not on seed 0, and the controls show that picture.
    request = window.current_request()
    assert (request.seeds, request.truncation_psi) == ([(14, 1.0)], 0.7)
    assert window.latent.seed.value() == 14
    rendered = render(load_model(BUNDLED_MODELS[0].path()), request).image
    assert np.abs(window.canvas.image.astype(int) - rendered).max() <= 1


def test_bundled_placeholder_opens_from_the_menu(open_window, qtbot, tmp_path):
    window = open_window(None)
    window.bundled_menu.actions()[-1].trigger()
    qtbot.waitUntil(lambda: window.info.path == str(tmp_path / "default.pt"), timeout=FRAME_TIMEOUT_MS)
    assert any("untrained" in n for n in window.info.notes)


def test_model_info_and_controls_follow_the_model(open_window, qtbot):
    window = open_window(fixture_model("stylegan2-ada-32"))
    assert "nvidia-persistence-pickle" in window.model_panel.text()
    assert len(window.noise.toggles) == 7 and window.noise.mode.isEnabled()
    assert not window.transform.tx.isEnabled() and not window.transform.reset.isEnabled()
    assert window.mixing.layers.count() == window.info.num_ws
    window.open_model(fixture_model("stylegan3-t-32"))
    qtbot.waitUntil(lambda: window.info.family == "stylegan3-t", timeout=FRAME_TIMEOUT_MS)
    wait_frame(qtbot, window)
    assert window.noise.toggles == [] and not window.noise.mode.isEnabled()
    assert window.transform.tx.isEnabled() and window.transform.reset.isEnabled()
    assert window.mixing.layers.count() == 16
    assert window.truncation.cutoff.maximum() == 16


@pytest.mark.parametrize("checkpoint", ["tf/progan_32/model.pkl", "tf/stylegan1_32/model.pkl"])
def test_other_families_open_with_fitting_controls(open_window, qtbot, checkpoint):
    path = fixtures_dir() / checkpoint
    if not path.is_file():
        pytest.skip(f"fixture checkpoint {path} not found")
    window = open_window(path)
    before = window.canvas.image.copy()
    assert before.shape == (32, 32, 3)
    assert not window.transform.tx.isEnabled()
    if window.info.family == "progan":
        assert not window.mixing.enabled.isEnabled() and not window.noise.mode.isEnabled()
    else:
        assert len(window.noise.toggles) == len(window.info.noise_layers) > 0
        window.noise.toggles[-1].setChecked(False)
        assert changed(before, wait_frame(qtbot, window))
    window.latent.seed.setValue(3)
    assert changed(before, wait_frame(qtbot, window))


# -- latent --------------------------------------------------------------------------------------


def test_seed_changes_the_picture(open_window, qtbot):
    window = open_window(fixture_model("stylegan2-ada-32"))
    before = window.canvas.image.copy()
    window.latent.seed.setValue(5)
    after = wait_frame(qtbot, window)
    assert window.request.seeds == [(5, 1.0)]
    assert changed(before, after)


def test_dragging_on_the_canvas_blends_neighbouring_seeds(open_window, qtbot):
    window = open_window(fixture_model("stylegan2-ada-32"))
    before = window.canvas.image.copy()
    view = window.canvas.viewport()
    drag(qtbot, view, view.rect().center(), QPoint(60, 30))
    after = wait_frame(qtbot, window)
    x, y = window.latent.xy
    assert x == pytest.approx(0.3) and y == pytest.approx(0.15)
    assert len(window.request.seeds) == 4
    assert sum(w for _, w in window.request.seeds) == pytest.approx(1.0)
    assert changed(before, after)


def test_drag_handle_snap_and_next_seed(open_window, qtbot):
    window = open_window(fixture_model("stylegan2-ada-32"))
    drag(qtbot, window.latent.pad, window.latent.pad.rect().center(), QPoint(50, 0))
    blended = wait_frame(qtbot, window)
    assert [s for s, _ in window.request.seeds] == [0, 1]
    window.latent.snap.click()
    snapped = wait_frame(qtbot, window)
    assert window.request.seeds == [(0, 1.0)] and changed(blended, snapped)
    window.latent.step(1)
    wait_frame(qtbot, window)
    assert window.request.seeds == [(1, 1.0)] and window.latent.seed.value() == 1


def test_animation_moves_through_seeds(open_window, qtbot):
    window = open_window(fixture_model("stylegan2-ada-32"))
    window.latent.speed.setValue(5.0)
    window.latent.animate.setChecked(True)
    first = window.submitted_stamp
    qtbot.waitUntil(lambda: window.shown_stamp > first + 3, timeout=FRAME_TIMEOUT_MS)
    window.latent.animate.setChecked(False)
    assert window.latent.xy[0] > 0.1 and window.animate_action.isChecked() is False
    assert window.perf.frame_count() > 3


def test_class_selector_on_a_conditional_model(open_window, qtbot):
    window = open_window(fixture_model("stylegan2-32-cond"))
    assert window.latent.class_idx.isEnabled() and window.latent.class_idx.count() == 4
    assert window.request.class_idx == 0
    before = window.canvas.image.copy()
    window.latent.class_idx.setCurrentIndex(2)
    after = wait_frame(qtbot, window)
    assert window.request.class_idx == 2 and changed(before, after)


# -- truncation and mixing -----------------------------------------------------------------------


def test_truncation_psi_and_cutoff(open_window, qtbot):
    window = open_window(fixture_model("stylegan2-ada-32"))
    before = window.canvas.image.copy()
    window.truncation.psi.setValue(0)
    truncated = wait_frame(qtbot, window)
    assert window.request.truncation_psi == 0.0 and window.truncation.psi_label.text() == "0.00"
    assert changed(before, truncated)
    window.truncation.cutoff.setValue(2)
    cut = wait_frame(qtbot, window)
    assert window.request.truncation_cutoff == 2 and "2 of 8" in window.truncation.cutoff_label.text()
    assert changed(truncated, cut)
    window.truncation.cutoff.setValue(8)
    wait_frame(qtbot, window)
    assert window.request.truncation_cutoff is None


def test_style_mixing_presets_and_range(open_window, qtbot):
    window = open_window(fixture_model("stylegan2-ada-32"))
    before = window.canvas.image.copy()
    window.mixing.presets["coarse"].click()
    mixed = wait_frame(qtbot, window)
    assert window.mixing.enabled.isChecked()
    assert window.request.mix_seed == 1 and window.request.mix_layers == [0, 1]
    assert changed(before, mixed)
    window.mixing.layers.setFocus()
    QTest.keyClick(window.mixing.layers, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    wider = wait_frame(qtbot, window)
    assert window.request.mix_layers == [0, 1, 2] and changed(mixed, wider)
    assert "4²" in window.mixing.layers_label.text()
    window.mixing.enabled.setChecked(False)
    plain = wait_frame(qtbot, window)
    assert window.request.mix_layers == [] and window.request.mix_seed is None
    np.testing.assert_array_equal(plain, before)


# -- noise ---------------------------------------------------------------------------------------


def test_noise_mode_seed_and_layer_toggles(open_window, qtbot):
    window = open_window(fixture_model("stylegan2-ada-32"))
    const = window.canvas.image.copy()
    window.noise.toggles[-1].setChecked(False)
    off = wait_frame(qtbot, window)
    assert window.request.noise_enabled == [True] * 6 + [False]
    assert changed(const, off)
    window.noise.toggles[-1].setChecked(True)
    window.noise.mode.setCurrentText("random")
    random0 = wait_frame(qtbot, window)
    assert window.request.noise_mode == "random" and window.noise.seed.isEnabled()
    assert window.request.noise_enabled is None
    window.noise.seed.setValue(3)
    random3 = wait_frame(qtbot, window)
    assert window.request.noise_seed == 3 and changed(random0, random3)


def test_noise_controls_change_nothing_on_stylegan3(open_window, qtbot):
    window = open_window(fixture_model("stylegan3-t-32"))
    assert not window.noise.mode.isEnabled() and window.noise.toggles == []
    assert "no noise" in window.noise.note.text()
    before = window.canvas.image.copy()
    window.noise.mode.setCurrentText("random")
    after = wait_frame(qtbot, window)
    assert window.request.noise_mode == "random"
    np.testing.assert_array_equal(before, after)


# -- StyleGAN3 transform -------------------------------------------------------------------------


def test_translate_rotate_round_and_reset(open_window, qtbot):
    window = open_window(fixture_model("stylegan3-t-32"))
    t = window.transform
    identity = window.canvas.image.copy()
    t.tx.setValue(0.25)
    moved = wait_frame(qtbot, window)
    assert window.request.translate == (0.25, 0.0) and changed(identity, moved)
    t.rotate.setValue(30.0)
    rotated = wait_frame(qtbot, window)
    assert window.request.rotate == 30.0 and changed(moved, rotated)
    t.reset.click()
    reset = wait_frame(qtbot, window)
    assert window.request.translate == (0.0, 0.0) and window.request.rotate == 0.0
    np.testing.assert_array_equal(reset, identity)
    t.round.setChecked(True)
    t.tx.setValue(0.01)  # under half a pixel of 32: rounds to no translation
    rounded = wait_frame(qtbot, window)
    assert window.request.translate == (0.0, 0.0)
    np.testing.assert_array_equal(rounded, identity)
    t.tx.setValue(2 / 32)
    wait_frame(qtbot, window)
    assert window.request.translate == (pytest.approx(2 / 32), 0.0)


def test_transform_drag_pad(open_window, qtbot):
    window = open_window(fixture_model("stylegan3-r-32"))
    before = window.canvas.image.copy()
    pad = window.transform.pad
    drag(qtbot, pad, pad.rect().center(), QPoint(40, 0))
    translated = wait_frame(qtbot, window)
    assert window.request.translate[0] == pytest.approx(0.1) and changed(before, translated)
    drag(qtbot, pad, pad.rect().center(), QPoint(20, 0), button=Qt.MouseButton.RightButton)
    rotated = wait_frame(qtbot, window)
    assert window.request.rotate == pytest.approx(10.0) and changed(translated, rotated)


def test_transform_animation(open_window, qtbot):
    window = open_window(fixture_model("stylegan3-t-32"))
    window.transform.animate_rotate.setChecked(True)
    first = window.submitted_stamp
    qtbot.waitUntil(lambda: window.shown_stamp > first + 2, timeout=FRAME_TIMEOUT_MS)
    window.transform.animate_rotate.setChecked(False)
    assert window.request.rotate > 0


def test_transform_is_greyed_out_without_an_input_transform(open_window):
    window = open_window(fixture_model("stylegan2-ada-32"))
    t = window.transform
    assert not any(w.isEnabled() for w in (t.tx, t.ty, t.rotate, t.pad, t.reset, t.animate_rotate))
    assert "no input transform" in t.note.text()
    assert window.request.translate == (0.0, 0.0)


# -- errors --------------------------------------------------------------------------------------


def test_a_bad_file_shows_a_message_and_keeps_the_picture(open_window, qtbot, tmp_path):
    window = open_window(fixture_model("stylegan2-ada-32"))
    before = window.canvas.image.copy()
    bad = tmp_path / "broken.pkl"
    bad.write_bytes(b"\x80\x04garbage")
    window.open_model(bad)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=FRAME_TIMEOUT_MS)
    assert "broken.pkl" in window.banner.label.text()
    assert "broken.pkl" in window.statusBar().currentMessage()
    np.testing.assert_array_equal(window.canvas.image, before)
    assert window.info.family == "stylegan2"
    window.latent.seed.setValue(9)  # still working on the previous model
    assert changed(before, wait_frame(qtbot, window))


def test_a_missing_file_on_the_command_line_opens_with_a_message(qtbot, settings, tmp_path):
    window = create_window(tmp_path / "missing.pkl", settings=settings, device="cpu")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=FRAME_TIMEOUT_MS)
    assert "missing.pkl" in window.banner.label.text() and window.canvas.image is None


# -- capture, sessions, settings -----------------------------------------------------------------


def test_save_and_copy_image(open_window, tmp_path):
    from PIL import Image

    window = open_window(fixture_model("stylegan2-ada-32"))
    window.save_image(tmp_path / "shot.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "shot.png").convert("RGB")), window.canvas.image)
    window.copy_image()
    clip = QGuiApplication.clipboard().image()
    assert (clip.width(), clip.height()) == (32, 32)


def test_session_round_trip(open_window, qtbot, tmp_path):
    window = open_window(fixture_model("stylegan2-ada-32"))
    window.latent.set_xy(2.5, 1.0)
    window.truncation.psi.setValue(70)
    window.mixing.presets["middle"].click()
    window.noise.mode.setCurrentText("none")
    saved_image = wait_frame(qtbot, window)
    saved_request = json.loads(json.dumps(window.session()["request"]))
    window.save_session(tmp_path / "s.json")
    window.latent.seed.setValue(40)
    window.truncation.psi.setValue(100)
    window.mixing.enabled.setChecked(False)
    window.noise.mode.setCurrentText("const")
    assert changed(saved_image, wait_frame(qtbot, window))
    window.load_session(tmp_path / "s.json")
    restored = wait_frame(qtbot, window)
    assert json.loads(json.dumps(window.session()["request"])) == saved_request
    assert window.latent.xy == (2.5, 1.0)
    np.testing.assert_array_equal(restored, saved_image)


def test_session_of_another_model_loads_it(open_window, qtbot, tmp_path):
    window = open_window(fixture_model("stylegan3-t-32"))
    window.transform.rotate.setValue(45.0)
    wait_frame(qtbot, window)
    window.save_session(tmp_path / "s.json")
    expected = window.canvas.image.copy()
    window.open_model(fixture_model("stylegan2-ada-32"))
    qtbot.waitUntil(lambda: window.info.family == "stylegan2", timeout=FRAME_TIMEOUT_MS)
    wait_frame(qtbot, window)
    window.load_session(tmp_path / "s.json")
    qtbot.waitUntil(lambda: window.info.family == "stylegan3-t", timeout=FRAME_TIMEOUT_MS)
    np.testing.assert_array_equal(wait_frame(qtbot, window), expected)
    assert window.transform.rotate.value() == 45.0


def test_a_bad_session_file_is_reported(open_window, tmp_path):
    window = open_window(fixture_model("stylegan2-ada-32"))
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    window.load_session(tmp_path / "bad.json")
    assert window.banner.isVisible() and "not a Latent Explorer session" in window.banner.label.text()


def test_window_state_recent_files_and_last_session_persist(open_window, qtbot, settings, tmp_path):
    model = fixture_model("stylegan2-ada-32")
    window = open_window(model)
    window.resize(window.minimumWidth() + 1, 503)  # within the offscreen screen (800x600)
    size = window.size()
    window.latent.seed.setValue(12)
    window.perf_dock.hide()
    wait_frame(qtbot, window)
    window.close()
    assert settings.recent_files() == [str(model)]
    assert Path(settings.path).parent == tmp_path

    again = open_window(model)
    assert again.size() == size
    assert again.perf_dock.isHidden()
    assert again.latent.seed.value() == 12 and again.request.seeds == [(12, 1.0)]
    assert [a.text() for a in again.recent_menu.actions()] == [str(model)]


# -- shortcuts and drops -------------------------------------------------------------------------


def test_keyboard_shortcuts(open_window, qtbot):
    window = open_window(fixture_model("stylegan2-ada-32"))
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.waitUntil(lambda: QGuiApplication.focusWindow() is not None)
    before = window.canvas.image.copy()
    QTest.keyClick(window.canvas, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    after = wait_frame(qtbot, window)
    assert window.request.seeds == [(1, 1.0)] and changed(before, after)
    QTest.keyClick(window.canvas, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    np.testing.assert_array_equal(wait_frame(qtbot, window), before)
    QTest.keyClick(window.canvas, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.latent.animate.isChecked()
    QTest.keyClick(window.canvas, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert not window.latent.animate.isChecked()


def test_dropping_a_checkpoint_opens_it(open_window, qtbot):
    window = open_window(fixture_model("stylegan2-ada-32"))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(fixture_model("stylegan3-r-32")))])
    event = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.info.family == "stylegan3-r", timeout=FRAME_TIMEOUT_MS)
    assert wait_frame(qtbot, window).shape == (32, 32, 3)


# -- responsiveness ------------------------------------------------------------------------------


class SlowRender:
    """The real render, repeated until `seconds` have passed: an engine busy for seconds per frame."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.slow = False

    def __call__(self, model, request):
        start = time.perf_counter()
        result = render(model, request)
        while self.slow and time.perf_counter() - start < self.seconds:
            result = render(model, request)
        return result


@pytest.fixture
def frozen_gc():
    """As `explorer.app.main` does once the window is up: no full collections of the start-up objects."""
    gc.freeze()
    yield
    gc.unfreeze()


def test_gui_stays_responsive_while_the_engine_is_busy(qtbot, settings, frozen_gc):
    slow = SlowRender(seconds=1.5)
    bridge = EngineBridge(lambda on_event: RenderWorker(on_event, device="cpu", render_fn=slow))
    window = MainWindow(bridge, settings)
    bridge.setParent(window)
    qtbot.addWidget(window)
    window.show()
    window.open_model(fixture_model("stylegan2-ada-32"))
    wait_frame(qtbot, window)
    slow.slow = True

    # Measure the longest gap between ticks of a 5 ms timer while sliders move during slow frames.
    clock, gaps, last = QElapsedTimer(), [], [0]
    clock.start()

    def on_tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    ticker = QTimer()
    ticker.setInterval(5)
    ticker.timeout.connect(on_tick)
    ticker.start()
    first = window.submitted_stamp
    deadline = time.perf_counter() + 3.5
    value = 100
    while time.perf_counter() < deadline:
        value = 50 if value == 100 else 100
        window.truncation.psi.setValue(value)  # each move is a new request; the mailbox keeps the latest
        qtbot.wait(20)
    ticker.stop()
    assert bridge.busy or window.shown_stamp < window.submitted_stamp  # the engine really was busy
    gaps = gaps[1:]
    assert len(gaps) > 100
    assert max(gaps) < 50, f"the event loop stalled for {max(gaps)} ms"
    # Slow frames came through, far fewer than the requests made: no queue built up.
    slow.slow = False
    wait_frame(qtbot, window)
    assert window.submitted_stamp - first > 100
    assert window.perf.frame_count() < 10
