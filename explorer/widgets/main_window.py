"""The main window: a canvas showing the engine's latest frame and control panels that write one
render request. The engine runs on its own thread behind `EngineBridge`; nothing here waits on it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QAction, QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..engine.interpolate import Walk
from ..engine.render import RenderRequest
from .aliasing import EquivariancePanel
from .canvas import ImageCanvas
from .directions import DirectionsPanel
from .grid_view import MixingGridPanel
from .jobs import JobTracker
from .panels import (
    CHECKPOINT_FILTER,
    LatentPanel,
    LayersPanel,
    MixingPanel,
    ModelPanel,
    NoisePanel,
    Panel,
    TransformPanel,
    TruncationPanel,
)
from .perf import PerfPanel
from .projection import install_projection
from .settings import Settings
from .spectrum import SpectrumPlot
from .timeline import TimelinePanel

SESSION_FORMAT = "latent-explorer-session"
SESSION_VERSION = 1
SESSION_FILTER = "Sessions (*.json);;All files (*)"


def to_qimage(image) -> QImage:
    """uint8 [H, W, 3] -> a QImage that owns a copy of the pixels."""
    h, w = image.shape[:2]
    return QImage(image.tobytes(), w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ErrorBanner(QFrame):
    """A non-modal message above the picture; the picture and everything else keep working."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setStyleSheet("#errorBanner { background: #5c1e1e; } QLabel { color: #ffdede; }")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 4, 4)
        lay.addWidget(self.label, 1)
        lay.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()


