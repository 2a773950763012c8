"""The projection dock in the real window, offscreen, on the real engine thread: a short projection of
a picture the model drew shows its steps live and becomes the current state; cancelling keeps the
state; latents files import (a wrong shape is refused with a message) and export.

Settings, the default model and the projections folder all live in the test's temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import fixtures_dir
from test_gui import FRAME_TIMEOUT_MS, fixture_model, wait_frame

pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from explorer.app import create_window  # noqa: E402
from explorer.engine.projector import ProjectionSettings  # noqa: E402
from explorer.widgets.projection import projections_dir  # noqa: E402
from explorer.widgets.settings import Settings  # noqa: E402

FAST = ProjectionSettings(w_std_samples=200)  # the spread of w from fewer samples: the tiny models need no more


@pytest.fixture(autouse=True)
def private_locations(tmp_path, monkeypatch):
    """Never the user's settings, cache or data folder."""
    monkeypatch.setenv("EXPLORER_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("EXPLORER_DEFAULT_MODEL", str(tmp_path / "default.pt"))


@pytest.fixture
def open_window(qtbot, tmp_path):
    """A window on a fixture model (it installs the projection dock itself), after its first frame."""

    def make(name: str):
        window = create_window(fixture_model(name), settings=Settings.at(tmp_path / "settings.ini"), device="cpu")
        qtbot.addWidget(window)
        dock = window.projection_dock
        dock.base_settings = FAST
        window.show()
        qtbot.waitExposed(window)
        wait_frame(qtbot, window)
        return window, dock

    return make


def rendered_photo(window, path: Path) -> Path:
    """The picture on show with a grey border on the left and right: a wider 'photo' whose centre crop is it."""
    image = window.canvas.image
    h, w = image.shape[:2]
    photo = np.full((h, w + 12, 3), 128, np.uint8)
    photo[:, 6:6 + w] = image
    Image.fromarray(photo).save(path)
    return path


def test_menus_and_dock_are_installed(open_window):
    window, dock = open_window("stylegan2-ada-32")
    menus = {a.text(): a.menu() for a in window.menuBar().actions()}
    texts = [a.text() for a in menus["&File"].actions()]
    assert texts.index("&Project image…") < texts.index("&Import latents…") < texts.index("E&xport latents…")
    assert texts.index("E&xport latents…") < texts.index("&Quit")
    assert dock.toggleViewAction() in menus["&View"].actions()
    assert window.tabifiedDockWidgets(window.controls_dock).count(dock) == 1


def test_project_then_use_as_current_state(open_window, qtbot, tmp_path):
    window, dock = open_window("stylegan2-ada-32")
    before = window.canvas.image.copy()
    assert dock.open_image(rendered_photo(window, tmp_path / "photo.png"))
    assert dock.target.crop_box == (6, 0, 38, 32) and dock.target.source_size == (44, 32)
    assert np.array_equal(dock.target.pixels, before)  # the centre crop is the picture itself
    assert dock.crop.isVisible() and dock.crop.rect().width() == 32
    qtbot.waitUntil(lambda: dock.loss_label.text() == "Loss (automatic): discriminator features + Laplacian-pyramid L1",
                    timeout=FRAME_TIMEOUT_MS)  # the snapshot carries a discriminator, read in a job

    dock.steps.setValue(8)
    dock.latent.setCurrentIndex(1)  # W+
    dock.start_button.click()
    qtbot.waitUntil(lambda: len(dock._distances) > 0, timeout=FRAME_TIMEOUT_MS)  # steps arrive while it runs
    qtbot.waitUntil(lambda: dock.result is not None, timeout=FRAME_TIMEOUT_MS)
    result = dock.result
    assert len(dock._distances) == 8 and dock.distance_curve.getData()[0].size == 8
    assert result.settings.loss == "dfeat" and "discriminator features" in dock.result_label.text()
    assert np.array_equal(dock.projection_item.image, result.image)
    assert result.ws.shape == (1, window.info.num_ws, window.info.w_dim) and result.settings.w_plus
    assert "PSNR" in dock.result_label.text() and dock.use_button.isEnabled()
    assert "done" in dock.progress.label.text()
    assert window.request.ws is None  # nothing changes before the user says so

    dock.use_button.click()
    saved = list(projections_dir().glob("photo-model-*.npz"))
    assert len(saved) == 1 and saved[0].is_relative_to(tmp_path / "data")
    assert np.allclose(window.request.ws, result.ws[0])
    assert window.request.noise_file == str(saved[0]) and window.request.truncation_psi == 1.0
    shown = wait_frame(qtbot, window)
    assert np.abs(shown.astype(int) - result.image).max() <= 1  # the canvas shows the projection

    window.latent.step(1)  # moving the seed goes back to seeds
    assert window.request.ws is None and window.request.noise_file is None
    assert window.request.seeds == [(1, 1.0)]
    wait_frame(qtbot, window)
    assert not window.banner.isVisible()


def test_cancel_leaves_the_state(open_window, qtbot, tmp_path):
    window, dock = open_window("stylegan3-t-32")
    before, request = window.canvas.image.copy(), window.current_request()
    assert dock.open_image(rendered_photo(window, tmp_path / "photo.png"))
    assert not dock.fit_noise.isEnabled()  # StyleGAN3 has no noise inputs
    dock.steps.setValue(10000)
    dock.start_button.click()
    qtbot.waitUntil(lambda: len(dock._distances) > 0, timeout=FRAME_TIMEOUT_MS)
    dock.progress.cancel.click()
    qtbot.waitUntil(lambda: not dock.progress.running, timeout=FRAME_TIMEOUT_MS)
    assert "cancelled" in dock.progress.label.text()
    assert len(dock._distances) < 10000 and dock.result is None and not dock.use_button.isEnabled()
    assert window.current_request() == request and window.request.ws is None
    assert np.array_equal(window.canvas.image, before)
    assert not any(projections_dir().glob("*.npz"))


def test_import_and_export_latents(open_window, qtbot, tmp_path):
    window, dock = open_window("stylegan2-ada-32")
    info = window.info
    before, request = window.canvas.image.copy(), window.current_request()
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, w=np.zeros([1, info.num_ws + 1, info.w_dim], np.float32))
    assert not dock.import_latents(wrong)
    assert window.banner.isVisible() and f"[1, {info.num_ws + 1}, {info.w_dim}]" in window.banner.label.text()
    assert window.current_request() == request

    exported = tmp_path / "seed.npz"
    dock.export_latents(exported)  # the seed's W+, as NVIDIA's projector writes it
    qtbot.waitUntil(exported.exists, timeout=FRAME_TIMEOUT_MS)
    with np.load(exported) as data:
        assert data.files == ["w"] and data["w"].shape == (1, info.num_ws, info.w_dim)
        w = data["w"]
    np.save(tmp_path / "shifted.npy", w[0] + 0.5)
    assert dock.import_latents(tmp_path / "shifted.npy")
    assert np.allclose(window.request.ws, w[0] + 0.5) and window.request.noise_file is None
    assert not np.array_equal(wait_frame(qtbot, window), before)


