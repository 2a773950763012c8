"""The equivariance dock: EQ-T / EQ-T frac / EQ-R in dB (jobs), the texture-sticking average, and the
diff of the untransformed picture against the plain one for the current translate/rotate."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..engine.equivariance import METRIC_LABELS, compute_eq
from ..engine.grid import save_png
from ..engine.views import request_diff, request_sticking
from .jobs import JobProgressBar
from .panels import MAX_SEED, _row


class _Picture(pg.GraphicsLayoutWidget):
    """A small picture with locked aspect."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("#202020")
        self.setFixedHeight(160)
        self.view = self.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.item)
        self.image = None

    def show_image(self, image) -> None:
        self.image = image
        self.item.setImage(image, autoLevels=False, levels=(0, 255))
        self.view.setRange(QRectF(0, 0, image.shape[1], image.shape[0]), padding=0)


class EquivariancePanel(QWidget):
    """Metrics, texture sticking and the untransform diff; greyed out without an input transform."""

    def __init__(self, jobs, current_request, parent=None):
        super().__init__(parent)
        self.jobs = jobs
        self._current_request = current_request  # () -> the window's request
        self.results: dict[str, float] = {}      # metric label -> PSNR dB
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.hide()

        # Metrics.
        self.metric_choice = QComboBox()
        for key, label in METRIC_LABELS.items():
            self.metric_choice.addItem(label, key)
        self.samples = QSpinBox()
        self.samples.setRange(1, 100_000)
        self.samples.setValue(64)
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.compute = QPushButton("Compute")
        self.result_label = QLabel("no results yet")
        self.result_label.setWordWrap(True)
        self.eq_progress = JobProgressBar()
        eq_box = QGroupBox("Equivariance metrics")
        form = QFormLayout(eq_box)
        form.addRow("Metric", _row(self.metric_choice, self.compute))
        form.addRow("Samples", _row(self.samples, QLabel("Seed"), self.seed))
        form.addRow(self.eq_progress)
        form.addRow(self.result_label)

        # Texture sticking.
        self.frames = QSpinBox()
        self.frames.setRange(2, 1000)
        self.frames.setValue(32)
        self.radius = QDoubleSpinBox()
        self.radius.setRange(0.0, 5.0)
        self.radius.setSingleStep(0.05)
        self.radius.setValue(0.2)
        self.radius.setToolTip("Step size of the latent walk in z")
        self.translate = QDoubleSpinBox()
        self.translate.setRange(0.0, 2.0)
        self.translate.setSingleStep(0.05)
        self.translate.setToolTip("Translate the input by up to this many widths instead of walking (StyleGAN3)")
        self.untransform_frames = QCheckBox("Untransform frames")
        self.sticking_compute = QPushButton("Compute")
        self.sticking_export = QPushButton("Export PNG…")
        self.sticking_export.setEnabled(False)
        self.sticking_progress = JobProgressBar()
        self.sticking_view = _Picture()
        sticking_box = QGroupBox("Texture sticking")
        form = QFormLayout(sticking_box)
        form.addRow("Frames", _row(self.frames, QLabel("Radius"), self.radius))
        form.addRow("Translate", _row(self.translate, self.untransform_frames))
        form.addRow("", _row(self.sticking_compute, self.sticking_export))
        form.addRow(self.sticking_progress)
        form.addRow(self.sticking_view)

        # Diff.
        self.diff_compute = QPushButton("Compare")
        self.diff_compute.setToolTip("Render with and without the current translate/rotate, undo it, compare")
        self.diff_label = QLabel("transformed-then-untransformed vs plain")
        self.diff_label.setWordWrap(True)
        self.diff_progress = JobProgressBar()
        self.diff_view = _Picture()
        diff_box = QGroupBox("Untransform diff")
        form = QFormLayout(diff_box)
        form.addRow(self.diff_compute, self.diff_label)
        form.addRow(self.diff_progress)
        form.addRow(self.diff_view)

        lay = QVBoxLayout(self)
        lay.addWidget(self.note)
        lay.addWidget(eq_box)
        lay.addWidget(sticking_box)
        lay.addWidget(diff_box)
        lay.addStretch(1)
        self._transform_widgets = (eq_box, diff_box, self.translate, self.untransform_frames)
        self.compute.clicked.connect(self._on_compute_clicked)
        self.sticking_compute.clicked.connect(self._on_sticking_compute_clicked)
        self.sticking_export.clicked.connect(self._on_sticking_export_clicked)
        self.diff_compute.clicked.connect(self._on_diff_compute_clicked)

    def configure(self, info) -> None:
        usable = info.has_input_transform and info.c_dim == 0
        for w in self._transform_widgets:
            w.setEnabled(usable)
        if not info.has_input_transform:
            text = (f"a {info.family} model has no input transform: the equivariance metrics and the "
                    "untransform diff need StyleGAN3")
        elif info.c_dim:
            text = "the equivariance metrics support unconditional models only"
        else:
            text = ""
        self.note.setText(text)
        self.note.setVisible(bool(text))

    # -- jobs ---------------------------------------------------------------------------------------

    def start_metric(self) -> int:
        metric = self.metric_choice.currentData()
        return self.jobs.start(compute_eq, metric, title=METRIC_LABELS[metric], bar=self.eq_progress,
                               done=self._on_metric_computed, num_samples=self.samples.value(),
                               seed=self.seed.value())

    def start_sticking(self) -> int:
        return self.jobs.start(request_sticking, self._current_request(), title="Texture sticking",
                               bar=self.sticking_progress, done=self._on_sticking_computed,
                               num_frames=self.frames.value(), radius=self.radius.value(),
                               translate=self.translate.value(),
                               untransform_frames=self.untransform_frames.isChecked())

    def start_diff(self) -> int:
        return self.jobs.start(request_diff, self._current_request(), title="Untransform diff",
                               bar=self.diff_progress, done=self._on_diff_computed)

    def _on_metric_computed(self, event) -> None:
        result = event.result
        self.results[result.label] = result.psnr_db
        self.result_label.setText("<br>".join(f"<b>{label}</b>: {_db(v)}" for label, v in self.results.items())
                                  + f"<br>({result.num_samples} samples)")

    def _on_sticking_computed(self, event) -> None:
        self.sticking_view.show_image(event.result)
        self.sticking_export.setEnabled(True)

    def _on_diff_computed(self, event) -> None:
        self.diff_view.show_image(event.result.heatmap)
        self.diff_label.setText(f"PSNR {_db(event.result.psnr_db)} (black: no error, grey: not compared)")

    def _on_compute_clicked(self) -> None:
        self.start_metric()

    def _on_sticking_compute_clicked(self) -> None:
        self.start_sticking()

    def _on_diff_compute_clicked(self) -> None:
        self.start_diff()

    def _on_sticking_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the texture-sticking image", "sticking.png", "PNG (*.png)")
        if path:
            try:
                save_png(self.sticking_view.image, path)
            except OSError as e:
                self.sticking_progress.finish(f"Could not write {path}: {e}")


def _db(value: float) -> str:
    return "∞ dB (identical)" if math.isinf(value) else f"{value:.2f} dB"
