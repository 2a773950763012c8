"""The timeline dock: keyframes (pictures at times) make a walk; a scrubber previews any moment of it
through the render mailbox; "Export video…" renders it to MP4, GIF or PNG frames as a job."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..engine.interpolate import EASINGS, Keyframe, Walk
from ..engine.video import VideoSettings, export_video
from ..engine.worker import WalkFrame
from .jobs import JobProgressBar
from .panels import _row

SCRUB_STEPS = 1000  # scrubber positions over the walk
FORMATS = (("MP4 (H.264)", "mp4", ".mp4"), ("GIF", "gif", ".gif"), ("PNG frames (folder)", "png", ""))


def describe(request) -> str:
    """A keyframe's picture in a few words."""
    if request.ws is not None:
        what = "explicit W"
    elif len(request.seeds) == 1:
        what = f"seed {request.seeds[0][0]}"
    else:
        what = "blend " + "+".join(str(s) for s, _ in request.seeds)
    extras = [f"ψ {request.truncation_psi:.2f}"] if request.truncation_psi != 1 else []
    extras += [f"mix {request.mix_seed}"] if request.mix_layers else []
    extras += [f"{len(request.edits)} edit(s)"] if request.edits else []
    return what + (f" ({', '.join(extras)})" if extras else "")


def shifted_walk(walk: Walk, offset: int) -> Walk:
    """The walk with every keyframe's seeds moved by `offset`: a neighbour for a grid video."""
    keys = [Keyframe(dataclasses.replace(k.request, seeds=[(s + offset, w) for s, w in k.request.seeds]), k.time)
            for k in walk.keyframes]
    return dataclasses.replace(walk, keyframes=keys)