def test_lpips_needs_weights_and_names_them(open_window, qtbot, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from test_projector import _tiny_vgg

    window, dock = open_window("stylegan2-ada-32")
    assert dock.open_image(rendered_photo(window, tmp_path / "photo.png"))
    dock.loss.setCurrentIndex(dock.loss.findData("lpips"))
    assert "needs VGG16 weights" in dock.loss_label.text() and not dock.weights_button.isHidden()
    assert dock.start() is None and "needs VGG16 weights" in dock.progress.label.text()

    torch.save(_tiny_vgg(), tmp_path / "vgg.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    chosen = [tmp_path / "junk.pth"]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *_args: ([str(p) for p in chosen], ""))
    dock.weights_button.click()  # read as a job: the message comes non-modally
    qtbot.waitUntil(window.banner.isVisible, timeout=FRAME_TIMEOUT_MS)
    assert "LPIPS weights failed" in window.banner.label.text() and "junk.pth" in window.banner.label.text()
    chosen[0] = tmp_path / "vgg.pth"
    dock.weights_button.click()
    qtbot.waitUntil(lambda: "learned" in dock.loss_label.text(), timeout=FRAME_TIMEOUT_MS)
    assert dock.loss_label.text() == "Loss: LPIPS (VGG16, learned layer weights; vgg.pth)"
    assert dock.settings().lpips_weights == (str(tmp_path / "vgg.pth"),)


def test_loss_choice_follows_the_discriminator(open_window, qtbot, tmp_path):
    """The dock names the loss in use; 'Discriminator features' is there only for files that carry one."""
    window, dock = open_window("stylegan2-ada-32")
    assert dock.open_image(rendered_photo(window, tmp_path / "photo.png"))
    dock.loss.setCurrentIndex(dock.loss.findData("laplacian"))
    assert dock.loss_label.text() == "Loss: Laplacian-pyramid L1"
    dock.loss.setCurrentIndex(dock.loss.findData("dfeat"))
    qtbot.waitUntil(lambda: dock.loss_label.text() == "Loss: discriminator features + Laplacian-pyramid L1",
                    timeout=FRAME_TIMEOUT_MS)

    window.open_model(fixtures_dir() / "tf" / "stylegan2_32" / "model.pkl")  # a TF pickle: no discriminator
    qtbot.waitUntil(lambda: dock.info.source_format == "tf-legacy-pickle", timeout=FRAME_TIMEOUT_MS)
    dfeat = dock.loss.model().item(dock.loss.findData("dfeat"))
    assert not dfeat.isEnabled() and "no discriminator" in dfeat.toolTip()
    assert dock.loss.currentData() == "auto" and dock.loss_label.text() == "Loss (automatic): Laplacian-pyramid L1"
