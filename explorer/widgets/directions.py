"""The directions dock: find semantic directions in W (PCA / SeFa) as a job, move along them with
sliders (in units of each direction's σ, on chosen layers), load directions from files, export a
direction sheet. The sliders write the request's `edits`."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..engine.directions import file_direction, find_directions, save_direction_sheet
from ..engine.grid import PRESETS, layer_presets, parse_layers
from ..engine.render import DirectionEdit
from .jobs import JobProgressBar
from .panels import Panel, _row

TICKS_PER_SIGMA = 10  # slider steps per σ: the slider runs over ±3σ in steps of 0.1σ
EXTENT_SIGMA = 3
DIRECTION_FILTER = "Directions (*.npy *.pt *.pth);;All files (*)"


class DirectionRow(QWidget):
    """One direction: its name, a slider in σ, and the layers it moves."""

    changed = Signal()

    def __init__(self, name: str, vector, sigma: float, layers: list[int] | None, info, parent=None):
        super().__init__(parent)
        self.vector = np.asarray(vector, dtype=np.float64)
        self.sigma = float(sigma)
        self._info = info
        self.name = QLineEdit(name)
        self.name.setMaximumWidth(70)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(-EXTENT_SIGMA * TICKS_PER_SIGMA, EXTENT_SIGMA * TICKS_PER_SIGMA)
        self.slider.setPageStep(TICKS_PER_SIGMA)
        self.value = QLabel()
        self.value.setMinimumWidth(44)
        self.layers = QComboBox()
        self.layers.addItem("all")
        if info.num_ws >= 3:
            self.layers.addItems(PRESETS)
        self.layers.addItem("custom")
        self.custom = QLineEdit()
        self.custom.setPlaceholderText("e.g. 0-3,6")
        self.custom.setMaximumWidth(60)
        if layers is not None and sorted(layers) != list(range(info.num_ws)):
            self.layers.setCurrentText("custom")
            self.custom.setText(_layer_text(layers))
        self.custom.setEnabled(self.layers.currentText() == "custom")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.name)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.value)
        lay.addWidget(self.layers)
        lay.addWidget(self.custom)
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.layers.currentIndexChanged.connect(self._on_layers_changed)
        self.custom.editingFinished.connect(self.changed)
        self.name.editingFinished.connect(self.changed)
        self._show_value()

    @property
    def amount(self) -> float:
        """The move in W units: the slider's σ multiple times σ."""
        return self.slider.value() / TICKS_PER_SIGMA * self.sigma

    def layer_indices(self) -> list[int] | None:
        """The ws this direction moves (None: all); raises ValueError for a bad custom list."""
        choice = self.layers.currentText()
        if choice == "all":
            return None
        if choice == "custom":
            return parse_layers(self.custom.text() or "all", self._info)
        return layer_presets(self._info.ws_resolutions)[choice]

    def edit(self) -> DirectionEdit:
        try:
            layers = self.layer_indices()
        except ValueError:
            layers = None
            self.custom.setStyleSheet("color: #e57373")
        else:
            self.custom.setStyleSheet("")
        return DirectionEdit(direction=self.vector.tolist(), amount=self.amount, layers=layers,
                             name=self.name.text())

    def set_amount(self, amount: float) -> None:
        with QSignalBlocker(self.slider):
            self.slider.setValue(round(amount / self.sigma * TICKS_PER_SIGMA) if self.sigma else 0)
        self._show_value()

    def _show_value(self) -> None:
        self.value.setText(f"{self.slider.value() / TICKS_PER_SIGMA:+.1f}σ")

    def _on_slider_value_changed(self, _value: int) -> None:
        self._show_value()
        self.changed.emit()

    def _on_layers_changed(self, _index: int) -> None:
        self.custom.setEnabled(self.layers.currentText() == "custom")
        self.changed.emit()


def _layer_text(layers) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    layers, parts, i = sorted(set(layers)), [], 0
    while i < len(layers):
        j = i
        while j + 1 < len(layers) and layers[j + 1] == layers[j] + 1:
            j += 1
        parts.append(str(layers[i]) if i == j else f"{layers[i]}-{layers[j]}")
        i = j + 1
    return ",".join(parts)


