"""The radial power spectrum of the layer on show (when the layer view's FFT is on)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class SpectrumPlot(QWidget):
    """Mean power (dB) in rings of frequency, from zero to Nyquist (0.5 cycles per pixel)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(120)
        self.plot.setLabel("bottom", "cycles / pixel")
        self.plot.setLabel("left", "dB")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setXRange(0, 0.5)
        for axis in ("bottom", "left"):
            self.plot.getAxis(axis).setSIPrefixEnableRanges(())  # plain numbers, no "m" prefix
        self.plot.hideButtons()
        self.curve = self.plot.plot(pen=pg.mkPen("#ffb74d", width=1.5))
        self.note = QLabel("Turn on FFT in the Layers panel to see a layer's spectrum")
        self.note.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.note)
        lay.addWidget(self.plot, 1)
        self.profile: tuple[np.ndarray, np.ndarray] | None = None

    def show_profile(self, profile: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Plot (frequencies, dB), or clear the plot for None."""
        self.profile = profile
        if profile is None:
            self.curve.setData([], [])
            self.note.show()
            return
        freq, db = profile
        ok = np.isfinite(db)
        self.curve.setData(freq[ok], db[ok])
        self.note.hide()
