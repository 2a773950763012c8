"""Live performance: render time per frame and frames per second, plus the device and kernel state."""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

HISTORY = 200     # frames kept in the plots
REFRESH_MS = 200  # redraw at most this often: repainting plots per frame costs the GUI thread more than the frame


class PerfPanel(QWidget):
    """Two small plots (frame time in ms, fps) fed by every rendered frame, redrawn a few times a second."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._times: deque[float] = deque(maxlen=HISTORY)     # render time, ms
        self._fps: deque[float] = deque(maxlen=HISTORY)
        self._arrivals: deque[float] = deque(maxlen=HISTORY)  # when frames reached the GUI
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setMinimumHeight(120)
        self._time_plot = self.plots.addPlot(row=0, col=0)
        self._time_plot.setLabel("left", "frame ms")
        self._fps_plot = self.plots.addPlot(row=1, col=0)
        self._fps_plot.setLabel("left", "fps")
        for plot in (self._time_plot, self._fps_plot):
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.showGrid(y=True, alpha=0.3)
            plot.hideAxis("bottom")
            plot.getAxis("left").setSIPrefixEnableRanges(())  # plain numbers, no "k"/"m" prefixes
            plot.getAxis("left").setWidth(48)
            plot.enableAutoRange(y=False)
        self._time_curve = self._time_plot.plot(pen=pg.mkPen("#4fc3f7", width=1.5))
        self._fps_curve = self._fps_plot.plot(pen=pg.mkPen("#aed581", width=1.5))
        self.state = QLabel("device: –   kernels: –")
        self.summary = QLabel("no frames yet")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.state)
        lay.addWidget(self.summary)
        lay.addWidget(self.plots)
        self._last_timings: dict[str, float] = {}
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(REFRESH_MS)
        self._refresh.timeout.connect(self._on_refresh_timeout)

    def set_engine_state(self, device: str, kernels: str) -> None:
        self.state.setText(f"device: {device}   kernels: {kernels}")

    def add_frame(self, timings: dict[str, float], now: float | None = None) -> None:
        """Record one frame's timings (seconds); fps is measured from arrival times over the last second."""
        now = time.perf_counter() if now is None else now
        self._arrivals.append(now)
        recent = [t for t in self._arrivals if now - t <= 1.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
        self._times.append(timings.get("total", 0.0) * 1000)
        self._fps.append(fps)
        self._last_timings = timings
        if not self._refresh.isActive():
            self._refresh.start()

    def _on_refresh_timeout(self) -> None:
        for plot, curve, values in ((self._time_plot, self._time_curve, self._times),
                                    (self._fps_plot, self._fps_curve, self._fps)):
            data = np.asarray(values)
            curve.setData(data)
            # From zero, so that a steady frame time reads as steady and not as noise around its value.
            plot.setYRange(0, max(1.0, float(data.max())) * 1.15, padding=0)
        parts = ", ".join(f"{k} {v * 1000:.1f}" for k, v in self._last_timings.items() if k != "total")
        self.summary.setText(f"{self._times[-1]:.1f} ms/frame ({parts} ms), {self._fps[-1]:.1f} fps shown")

    def frame_count(self) -> int:
        return len(self._times)