class ExportDialog(QDialog):
    """Where and how to write the video: format, size, fps, length, quality and a grid of walks."""

    def __init__(self, resolution: int, length: float, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export video")
        self.format = QComboBox()
        for label, fmt, _suffix in FORMATS:
            self.format.addItem(label, fmt)
        self.path = QLineEdit(str(Path.cwd() / "walk.mp4"))
        browse = QPushButton("Browse…")
        self.frame_width, self.frame_height = QSpinBox(), QSpinBox()
        for box in (self.frame_width, self.frame_height):
            box.setRange(0, 8192)
            box.setSpecialValueText("auto")
            box.setToolTip("0 (auto): the model's resolution times the grid")
        self.fps = QDoubleSpinBox()
        self.fps.setRange(1, 240)
        self.fps.setValue(30)
        self.duration = QDoubleSpinBox()
        self.duration.setRange(0, 3600)
        self.duration.setDecimals(2)
        self.duration.setSpecialValueText("walk")
        self.duration.setSuffix(" s")
        self.duration.setValue(max(length, 0.0))
        self.quality = QSpinBox()
        self.quality.setRange(1, 10)
        self.quality.setValue(8)
        self.rows, self.cols = QSpinBox(), QSpinBox()
        for box in (self.rows, self.cols):
            box.setRange(1, 8)
            box.setToolTip("A grid of walks: cell k has every keyframe's seed moved by k")
        form = QFormLayout(self)
        form.addRow("Format", self.format)
        form.addRow("File", _row(self.path, browse))
        form.addRow("Size", _row(self.frame_width, QLabel("×"), self.frame_height))
        form.addRow("Frame rate", self.fps)
        form.addRow("Duration", self.duration)
        form.addRow("Quality (MP4)", self.quality)
        form.addRow("Grid", _row(self.rows, QLabel("rows ×"), self.cols, QLabel("columns")))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        form.addRow(buttons)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        browse.clicked.connect(self._on_browse_clicked)
        self.format.currentIndexChanged.connect(self._on_format_changed)

    def settings(self) -> VideoSettings:
        size = (self.frame_width.value(), self.frame_height.value())
        return VideoSettings(fps=self.fps.value(), duration=self.duration.value() or None,
                             size=size if all(size) else None, quality=self.quality.value(),
                             grid=(self.rows.value(), self.cols.value()), format=self.format.currentData())

    def _on_format_changed(self, index: int) -> None:
        path = Path(self.path.text())
        self.path.setText(str(path.with_suffix(FORMATS[index][2])))

    def _on_browse_clicked(self) -> None:
        if self.format.currentData() == "png":
            path = QFileDialog.getExistingDirectory(self, "Folder for the frames")
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export video", self.path.text())
        if path:
            self.path.setText(path)


class TimelinePanel(QWidget):
    """Keyframes, interpolation options, a scrubber and video export."""

    frame_requested = Signal(object)  # a WalkFrame to render (the scrubber moved)

    def __init__(self, jobs, current_request, parent=None):
        super().__init__(parent)
        self.jobs = jobs
        self._current_request = current_request  # () -> the window's request
        self.info = None
        self.keyframes: list[Keyframe] = []
        self.list = QListWidget()
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.list.setMinimumHeight(70)
        self.time = QDoubleSpinBox()
        self.time.setRange(0, 3600)
        self.time.setDecimals(2)
        self.time.setSuffix(" s")
        self.time.setToolTip("Time of the next keyframe")
        self.add = QPushButton("Add current")
        self.remove = QPushButton("Remove")
        self.up, self.down = QPushButton("↑"), QPushButton("↓")
        self.space = QComboBox()
        self.space.addItem("W (linear)", "w")
        self.space.addItem("Z (slerp)", "z")
        self.easing = QComboBox()
        self.easing.addItems(list(EASINGS))
        self.loop = QCheckBox("Loop")
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setRange(0, SCRUB_STEPS)
        self.scrub_label = QLabel("0.00 s")
        self.scrub_label.setMinimumWidth(60)
        self.export = QPushButton("Export video…")
        self.progress = JobProgressBar()

        buttons = QVBoxLayout()
        for w in (self.add, self.time, self.remove, _row(self.up, self.down)):
            buttons.addWidget(w)
        buttons.addStretch(1)
        options = QFormLayout()
        options.addRow("Space", self.space)
        options.addRow("Easing", self.easing)
        options.addRow("", self.loop)
        options.addRow(self.export)
        top = QHBoxLayout()
        top.addLayout(buttons)
        top.addWidget(self.list, 1)
        top.addLayout(options)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top, 1)
        lay.addWidget(_row(QLabel("Preview"), self.scrubber, self.scrub_label))
        lay.addWidget(self.progress)

        self.add.clicked.connect(self._on_add_clicked)
        self.remove.clicked.connect(self._on_remove_clicked)
        self.up.clicked.connect(lambda: self.move_selected(-1))
        self.down.clicked.connect(lambda: self.move_selected(1))
        self.list.model().rowsMoved.connect(self._on_rows_moved)
        self.scrubber.valueChanged.connect(self._on_scrubber_value_changed)
        for box in (self.space, self.easing):
            box.currentIndexChanged.connect(self._on_options_changed)
        self.loop.toggled.connect(self._on_options_changed)
        self.export.clicked.connect(self._on_export_clicked)
        self._update_buttons()

    def configure(self, info) -> None:
        self.info = info

    # -- keyframes ------------------------------------------------------------------------------------

    def walk(self) -> Walk:
        return Walk(keyframes=[Keyframe(copy.deepcopy(k.request), k.time) for k in self.keyframes],
                    space=self.space.currentData(), easing=self.easing.currentText(), loop=self.loop.isChecked())

    def set_walk(self, walk: Walk) -> None:
        self.keyframes = [Keyframe(copy.deepcopy(k.request), k.time) for k in walk.keyframes]
        self.space.setCurrentIndex(max(self.space.findData(walk.space), 0))
        self.easing.setCurrentText(walk.easing)
        self.loop.setChecked(walk.loop)
        self._refresh_list()

    def add_keyframe(self, request, time: float | None = None) -> None:
        """Add a copy of `request` at `time` (default: the time box), in time order."""
        time = self.time.value() if time is None else time
        self.keyframes.append(Keyframe(copy.deepcopy(request), float(time)))
        self.keyframes.sort(key=lambda k: k.time)
        self.time.setValue(max(k.time for k in self.keyframes) + 1.0)
        self._refresh_list()

    def remove_keyframe(self, index: int) -> None:
        del self.keyframes[index]
        self._refresh_list()

    def move_selected(self, step: int) -> None:
        """Swap the selected keyframe's picture with its neighbour's; the times stay in place."""
        i = self.list.currentRow()
        j = i + step
        if 0 <= i < len(self.keyframes) and 0 <= j < len(self.keyframes):
            order = list(range(len(self.keyframes)))
            order[i], order[j] = j, i
            self._reorder(order)
            self.list.setCurrentRow(j)

    def _reorder(self, order: list[int]) -> None:
        times = [k.time for k in self.keyframes]
        self.keyframes = [Keyframe(self.keyframes[i].request, t) for i, t in zip(order, times, strict=True)]
        self._refresh_list()

    def _refresh_list(self) -> None:
        row = self.list.currentRow()
        self.list.clear()
        for k in self.keyframes:
            item = QListWidgetItem(f"{k.time:6.2f} s   {describe(k.request)}")
            item.setData(Qt.ItemDataRole.UserRole, id(k))
            self.list.addItem(item)
        self.list.setCurrentRow(min(row, len(self.keyframes) - 1))
        self._update_buttons()

    def _update_buttons(self) -> None:
        has = bool(self.keyframes)
        for w in (self.remove, self.up, self.down, self.scrubber, self.export):
            w.setEnabled(has)

    # -- preview and export ---------------------------------------------------------------------------

    def time_at(self, position: int) -> float:
        walk = self.walk()
        return walk.start_time + walk.length * position / SCRUB_STEPS

    def scrub_to(self, position: int) -> None:
        """Move the scrubber (and render the frame there)."""
        if self.scrubber.value() == position:
            self._on_scrubber_value_changed(position)
        else:
            self.scrubber.setValue(position)

    def start_export(self, path: str | Path, settings: VideoSettings) -> int:
        """Export the walk (or a grid of its neighbours) as a job; returns its stamp."""
        walk = self.walk()
        walks = [shifted_walk(walk, k) for k in range(settings.grid[0] * settings.grid[1])]
        return self.jobs.start(export_video, walks, str(path), settings, title="Video export", bar=self.progress)

    def _on_add_clicked(self) -> None:
        self.add_keyframe(self._current_request())

    def _on_remove_clicked(self) -> None:
        if 0 <= self.list.currentRow() < len(self.keyframes):
            self.remove_keyframe(self.list.currentRow())

    def _on_rows_moved(self, *_args) -> None:
        ids = [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]
        by_id = {id(k): i for i, k in enumerate(self.keyframes)}
        self._reorder([by_id[i] for i in ids])

    def _on_options_changed(self, *_args) -> None:
        if self.keyframes:
            self._on_scrubber_value_changed(self.scrubber.value())

    def _on_scrubber_value_changed(self, position: int) -> None:
        if not self.keyframes:
            return
        t = self.time_at(position)
        self.scrub_label.setText(f"{t:.2f} s")
        self.frame_requested.emit(WalkFrame(self.walk(), t))

    def _on_export_clicked(self) -> None:
        dialog = ExportDialog(self.info.resolution if self.info else 256, self.walk().length, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.start_export(dialog.path.text(), dialog.settings())
