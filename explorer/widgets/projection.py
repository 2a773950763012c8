"""The projection dock: find the latent of a picture (File → Project image…) as a job of the engine,
watch the target and the current reconstruction side by side with the loss falling, then make the
result the current state; import and export W+ latents (File → Import / Export latents…).

"Use as current state" writes the latents with `save_latents` to the projections folder,
`$XDG_DATA_HOME/latent-explorer/projections/` (by default `~/.local/share/latent-explorer/projections/`),
as `<image>-<model>-<date>-<time>.npz`, and sets the window's request to its `ws` (and, when the noise
maps were fitted, `noise_file`), so ψ, mixing, noise toggles, directions and sessions work on it as
on any seed. Moving the seed (or the class) goes back to seeds.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PIL import Image, ImageOps
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QGraphicsRectItem,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..engine.projector import (
    ProjectionSettings,
    export_request_latents,
    load_latents,
    loss_label,
    make_loss,
    prepare_target,
    projection_job,
    resolve_loss,
    save_latents,
)
from ..engine.render import RenderRequest
from .jobs import JobProgressBar
from .panels import _row

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.webp *.tif *.tiff);;All files (*)"
LATENTS_FILTER = "Latents (*.npz *.npy);;All files (*)"
WEIGHTS_FILTER = "State dicts (*.pth *.pt);;All files (*)"
LOSS_CHOICES = (("Automatic", "auto"), ("Discriminator features + Laplacian L1", "dfeat"),
                ("Laplacian pyramid L1", "laplacian"), ("Pixel L2", "pixel"), ("LPIPS (VGG16 weights)", "lpips"))
NO_DISCRIMINATOR = "The model's file carries no discriminator (NVIDIA's training snapshots do)"
PREVIEWS = 100           # reconstructions sent over a run (one every steps / PREVIEWS steps)
SOURCE_PREVIEW_SIZE = 512  # longest side of the source as shown
DISTANCE_COLOR, LOSS_COLOR = "#4fc3f7", "#ffb74d"


def projections_dir() -> Path:
    """Where "Use as current state" keeps latents: the user's data folder (XDG on Linux, ~/.local/share elsewhere)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "latent-explorer" / "projections"


def set_latent_state(window, ws: np.ndarray, noise_file: str | None) -> None:
    """Make explicit latents [1, num_ws, w_dim] (and a noise file) the window's state, shown plainly:
    ψ 1, no mixing, edits, transform or layer view; seeds and class stay for when the user moves on."""
    request = RenderRequest(seeds=list(window.request.seeds), class_idx=window.request.class_idx,
                            ws=np.asarray(ws, dtype=np.float32)[0].tolist(), noise_file=noise_file)
    window.apply_request(request)


class _StepRelay(QObject):
    """Carries projection steps from the job thread to the GUI thread as a queued signal."""

    stepped = Signal(int, object)  # run number, ProjectionProgress


def _image_view(layout: pg.GraphicsLayoutWidget, title: str, col: int) -> tuple[pg.ViewBox, pg.ImageItem]:
    """A titled, fixed (no pan or zoom) picture in column `col` of `layout`."""
    layout.addLabel(title, row=0, col=col)
    view = layout.addViewBox(row=1, col=col, lockAspect=True, invertY=True, enableMenu=False)
    view.setMouseEnabled(False, False)
    item = pg.ImageItem(axisOrder="row-major")
    view.addItem(item)
    return view, item


def _show(view: pg.ViewBox, item: pg.ImageItem, image: np.ndarray | None) -> None:
    """Show uint8 [H, W, 3] whole in a view, or nothing."""
    if image is None:
        item.clear()
        return
    item.setImage(image, autoLevels=False, levels=(0, 255))
    view.setRange(QRectF(0, 0, image.shape[1], image.shape[0]), padding=0.02)


