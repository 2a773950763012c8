"""The style-mixing grid dock: row seeds × column seeds with chosen layers swapped, computed as a
job and shown as one picture; clicking a cell makes it the current state; export as PNG."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..engine.grid import PRESETS, cell_request, mixing_grid, parse_layers, save_png
from .jobs import JobProgressBar
from .panels import _row


def parse_seed_list(text: str) -> list[int]:
    """'1,2,5-7' -> [1, 2, 5, 6, 7]; ValueError with a message otherwise."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(f"not a seed list: {text!r} (use e.g. 1,2,5-7)") from None
        seeds += list(range(first, last + 1))
    if not seeds:
        raise ValueError("give at least one seed")
    return seeds


class MixingGridPanel(QWidget):
    """Seeds, layers, Compute, the grid (click a cell) and Export PNG."""

    cell_chosen = Signal(object)  # the RenderRequest of the clicked cell

    def __init__(self, jobs, current_request, parent=None):
        super().__init__(parent)
        self.jobs = jobs
        self._current_request = current_request  # () -> the window's request
        self.info = None
        self.grid = None           # the MixingGrid on show
        self._base = None          # the request it was computed from
        self.rows = QLineEdit("0,1,2")
        self.cols = QLineEdit("3,4,5,6")
        self.layers = QComboBox()
        self.layers.addItems([*PRESETS, "all", "custom"])
        self.custom = QLineEdit()
        self.custom.setPlaceholderText("e.g. 0-3,6")
        self.custom.setEnabled(False)
        self.compute = QPushButton("Compute")
        self.labels = QCheckBox("Labels")
        self.labels.setChecked(True)
        self.export = QPushButton("Export PNG…")
        self.export.setEnabled(False)
        self.progress = JobProgressBar()
        self.view_widget = pg.GraphicsLayoutWidget()
        self.view_widget.setBackground("#202020")
        self.view_widget.setMinimumHeight(160)
        self.view = self.view_widget.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image_item)
        form = QFormLayout()
        form.addRow("Row seeds", self.rows)
        form.addRow("Column seeds", self.cols)
        form.addRow("Layers", _row(self.layers, self.custom))
        form.addRow("", _row(self.compute, self.labels, self.export))
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.progress)
        lay.addWidget(self.view_widget, 1)
        self.layers.currentIndexChanged.connect(self._on_layers_changed)
        self.compute.clicked.connect(self._on_compute_clicked)
        self.export.clicked.connect(self._on_export_clicked)
        self.view_widget.scene().sigMouseClicked.connect(self._on_scene_clicked)

    def configure(self, info) -> None:
        self.info = info
        self.compute.setEnabled(info.num_ws >= 3)
        self.compute.setToolTip("" if info.num_ws >= 3 else f"a {info.family} model has a single w: nothing to mix")

    def start(self, base) -> int | None:
        """Compute the grid for the seeds and layers shown, on `base` (psi, class, noise, …); returns the stamp."""
        try:
            rows, cols = parse_seed_list(self.rows.text()), parse_seed_list(self.cols.text())
            text = self.custom.text() if self.layers.currentText() == "custom" else self.layers.currentText()
            layers = parse_layers(text or "all", self.info)
        except ValueError as e:
            self.progress.finish(str(e))
            return None
        self._base = base
        return self.jobs.start(mixing_grid, rows, cols, layers, title="Mixing grid", bar=self.progress,
                               done=self._on_grid_computed, base=base)

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """(row, column) of the cell under image coordinates, None on a source or outside."""
        if self.grid is None:
            return None
        h, w = self.grid.cells.shape[2:4]
        i, j = math.floor(y / h) - 1, math.floor(x / w) - 1
        if 0 <= i < len(self.grid.row_seeds) and 0 <= j < len(self.grid.col_seeds):
            return i, j
        return None

    def choose(self, i: int, j: int) -> None:
        """Make cell (i, j) the current state."""
        g = self.grid
        self.cell_chosen.emit(cell_request(self._base, g.row_seeds[i], g.col_seeds[j], g.layers))

    def save(self, path: str) -> None:
        save_png(self.grid.compose(sources=True, labels=self.labels.isChecked()), path)

    def _on_grid_computed(self, event) -> None:
        self.grid = event.result
        image = self.grid.compose(sources=True)
        self.image_item.setImage(image, autoLevels=False, levels=(0, 255))
        self.view.setRange(QRectF(0, 0, image.shape[1], image.shape[0]), padding=0)
        self.export.setEnabled(True)

    def _on_layers_changed(self, _index: int) -> None:
        self.custom.setEnabled(self.layers.currentText() == "custom")

    def _on_compute_clicked(self) -> None:
        self.start(self._current_request())

    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the grid", "grid.png", "PNG (*.png)")
        if path:
            try:
                self.save(path)
            except OSError as e:
                self.progress.finish(f"Could not write {path}: {e}")

    def _on_scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.grid is None:
            return
        p = self.view.mapSceneToView(event.scenePos())
        cell = self.cell_at(p.x(), p.y())
        if cell is not None:
            self.choose(*cell)
