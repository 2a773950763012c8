"""The Spectrum dock: the radial power spectrum of the layer on show (when the layer view's FFT is on) and,
once a second model is opened with "Compare with…", both models' 2-D power spectra on one colour scale
beside their radial profiles overlaid, for the request on show (its layer when the layer view is on).

The second model lives on the engine thread (`EngineBridge.load_companion`). A comparison is asked for
after each frame only while this dock is on screen (`set_on_screen`), and the engine runs it when no render waits, so
comparing never slows the picture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QMenu, QToolButton, QVBoxLayout, QWidget

from ..engine.spectrum import model_label
from .panels import CHECKPOINT_FILTER

COLORS = ("#ffb74d", "#4fc3f7")  # the model on show, the second model
MAX_SHOWN = 512  # samples per side of a spectrum as shown
DB_RANGE = 80.0  # the colour scale spans the brighter spectrum's peak down to this many dB below it
FFT_HINT = "Turn on FFT in the Layers panel to see a layer's spectrum, or compare with a second model"


def _spectrum_view(layout: pg.GraphicsLayoutWidget, col: int) -> tuple[pg.PlotItem, pg.ImageItem]:
    """A square plot in cycles per pixel holding one spectrum image."""
    view = layout.addPlot(row=0, col=col)
    view.setAspectLocked(True)
    view.hideButtons()
    view.setMenuEnabled(False)
    view.setMouseEnabled(False, False)
    view.setLabel("bottom", "cycles / pixel")
    ticks = [[(f, f"{f:g}") for f in (-0.5, -0.25, 0, 0.25, 0.5)]]
    for axis in ("bottom", "left"):
        view.getAxis(axis).setTicks(ticks)
        view.getAxis(axis).setSIPrefixEnableRanges(())  # plain numbers, no "(x0.001)"
    item = pg.ImageItem(axisOrder="row-major")
    view.addItem(item)
    view.setRange(xRange=(-0.5, 0.5), yRange=(-0.5, 0.5), padding=0)
    return view, item


def _show_spectrum(item: pg.ImageItem, spectrum, levels: tuple[float, float]) -> None:
    """Place a centred spectrum at its frequencies, so spectra of different sizes line up.

    A big one is shown with every k-th sample only: the view is a few hundred pixels wide, and colouring
    millions of pixels would hold up the GUI thread."""
    fx, fy = spectrum.freq_x, spectrum.freq_y
    dx, dy = fx[1] - fx[0], fy[1] - fy[0]
    step = max(1, max(len(fx), len(fy)) // MAX_SHOWN)
    item.setImage(spectrum.power_db[::step, ::step], levels=levels)
    item.setRect(QRectF(fx[0] - dx / 2, fy[0] - dy / 2, len(fx) * dx, len(fy) * dy))


def _plot_profile(curve: pg.PlotDataItem, profile: tuple[np.ndarray, np.ndarray] | None) -> None:
    """A radial profile (frequencies, dB) as a curve, empty rings left out; None clears the curve."""
    if profile is None:
        curve.setData([], [])
        return
    freq, db = profile
    ok = np.isfinite(db)
    curve.setData(freq[ok], db[ok])


class SpectrumPlot(QWidget):
    """Mean power (dB) in rings of frequency, from zero to Nyquist (0.5 cycles per pixel), of one or two models.

    `engine` is an `EngineBridge`; `recent` lists recent checkpoints and `bundled` the bundled models
    (entries with `label`, `path()` and `prepare`) offered by "Compare with…".
    """

    failed = Signal(str)  # the second model could not be loaded or compared: a message for the window

    def __init__(self, engine, recent: Callable[[], list[str]] = list, bundled: Sequence = (), parent=None):
        super().__init__(parent)
        self.engine = engine
        self._recent = recent
        self._bundled = tuple(bundled)
        self.profile: tuple[np.ndarray, np.ndarray] | None = None  # of the layer FFT on show
        self.companion = None           # ModelInfo of the second model once loaded
        self.comparison = None          # the last `Comparison` shown
        self._loading: str | None = None  # file name of the second model being loaded
        self._companion_stamp = 0       # stamp of the last load or clear of the second model
        self._request = None            # request of the frame on show
        self._on_screen = False         # see `set_on_screen`

        self.note = QLabel(FFT_HINT)
        self.note.setWordWrap(True)
        self.compare_button = QToolButton()
        self.compare_button.setText("Compare with…")
        self.compare_button.setToolTip("Show the spectra of a second model beside this one's")
        self.compare_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.compare_menu = QMenu(self.compare_button)
        self.compare_menu.aboutToShow.connect(self._fill_menu)
        self.compare_button.setMenu(self.compare_menu)
        self.clear_button = QToolButton()
        self.clear_button.setText("✕")
        self.clear_button.setToolTip("Close the second model")
        self.clear_button.clicked.connect(self.clear_companion)
        top = QHBoxLayout()
        top.addWidget(self.note, 1)
        top.addStretch()
        top.addWidget(self.compare_button)
        top.addWidget(self.clear_button)

        self.images = pg.GraphicsLayoutWidget()
        self.images.setBackground("#202020")
        self.views, self.items = zip(*(_spectrum_view(self.images, col) for col in range(2)), strict=True)
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get("inferno"), label="dB", interactive=False,
                                        colorMapMenu=False)
        self.colorbar.setImageItem(list(self.items))
        self.images.addItem(self.colorbar, row=0, col=2)

        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(120)
        self.plot.setLabel("bottom", "cycles / pixel")
        self.plot.setLabel("left", "dB")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setXRange(0, 0.5)
        for axis in ("bottom", "left"):
            self.plot.getAxis(axis).setSIPrefixEnableRanges(())  # plain numbers, no "m" prefix
        self.plot.hideButtons()
        self.curve = self.plot.plot(pen=pg.mkPen(COLORS[0], width=1.5))
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.compare_curves = [self.plot.plot(pen=pg.mkPen(color, width=1.5)) for color in COLORS]
        body = QHBoxLayout()
        body.addWidget(self.images, 1)
        body.addWidget(self.plot, 1)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addLayout(body, 1)
        engine.companion_loaded.connect(self._on_companion_loaded, Qt.ConnectionType.QueuedConnection)
        engine.spectra_compared.connect(self._on_spectra_compared, Qt.ConnectionType.QueuedConnection)
        engine.job_failed.connect(self._on_job_failed, Qt.ConnectionType.QueuedConnection)
        self._show_state()

    # -- the model on show ---------------------------------------------------------------------

    def show_frame(self, event) -> None:
        """A frame is on the canvas: plot its layer spectrum, and compare its request if a second model is open."""
        self._request = event.request
        self.show_profile(event.profile)
        self._ask_comparison()

    def show_profile(self, profile: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Plot (frequencies, dB), or clear the plot for None."""
        self.profile = profile
        _plot_profile(self.curve, profile)
        self._show_state()

    # -- the second model ----------------------------------------------------------------------

    def open_companion(self, path: str | Path, prepare: Callable[[], object] | None = None) -> None:
        """Load a second model to compare with, on the engine thread; the one before stays until it is ready."""
        self._loading = Path(path).name
        self._companion_stamp = self.engine.load_companion(str(path), prepare=prepare)
        self._show_state()

    def clear_companion(self) -> None:
        """Close the second model: back to the spectrum of the model on show alone."""
        self._companion_stamp = self.engine.load_companion(None)
        self.companion = self._loading = None
        self._clear_comparison()

    def _fill_menu(self) -> None:
        menu = self.compare_menu
        menu.clear()
        menu.addAction("Open a checkpoint…", self._on_open_triggered)
        recent = self._recent()
        if recent:
            menu.addSection("Recent")
            for path in recent:
                menu.addAction(path, lambda p=path: self.open_companion(p))
        if self._bundled:
            menu.addSection("Bundled")
            for entry in self._bundled:
                menu.addAction(entry.label, lambda e=entry: self.open_companion(e.path(), prepare=e.prepare))

    def _on_open_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Compare with a checkpoint", "", CHECKPOINT_FILTER)
        if path:
            self.open_companion(path)

    def _on_companion_loaded(self, event) -> None:
        if event.stamp != self._companion_stamp:
            return  # replaced or closed meanwhile
        self.companion, self._loading = event.info, None
        self._clear_comparison()
        self._ask_comparison()

    def _on_job_failed(self, event) -> None:
        if event.job != "compare" or event.stamp < self._companion_stamp:
            return
        if event.stamp == self._companion_stamp:  # the load: the second model before (if any) stays
            self._loading = None
            self._show_state()
            self.failed.emit(f"Could not load the model to compare with: {event.message}")
        else:
            self.failed.emit(f"Could not compare the spectra: {event.message}")

    # -- comparisons ---------------------------------------------------------------------------

    def set_on_screen(self, on: bool) -> None:
        """Whether the dock can be seen (its `visibilityChanged`: a tab behind another is not): comparisons
        are asked for only then."""
        self._on_screen = on
        self._ask_comparison()  # frames went by uncompared while it was hidden

    def _ask_comparison(self) -> None:
        if self.companion is not None and self._request is not None and self._on_screen:
            self.engine.compare(self._request)

    def _clear_comparison(self) -> None:
        self.comparison = None
        self.legend.clear()
        for item, curve in zip(self.items, self.compare_curves, strict=True):
            item.clear()
            _plot_profile(curve, None)
        self._show_state()

    def _on_spectra_compared(self, event) -> None:
        if self.companion is None or event.stamp < self._companion_stamp:
            return  # of a second model since closed or replaced
        self.comparison = event.comparison
        sides = (event.comparison.first, event.comparison.second)
        shown = [s.spectrum.power_db for s in sides if s is not None]
        top = max(float(db.max()) for db in shown)
        levels = (max(min(float(db.min()) for db in shown), top - DB_RANGE), top)
        self.colorbar.setLevels(levels)
        self.legend.clear()
        for side, view, item, curve in zip(sides, self.views, self.items, self.compare_curves, strict=True):
            _plot_profile(curve, None if side is None else side.profile)
            if side is None:
                item.clear()
                continue
            _show_spectrum(item, side.spectrum, levels)
            view.setTitle(f"{side.label}<br>{side.source}", size="9pt")
            self.legend.addItem(curve, side.label)
        if event.comparison.second is None:
            self.views[1].setTitle(f"{model_label(self.companion)}<br>no layer at this resolution", size="9pt")
        # The titles set the width the two spectra need: take it, and leave the rest to the profiles.
        self.images.ci.layout.invalidate()  # else the size hint is the one from before the new titles
        self.images.setMinimumWidth(int(self.images.ci.effectiveSizeHint(Qt.SizeHint.MinimumSize).width()) + 2)
        self._show_state()

    def _show_state(self) -> None:
        """Show what is compared (or loading), the notes of the last comparison, and the plots that apply."""
        comparing = self.companion is not None
        notes = list(self.comparison.notes) if comparing and self.comparison is not None else []
        if self._loading:
            notes.insert(0, f"Loading {self._loading} to compare…")
        elif not comparing and self.profile is None:
            notes.append(FFT_HINT)
        self.note.setText("; ".join(notes))
        self.note.setVisible(bool(notes))
        self.images.setVisible(comparing)
        self.curve.setVisible(not comparing)
        for curve in self.compare_curves:
            curve.setVisible(comparing)
        self.legend.setVisible(comparing)
        self.clear_button.setEnabled(comparing or self._loading is not None)