class ProjectionDock(QDockWidget):
    """Image, settings, Start / Cancel, source | target | reconstruction, the loss plot, and the result."""

    def __init__(self, window):
        super().__init__("Projection", window)
        self.setObjectName("projectionDock")
        self.main_window = window                        # the MainWindow it serves
        self.info = None                                 # ModelInfo of the model on show
        self.base_settings = ProjectionSettings()        # what the controls do not set (schedule, w samples)
        self.lpips_weights: tuple[str, ...] = ()
        self.path: str | None = None                     # the image file
        self.source: Image.Image | None = None           # the image, upright, RGB
        self.target = None                               # its TargetImage at the model's resolution
        self.result = None                               # the last ProjectionResult
        self._run = 0                                    # counts runs: steps of an older run are dropped
        self._stamp: int | None = None                   # the job of the current run
        self._label_token = 0                            # the loss label job whose answer is awaited
        self._losses: list[float] = []
        self._distances: list[float] = []

        self.open_image_button = QPushButton("Image…")
        self.path_label = QLabel("no image")
        self.path_label.setWordWrap(True)
        self.views = pg.GraphicsLayoutWidget()
        self.views.setBackground("#202020")
        self.views.setMinimumHeight(150)
        self.source_view, self.source_item = _image_view(self.views, "Source (crop outlined)", 0)
        self.target_view, self.target_item = _image_view(self.views, "Target", 1)
        self.projection_view, self.projection_item = _image_view(self.views, "Projection", 2)
        self.crop = QGraphicsRectItem()
        self.crop.setPen(pg.mkPen("#ffd54a", width=2))
        self.crop.hide()
        self.source_view.addItem(self.crop)
        self.loss_label = QLabel()
        self.loss_label.setWordWrap(True)

        self.steps = QSpinBox()
        self.steps.setRange(1, 100000)
        self.steps.setValue(self.base_settings.steps)
        self.latent = QComboBox()
        self.latent.addItem("W (one w for all layers)", False)
        self.latent.addItem("W+ (one w per layer)", True)
        self.fit_noise = QCheckBox("Fit noise maps")
        self.fit_noise.setChecked(self.base_settings.optimize_noise)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.loss = QComboBox()
        for text, kind in LOSS_CHOICES:
            self.loss.addItem(text, kind)
        self.weights_button = QPushButton("Weights…")
        self.weights_button.setToolTip("VGG16 (and LPIPS linear layer) state-dict files, e.g. torchvision's "
                                       "vgg16-397923af.pth and the lpips package's vgg.pth")
        self.start_button = QPushButton("Start")
        self.progress = JobProgressBar()
        self.plot = pg.PlotWidget(background="#202020")
        self.plot.setMinimumHeight(120)
        self.plot.setLogMode(y=True)
        self.plot.setLabel("bottom", "step")
        self.plot.setTitle(f"<span style='color:{DISTANCE_COLOR}'>distance to the target</span>&nbsp;&nbsp;"
                           f"<span style='color:{LOSS_COLOR}'>+ noise regularisation</span>", size="9pt")
        self.distance_curve = self.plot.plot(pen=pg.mkPen(DISTANCE_COLOR, width=2))
        self.loss_curve = self.plot.plot(pen=pg.mkPen(LOSS_COLOR, width=1))
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_button = QPushButton("Use as current state")
        self.use_button.setToolTip(f"Save the latents in {projections_dir()} and show them in the window")
        self.use_button.setEnabled(False)

        form = QFormLayout()
        form.addRow(self.open_image_button, self.path_label)
        form.addRow("Steps", self.steps)
        form.addRow("Latent", self.latent)
        form.addRow("", self.fit_noise)
        form.addRow("Seed", self.seed)
        form.addRow("Loss", _row(self.loss, self.weights_button))
        form.addRow("", self.loss_label)
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.addWidget(self.views, 1)
        lay.addLayout(form)
        lay.addWidget(self.start_button)
        lay.addWidget(self.progress)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.result_label)
        lay.addWidget(self.use_button)
        self.setWidget(body)

        self._relay = _StepRelay(self)
        self._relay.stepped.connect(self._on_stepped, Qt.ConnectionType.QueuedConnection)
        self.open_image_button.clicked.connect(self._on_open_image_clicked)
        self.loss.currentIndexChanged.connect(self._on_loss_changed)
        self.weights_button.clicked.connect(self._on_weights_clicked)
        self.start_button.clicked.connect(self._on_start_clicked)
        self.use_button.clicked.connect(self.use_result)
        window.engine.model_loaded.connect(self._on_model_loaded, Qt.ConnectionType.QueuedConnection)
        window.latent.changed.connect(self._on_latent_changed)
        if window.info is not None:
            self.configure(window.info)
        self._update_loss_label()

    # -- the model and the image -----------------------------------------------------------------

    def configure(self, info) -> None:
        """Adapt to a newly loaded model: the target is cut again, a running projection is cancelled."""
        self.info = info
        self.latent.model().item(1).setEnabled(info.num_ws > 1)
        if info.num_ws < 2:
            self.latent.setCurrentIndex(0)
        self.fit_noise.setEnabled(info.has_noise)
        self.fit_noise.setToolTip("" if info.has_noise else f"a {info.family} model has no noise inputs")
        dfeat = self.loss.model().item(self.loss.findData("dfeat"))
        dfeat.setEnabled(info.discriminator is not None)
        dfeat.setToolTip("" if info.discriminator is not None else NO_DISCRIMINATOR)
        if info.discriminator is None and self.loss.currentData() == "dfeat":
            self.loss.setCurrentIndex(self.loss.findData("auto"))
        self._reset()
        self._prepare_target()

    def open_image(self, path: str | Path) -> bool:
        """Show an image file and cut it to the model; False (with a message) if it cannot be read."""
        try:
            with Image.open(path) as opened:
                source = ImageOps.exif_transpose(opened).convert("RGB")
        except (OSError, ValueError) as e:
            self.main_window.show_error(f"Could not open the image {path}: {e}")
            return False
        self.path, self.source = str(path), source
        preview = source.copy()
        preview.thumbnail((SOURCE_PREVIEW_SIZE, SOURCE_PREVIEW_SIZE))
        _show(self.source_view, self.source_item, np.asarray(preview))
        self.path_label.setText(f"{Path(path).name} ({source.width}×{source.height})")
        self._reset()
        self._prepare_target()
        return True

    def _prepare_target(self) -> None:
        """Cut the image to the model's resolution and outline the crop on the source."""
        if self.source is None or self.info is None:
            return
        self.target = prepare_target(self.source, self.info.resolution)
        scale = min(SOURCE_PREVIEW_SIZE / max(self.source.size), 1.0)
        left, top, right, bottom = (v * scale for v in self.target.crop_box)
        self.crop.setRect(QRectF(left, top, right - left, bottom - top))
        self.crop.show()
        _show(self.target_view, self.target_item, self.target.pixels)
        self._update_loss_label()

    def _update_loss_label(self) -> None:
        """Name the loss in use (`make_loss(...).label`), saying when 'Automatic' chose it; LPIPS reads its
        weights and the discriminator its checkpoint, in a job."""
        choice = self.loss.currentData()
        self.weights_button.setVisible(choice in ("auto", "lpips"))
        self._label_token += 1
        if choice == "lpips" and not self.lpips_weights:
            self.loss_label.setText("LPIPS needs VGG16 weights you have: choose the files with Weights…")
            return
        if self.target is None:
            self.loss_label.setText("Choose an image (File → Project image…)")
            return
        kind = resolve_loss(choice, self.info, self.lpips_weights)
        prefix = "Loss (automatic)" if choice == "auto" else "Loss"
        if kind in ("lpips", "dfeat"):  # reading weights or the discriminator takes a while: a job
            self.loss_label.setText(f"{prefix}: {'LPIPS' if kind == 'lpips' else 'discriminator features'} (reading…)")
            token = self._label_token
            self.main_window.jobs.start(loss_label, kind, self.target.pixels, self.lpips_weights,
                                        title="LPIPS weights" if kind == "lpips" else "Discriminator",
                                        done=lambda event: self._on_loss_labelled(token, prefix, event))
        else:
            self.loss_label.setText(f"{prefix}: {make_loss(kind, self.target.pixels).label}")

    def _on_loss_labelled(self, token: int, prefix: str, event) -> None:
        if token == self._label_token:
            self.loss_label.setText(f"{prefix}: {event.result}")

    # -- running ---------------------------------------------------------------------------------

    def settings(self) -> ProjectionSettings:
        """The run the controls describe, on top of `base_settings`."""
        steps = self.steps.value()
        return dataclasses.replace(
            self.base_settings, steps=steps, w_plus=self.latent.currentData(), seed=self.seed.value(),
            loss=self.loss.currentData(), lpips_weights=self.lpips_weights,
            optimize_noise=self.fit_noise.isChecked() and self.fit_noise.isEnabled(),
            class_idx=self.main_window.request.class_idx, preview_every=max(1, steps // PREVIEWS))

    def start(self) -> int | None:
        """Start projecting the image as a job (replacing a run in progress); returns its stamp."""
        if self.info is None or self.target is None:
            self.progress.finish("Cannot project: choose an image first (and wait for the model to load)")
            return None
        settings = self.settings()
        try:
            settings.validate(self.info)
        except ValueError as e:
            self.progress.finish(f"Cannot project: {e}")
            return None
        self._reset()
        on_step = functools.partial(self._relay.stepped.emit, self._run)
        self._stamp = self.main_window.jobs.start(projection_job, self.target, settings, title="Projection",
                                                  bar=self.progress, done=self._on_projected, on_step=on_step)
        return self._stamp

    def _reset(self) -> None:
        """Cancel a run in progress and forget the last result."""
        if self._stamp is not None:
            self.main_window.jobs.cancel(self._stamp)
        self._run += 1
        self._stamp = None
        self.result = None
        self._losses.clear()
        self._distances.clear()
        self.distance_curve.setData([], [])
        self.loss_curve.setData([], [])
        _show(self.projection_view, self.projection_item, None)
        self.result_label.clear()
        self.use_button.setEnabled(False)

    def _on_stepped(self, run: int, step) -> None:
        if run != self._run:
            return  # a run replaced or cancelled since
        self._losses.append(step.loss)
        self._distances.append(step.distance)
        if step.image is None:
            return  # redraw with the previews only: about PREVIEWS times a run, however long
        x = np.arange(1, len(self._losses) + 1)
        self.distance_curve.setData(x, np.maximum(self._distances, 1e-12))
        self.loss_curve.setData(x, np.maximum(self._losses, 1e-12))
        _show(self.projection_view, self.projection_item, step.image)

    def _on_projected(self, event) -> None:
        if event.stamp != self._stamp:
            return
        self._stamp = None
        self.result = r = event.result
        _show(self.projection_view, self.projection_item, r.image)
        space = "W+" if r.settings.w_plus else "W"
        noise = ", noise fitted" if r.noise else ""
        self.result_label.setText(f"PSNR {r.psnr:.2f} dB, {r.loss_label} {r.distance:.4g} "
                                  f"({len(r.losses)} steps in {space}{noise}, {r.seconds:.1f} s)")
        self.use_button.setEnabled(True)

    def use_result(self) -> Path | None:
        """Save the projection's latents in `projections_dir()` and make them the window's state."""
        r = self.result
        name = f"{Path(self.path).stem}-{Path(self.info.path).stem}-{time.strftime('%Y%m%d-%H%M%S')}.npz"
        path = projections_dir() / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_latents(path, r.ws, r.noise)
        except OSError as e:
            self.main_window.show_error(f"Could not save the latents to {path}: {e.strerror or e}")
            return None
        set_latent_state(self.main_window, r.ws, str(path) if r.noise else None)
        self.main_window.statusBar().showMessage(f"The projection is the current state (saved as {path})", 8000)
        return path

    # -- latents files ---------------------------------------------------------------------------

    def import_latents(self, path: str | Path) -> bool:
        """Make a `.npz` / `.npy` latent the current state; False (with a message, state kept) if it does not fit."""
        if self.info is None:
            self.main_window.show_error("Could not import the latents: open a model first")
            return False
        try:
            latents = load_latents(path, self.info)
        except ValueError as e:
            self.main_window.show_error(f"Could not import the latents: {e}")
            return False
        set_latent_state(self.main_window, latents.ws, str(path) if latents.noise is not None else None)
        self.main_window.statusBar().showMessage(f"Imported {path}", 5000)
        return True

    def export_latents(self, path: str | Path) -> int | None:
        """Write the current state's W+ (and fitted noise maps) as `.npz` in NVIDIA's layout, as a job."""
        if self.info is None:
            self.main_window.show_error("Could not export the latents: open a model first")
            return None
        return self.main_window.jobs.start(export_request_latents, self.main_window.current_request(), str(path),
                                           title="Export latents", done=self._on_latents_exported)

    def _on_latents_exported(self, event) -> None:
        self.main_window.statusBar().showMessage(f"Wrote {event.result}", 8000)

    # -- slots -----------------------------------------------------------------------------------

    def _on_model_loaded(self, event) -> None:
        self.configure(event.info)

    def _on_latent_changed(self) -> None:
        if self.main_window.request.ws is None:
            return
        # Moving the seed leaves the explicit latents; render the seeds (this slot then does nothing).
        self.main_window.request.ws = self.main_window.request.noise_file = None
        self.main_window.latent.changed.emit()

    def _on_open_image_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Project an image", "", IMAGE_FILTER)
        if path:
            self.open_image(path)

    def _on_loss_changed(self, _index: int) -> None:
        self._update_loss_label()

    def _on_weights_clicked(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "VGG16 / LPIPS weights", "", WEIGHTS_FILTER)
        if paths:
            self.lpips_weights = tuple(paths)
            self._update_loss_label()

    def _on_start_clicked(self) -> None:
        self.start()


def _menu(window, title: str):
    """The window's menu of that title ('&File')."""
    return next(a.menu() for a in window.menuBar().actions() if a.menu() is not None and a.text() == title)


def install_projection(window) -> ProjectionDock:
    """Add the projection dock (tabbed with the controls) and File → Project image… / Import / Export latents…"""
    dock = ProjectionDock(window)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    window.tabifyDockWidget(window.controls_dock, dock)
    window.controls_dock.raise_()

    def project_image() -> None:
        path, _ = QFileDialog.getOpenFileName(window, "Project an image", "", IMAGE_FILTER)
        if path and dock.open_image(path):
            dock.show()
            dock.raise_()

    def import_latents() -> None:
        path, _ = QFileDialog.getOpenFileName(window, "Import latents", "", LATENTS_FILTER)
        if path:
            dock.import_latents(path)

    def export_latents() -> None:
        path, _ = QFileDialog.getSaveFileName(window, "Export latents", "latents.npz", "NumPy archive (*.npz)")
        if path:
            dock.export_latents(path)

    actions = []
    for text, slot in (("&Project image…", project_image), ("&Import latents…", import_latents),
                       ("E&xport latents…", export_latents)):
        action = QAction(text, window)
        action.triggered.connect(slot)
        actions.append(action)
    file = _menu(window, "&File")
    quit_action = next((a for a in file.actions() if a.text() == "&Quit"), None)  # above Quit, in a group
    file.insertActions(quit_action, actions)
    file.insertSeparator(quit_action)
    _menu(window, "&View").addAction(dock.toggleViewAction())
    return dock