class DirectionsPanel(Panel):
    """Finds directions as a job and turns sliders into the request's edits."""

    def __init__(self, jobs, parent=None):
        super().__init__("", parent)  # the dock's title names it
        self.jobs = jobs
        self.info = None
        self.directions = None  # the last Directions found (for the sheet)
        self._request = None    # the request last written: the sheet's base
        self.rows: list[DirectionRow] = []
        self.method = QComboBox()
        self.method.addItem("PCA (GANSpace)", "pca")
        self.method.addItem("SeFa (closed form)", "sefa")
        self.samples = QSpinBox()
        self.samples.setRange(100, 1_000_000)
        self.samples.setSingleStep(1000)
        self.samples.setValue(10_000)
        self.samples.setToolTip("Mapped latents behind PCA and every σ (cached per model)")
        self.sefa_layers = QLineEdit("all")
        self.sefa_layers.setToolTip("The ws whose style affines SeFa factorises: all, coarse, middle, fine, 0-3,…")
        self.top = QSpinBox()
        self.top.setRange(1, 20)
        self.top.setValue(5)
        self.compute = QPushButton("Compute")
        self.progress = JobProgressBar()
        self.load = QPushButton("Load direction…")
        self.sheet = QPushButton("Export sheet…")
        self.sheet.setEnabled(False)
        self.reset = QPushButton("Reset")
        self.reset.setToolTip("All sliders back to 0")
        self.rows_box = QWidget()
        self.rows_layout = QVBoxLayout(self.rows_box)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.rows_box)
        scroll.setMinimumHeight(120)
        form = QFormLayout()
        form.addRow("Method", _row(self.method, self.compute))
        form.addRow("Samples", _row(self.samples, QLabel("Top"), self.top))
        form.addRow("SeFa layers", self.sefa_layers)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.progress)
        lay.addWidget(scroll, 1)
        lay.addWidget(_row(self.load, self.sheet, self.reset))
        self.method.currentIndexChanged.connect(self._on_method_changed)
        self.compute.clicked.connect(self._on_compute_clicked)
        self.load.clicked.connect(self._on_load_clicked)
        self.sheet.clicked.connect(self._on_sheet_clicked)
        self.reset.clicked.connect(self._on_reset_clicked)
        self._on_method_changed(0)

    # -- the panel protocol ------------------------------------------------------------------------

    def configure(self, info) -> None:
        self.info = info
        self.directions = None
        self.sheet.setEnabled(False)
        self._set_rows([])
        sefa = self.method.model().item(1)
        sefa.setEnabled(info.family != "progan")
        if info.family == "progan":
            self.method.setCurrentIndex(0)

    def write(self, request) -> None:
        self._request = request
        request.edits = [row.edit() for row in self.rows if row.slider.value() != 0]

    def read(self, request) -> None:
        for row in self.rows:
            row.set_amount(0.0)
        for edit in request.edits:
            row = next((r for r in self.rows if r.name.text() == edit.name
                        and np.array_equal(r.vector, np.asarray(edit.direction))), None)
            if row is None:  # an edit from elsewhere (a session): its own amount is one step
                row = self._add_row(edit.name or f"edit {len(self.rows)}", edit.direction, abs(edit.amount) or 1.0,
                                    edit.layers)
            row.set_amount(edit.amount)

    # -- rows ---------------------------------------------------------------------------------------

    def _add_row(self, name: str, vector, sigma: float, layers) -> DirectionRow:
        row = DirectionRow(name, vector, sigma, layers, self.info)
        row.changed.connect(self.changed)
        self.rows.append(row)
        self.rows_layout.insertWidget(self.rows_layout.count() - 1, row)
        return row

    def _set_rows(self, rows: list[tuple]) -> None:
        for row in self.rows:
            self.rows_layout.removeWidget(row)
            row.deleteLater()
        self.rows = []
        for spec in rows:
            self._add_row(*spec)

    def set_directions(self, directions) -> None:
        """Sliders for the strongest directions found (replacing the previous ones)."""
        top = directions.top(self.top.value())
        self.directions = top
        layers = list(top.layers)
        self._set_rows([(top.name(i), top.vectors[i], float(top.sigma[i]), layers) for i in range(len(top.values))])
        self.sheet.setEnabled(len(top.values) > 0)
        self.changed.emit()

    # -- slots ----------------------------------------------------------------------------------------

    def _on_method_changed(self, _index: int) -> None:
        self.sefa_layers.setEnabled(self.method.currentData() == "sefa")

    def _on_compute_clicked(self) -> None:
        if self.info is None:
            return
        method = self.method.currentData()
        kwargs = {"samples": self.samples.value()}
        if method == "sefa":
            try:
                kwargs["layers"] = parse_layers(self.sefa_layers.text() or "all", self.info)
            except ValueError as e:
                self.progress.finish(str(e))
                return
        self.jobs.start(find_directions, method, title=f"Directions ({method.upper()})", bar=self.progress,
                        done=self._on_directions_found, **kwargs)

    def _on_directions_found(self, event) -> None:
        self.set_directions(event.result)

    def load_file(self, path: str) -> int:
        """Load a direction file as a job; its slider appears when σ is known. Returns the job's stamp."""
        return self.jobs.start(file_direction, path, title="Load direction", bar=self.progress,
                               done=lambda e, p=path: self._on_file_loaded(p, e), samples=self.samples.value())

    def _on_file_loaded(self, path: str, event) -> None:
        vector, sigma = event.result
        name = path.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
        self._add_row(name, vector, sigma or 1.0, None)

    def _on_load_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a direction", "", DIRECTION_FILTER)
        if path:
            self.load_file(path)

    def export_sheet(self, path: str, request, seeds=(0, 1, 2)) -> int:
        """Render and write a direction sheet of the directions found, as a job; returns its stamp."""
        return self.jobs.start(save_direction_sheet, self.directions, path, list(seeds), title="Direction sheet",
                               bar=self.progress, top=len(self.directions.values), base=request)

    def _on_sheet_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export a direction sheet", "directions.png", "PNG (*.png)")
        if path:
            self.export_sheet(path, self._request)

    def _on_reset_clicked(self) -> None:
        for row in self.rows:
            row.set_amount(0.0)
        self.changed.emit()