class MainWindow(QMainWindow):
    """The explorer window. `engine` is an `EngineBridge` (or anything with its signals and methods)."""

    def __init__(self, engine, settings: Settings, bundled: Sequence = (), restore_last_session: bool = True,
                 parent=None):
        super().__init__(parent)
        self.engine = engine
        self.settings = settings
        self.bundled = tuple(bundled)
        self.request = RenderRequest()
        self.info = None                 # ModelInfo of the model on show
        self.submitted_stamp = 0         # stamp of the last request sent
        self.shown_stamp = 0             # stamp of the frame on the canvas
        self._load_stamp = 0             # stamp of the last load asked for
        self._loaded_stamp = 0           # stamp of the last load that finished (or failed)
        self._session_after_load: dict | None = None
        self._start_after_load: dict | None = None
        self._restore_last = restore_last_session
        self.setWindowTitle("Latent Explorer")
        self.setAcceptDrops(True)

        # The picture with the error banner above it.
        self.canvas = ImageCanvas()
        self.banner = ErrorBanner()
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.banner)
        lay.addWidget(self.canvas, 1)
        self.setCentralWidget(central)

        # Controls: every panel writes part of the request; all but the directions sit in one pane.
        self.jobs = JobTracker(engine, self)
        self.model_panel = ModelPanel()
        self.latent = LatentPanel()
        self.truncation = TruncationPanel()
        self.mixing = MixingPanel()
        self.noise = NoisePanel()
        self.transform = TransformPanel()
        self.layers = LayersPanel()
        self.directions = DirectionsPanel(self.jobs)
        self.panels: tuple[Panel, ...] = (self.model_panel, self.latent, self.truncation, self.mixing,
                                          self.noise, self.transform, self.layers, self.directions)
        pane = QWidget()
        pane_lay = QVBoxLayout(pane)
        for panel in self.panels:
            if panel is not self.directions:
                pane_lay.addWidget(panel)
            panel.changed.connect(self._on_panel_changed)
        pane_lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(pane)
        self._scroll = scroll
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.controls_dock = self._dock("Controls", scroll, Qt.DockWidgetArea.RightDockWidgetArea)
        right = Qt.DockWidgetArea.RightDockWidgetArea
        self.directions_dock = self._dock("Directions", self.directions, right, scroll=True)
        self.grid = MixingGridPanel(self.jobs, self.current_request)
        self.grid_dock = self._dock("Mixing grid", self.grid, right, scroll=True)
        self.equivariance = EquivariancePanel(self.jobs, self.current_request)
        self.equivariance_dock = self._dock("Equivariance", self.equivariance, right, scroll=True)
        for dock in (self.directions_dock, self.grid_dock, self.equivariance_dock):
            self.tabifyDockWidget(self.controls_dock, dock)
        self.controls_dock.raise_()
        self.timeline = TimelinePanel(self.jobs, self.current_request)
        self.timeline_dock = self._dock("Timeline", self.timeline, Qt.DockWidgetArea.BottomDockWidgetArea, scroll=True)
        self.perf = PerfPanel()
        self.perf_dock = self._dock("Performance", self.perf, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.spectrum = SpectrumPlot(engine, settings.recent_files, self.bundled)
        self.spectrum_dock = self._dock("Spectrum", self.spectrum, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.timeline_dock, self.perf_dock)
        self.tabifyDockWidget(self.timeline_dock, self.spectrum_dock)
        self.perf_dock.raise_()
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)

        self.hover_label = QLabel()
        self.statusBar().addPermanentWidget(self.hover_label)
        self._build_menus()
        self.projection_dock = install_projection(self)

        engine.frame_rendered.connect(self._on_frame_rendered, Qt.ConnectionType.QueuedConnection)
        engine.model_loaded.connect(self._on_model_loaded, Qt.ConnectionType.QueuedConnection)
        engine.job_failed.connect(self._on_job_failed, Qt.ConnectionType.QueuedConnection)
        self.jobs.failed.connect(self.show_error)
        self.spectrum.failed.connect(self.show_error)
        self.spectrum_dock.visibilityChanged.connect(self.spectrum.set_on_screen)
        self.jobs.finished.connect(self._on_jobs_finished)
        self.layers.fft.toggled.connect(self._on_fft_toggled)
        self.timeline.frame_requested.connect(self._on_timeline_frame_requested)
        self.grid.cell_chosen.connect(self.apply_request)
        self.canvas.dragged.connect(self._on_canvas_dragged)
        self.canvas.hovered.connect(self.hover_label.setText)

        self.resize(1280, 860)
        geometry, state = settings.value("window/geometry"), settings.value("window/state")
        self._default_layout = state.isEmpty()  # size the docks once the window is shown
        if not geometry.isEmpty():
            self.restoreGeometry(geometry)
        if not state.isEmpty():
            self.restoreState(state)

    def _dock(self, title: str, widget: QWidget, area, scroll: bool = False) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower().replace(" ", "") + "Dock")  # saveState needs names
        if scroll:  # a tall panel scrolls rather than forcing its height on the window
            area_widget = QScrollArea()
            area_widget.setWidgetResizable(True)
            area_widget.setWidget(widget)
            widget = area_widget
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, menu, text: str, slot, shortcut=None, checkable: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&Open model…", self._on_open_triggered, QKeySequence.StandardKey.Open)
        self.recent_menu = file.addMenu("Open &recent")
        self.bundled_menu = file.addMenu("&Bundled models")
        for entry in self.bundled:
            self._action(self.bundled_menu, entry.label, lambda _c=False, e=entry: self.open_bundled(e))
        file.addSeparator()
        self._action(file, "&Save image…", self._on_save_image_triggered, QKeySequence.StandardKey.Save)
        self._action(file, "&Copy image", self.copy_image, "Ctrl+Shift+C")
        file.addSeparator()
        self._action(file, "Open s&ession…", self._on_open_session_triggered, "Ctrl+Shift+O")
        self._action(file, "Save se&ssion…", self._on_save_session_triggered, "Ctrl+Shift+S")
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        view = bar.addMenu("&View")
        self._action(view, "&Fit to window", self.canvas.fit, "F")
        self._action(view, "&Actual size (1:1)", self.canvas.actual_size, "1")
        view.addSeparator()
        for dock in (self.controls_dock, self.directions_dock, self.grid_dock, self.equivariance_dock,
                     self.timeline_dock, self.perf_dock, self.spectrum_dock):
            view.addAction(dock.toggleViewAction())

        latent = bar.addMenu("&Latent")
        self._action(latent, "&Next seed", lambda: self.latent.step(1), "Alt+Right")
        self._action(latent, "&Previous seed", lambda: self.latent.step(-1), "Alt+Left")
        self._action(latent, "&Snap to seed", self.latent.snap.click)
        self.animate_action = self._action(latent, "&Animate", self.latent.animate.setChecked, "Ctrl+Shift+A",
                                           checkable=True)
        self.latent.animate.toggled.connect(self.animate_action.setChecked)

        transform = bar.addMenu("&Transform")
        self._action(transform, "&Reset", self.transform.reset.click, "Ctrl+R")
        self._update_recent_menu(self.settings.recent_files())

    def _update_recent_menu(self, files: list[str]) -> None:
        self.recent_menu.clear()
        for path in files:
            self._action(self.recent_menu, path, lambda _c=False, p=path: self.open_model(p))
        self.recent_menu.setEnabled(bool(files))

    # -- models ----------------------------------------------------------------------------------

    @property
    def loading(self) -> bool:
        return self._loaded_stamp < self._load_stamp

    def open_model(self, path: str | Path, prepare=None, session: dict | None = None,
                   start: dict | None = None) -> None:
        """Load a checkpoint on the engine thread; the current picture stays until it is ready.

        `session` is applied once it is loaded; else the last session of the same file, if one is to be
        restored; else `start`, a request's JSON fields (a bundled model's first picture).
        """
        self._session_after_load = session
        self._start_after_load = start
        self._load_stamp = self.engine.load(str(path), prepare=prepare)
        self.statusBar().showMessage(f"Loading {path} …")

    def open_bundled(self, entry) -> None:
        self.open_model(entry.path(), prepare=entry.prepare, start=entry.start)

    def _on_model_loaded(self, event) -> None:
        self.info = info = event.info
        for panel in self.panels:
            panel.configure(info)
        self.layers.set_layers(event.layers)
        for dock in (self.timeline, self.grid, self.equivariance):
            dock.configure(info)
        self._set_latents(None)  # explicit latents of the previous model do not fit this one
        session = self._session_after_load if event.stamp == self._load_stamp else None
        if session is None and self._restore_last:
            session = self._last_session_for(info.path)
        self._restore_last = False
        if session is None and event.stamp == self._load_stamp and self._start_after_load is not None:
            session = {"request": self._start_after_load}
        if session is not None:
            self._apply_session(session)
        self.banner.hide()
        self.perf.set_engine_state(event.device, event.kernels)
        name = Path(info.path).name
        self.setWindowTitle(f"Latent Explorer — {name} ({info.family}, {info.resolution}×{info.resolution})")
        self.statusBar().showMessage(f"Loaded {name} in {event.load_seconds:.2f} s "
                                     f"(warm-up {event.warmup_seconds:.2f} s)", 5000)
        self._update_recent_menu(self.settings.add_recent_file(info.path))
        self._loaded_stamp = max(self._loaded_stamp, event.stamp)  # panels are ready: frames may go
        self._submit()

    def _on_job_failed(self, event) -> None:
        if event.job not in ("load", "render"):
            return  # a long job: its progress bar and the job tracker report it
        what = "Could not load the model" if event.job == "load" else "Could not render"
        self.show_error(f"{what}: {event.message}")
        if event.job == "load":
            self._loaded_stamp = max(self._loaded_stamp, event.stamp)
            self._submit()  # requests made while it loaded are for the model still open

    def show_error(self, text: str) -> None:
        """A message in the window and the status bar; the previous picture stays."""
        self.banner.show_message(text)
        self.statusBar().showMessage(text, 15000)

    # -- requests and frames ---------------------------------------------------------------------

    def _on_panel_changed(self) -> None:
        self._submit()

    def _submit(self) -> None:
        for panel in self.panels:
            panel.write(self.request)
        if self.info is not None and not self.loading:
            self.submitted_stamp = self.engine.submit(self.request)

    def _on_frame_rendered(self, event) -> None:
        self.shown_stamp = event.stamp
        self.canvas.show_image(event.image)
        self.perf.add_frame(event.timings)
        self.spectrum.show_frame(event)

    def current_request(self) -> RenderRequest:
        """A copy of the request the controls describe."""
        return RenderRequest.from_dict(dataclasses.asdict(self.request))

    def _set_latents(self, request: RenderRequest | None) -> None:
        """Take over a request's explicit latents and noise file (a projection), which no panel shows."""
        self.request.ws = request.ws if request is not None else None
        self.request.noise_file = request.noise_file if request is not None else None

    def apply_request(self, request: RenderRequest) -> None:
        """Show `request` in every control and render it (e.g. a clicked grid cell)."""
        self._set_latents(request)
        for panel in self.panels:
            panel.read(request)
        with QSignalBlocker(self.latent):
            self.latent.set_xy(float(max(request.seeds, key=lambda sw: sw[1])[0]), 0.0)
        self._submit()

    def _on_timeline_frame_requested(self, frame) -> None:
        if self.info is not None and not self.loading:
            self.submitted_stamp = self.engine.submit(frame)

    def _on_fft_toggled(self, on: bool) -> None:
        if on:
            self.spectrum_dock.show()
            self.spectrum_dock.raise_()

    def _on_jobs_finished(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _on_canvas_dragged(self, dx: float, dy: float) -> None:
        self.latent.drag(dx, dy)

    # -- capture and sessions --------------------------------------------------------------------

    def save_image(self, path: str | Path) -> None:
        """The picture on show as a PNG at the model's resolution."""
        image = self.canvas.image
        if image is None:
            self.show_error("There is no picture to save yet")
        elif not to_qimage(image).save(str(path), "PNG"):
            self.show_error(f"Could not write {path}")
        else:
            self.statusBar().showMessage(f"Saved {path}", 5000)

    def copy_image(self) -> None:
        if self.canvas.image is not None:
            QGuiApplication.clipboard().setImage(to_qimage(self.canvas.image))
            self.statusBar().showMessage("Copied the picture", 3000)

    def session(self) -> dict:
        """Everything needed to show this picture again: model file, request, latent position, walk, and the
        model its spectrum is compared with."""
        return {
            "format": SESSION_FORMAT,
            "version": SESSION_VERSION,
            "model": self.info.path if self.info is not None else None,
            "latent": list(self.latent.xy),
            "request": dataclasses.asdict(self.request),
            "walk": self.timeline.walk().to_dict() if self.timeline.keyframes else None,
            "compare_with": self.spectrum.companion.path if self.spectrum.companion is not None else None,
        }

    def save_session(self, path: str | Path) -> None:
        try:
            Path(path).write_text(json.dumps(self.session(), indent=2))
        except OSError as e:
            self.show_error(f"Could not write {path}: {e.strerror or e}")
            return
        self.statusBar().showMessage(f"Saved session {path}", 5000)

    def load_session(self, path: str | Path) -> None:
        """Open a saved session: its model (if another one) and every control's state."""
        try:
            session = json.loads(Path(path).read_text())
            if not isinstance(session, dict) or session.get("format") != SESSION_FORMAT:
                raise ValueError("not a Latent Explorer session file")
            if session.get("version") != SESSION_VERSION:
                raise ValueError(f"session version {session.get('version')} is not supported")
            RenderRequest.from_dict(session["request"])
            if session.get("walk") is not None:
                Walk.from_dict(session["walk"])
            if not isinstance(session.get("compare_with"), (str, type(None))):
                raise ValueError("'compare_with' is not a file name")
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.show_error(f"Could not open the session {path}: {e}")
            return
        model = session.get("model")
        if model and (self.info is None or model != self.info.path):
            self.open_model(model, session=session)
        else:
            self._apply_session(session)
            self._submit()

    def _apply_session(self, session: dict) -> None:
        request = RenderRequest.from_dict(session["request"])
        self._set_latents(request)
        for panel in self.panels:
            panel.read(request)
        x, y = session.get("latent") or (request.seeds[0][0], 0)
        with QSignalBlocker(self.latent):
            self.latent.set_xy(float(x), float(y))
        if session.get("walk") is not None:
            self.timeline.set_walk(Walk.from_dict(session["walk"]))
        if "compare_with" in session:  # sessions from before it was saved leave the comparison as it is
            self._apply_companion(session["compare_with"])

    def _apply_companion(self, path: str | None) -> None:
        companion = self.spectrum.companion
        if path is None and companion is not None:
            self.spectrum.clear_companion()
        elif path is not None and (companion is None or companion.path != path):
            self.spectrum.open_companion(path)

    def _last_session_for(self, model_path: str) -> dict | None:
        try:
            session = json.loads(self.settings.value("session/last") or "null")
        except ValueError:
            return None
        if isinstance(session, dict) and session.get("model") == model_path and "request" in session:
            return session
        return None

    # -- dialogs, drops and closing --------------------------------------------------------------

    def _on_open_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a checkpoint", "", CHECKPOINT_FILTER)
        if path:
            self.open_model(path)

    def _on_save_image_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the picture", "picture.png", "PNG images (*.png)")
        if path:
            self.save_image(path)

    def _on_open_session_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a session", "", SESSION_FILTER)
        if path:
            self.load_session(path)

    def _on_save_session_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the session", "session.json", SESSION_FILTER)
        if path:
            self.save_session(path)

    def dragEnterEvent(self, event) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        if paths[0].lower().endswith(".json"):
            self.load_session(paths[0])
        else:
            self.open_model(paths[0])

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._default_layout:
            self._default_layout = False
            scroll = self._scroll
            width = (scroll.widget().minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width()
                     + 2 * scroll.frameWidth())
            scroll.setMinimumWidth(width)
            self.resizeDocks([self.controls_dock], [width], Qt.Orientation.Horizontal)
            self.resizeDocks([self.perf_dock], [200], Qt.Orientation.Vertical)

    def closeEvent(self, event) -> None:
        self.settings.set_value("window/geometry", self.saveGeometry())
        self.settings.set_value("window/state", self.saveState())
        if self.info is not None:
            self.settings.set_value("session/last", json.dumps(self.session()))
        self.settings.sync()
        self.engine.close()
        super().closeEvent(event)
