"""The control panels. Each one owns some fields of the render request: `configure` adapts it to a
model, `write` puts its state into a request, `read` takes its state from one (without signals),
and `changed` says that the picture it describes has changed."""

from __future__ import annotations

import math

from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..engine.render import SEED_ROW, blend_seeds
from .controls import DragPad, RangeSlider

MAX_SEED = 2**31 - 1       # QSpinBox is 32-bit signed
ANIMATION_MS = 33          # animation tick; the engine's mailbox drops frames it cannot keep up with
DRAG_PX_PER_SEED = 200.0   # pointer travel that moves the latent by one seed
DRAG_PX_PER_UNIT = 400.0   # pointer travel that translates by one picture width
DRAG_PX_PER_DEGREE = 2.0   # pointer travel that rotates by one degree
CHECKPOINT_FILTER = "Checkpoints (*.pkl *.pt *.pth *.model);;All files (*)"  # file dialogs that open a model


def _row(*widgets) -> QWidget:
    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        lay.addWidget(w)
    return box


class Panel(QGroupBox):
    """A group of controls bound to part of the render request."""

    changed = Signal()

    def configure(self, info) -> None:
        """Adapt the controls to a newly loaded model (a `ModelInfo`)."""

    def write(self, request) -> None:
        """Put this panel's state into `request`."""

    def read(self, request) -> None:
        """Show the state of `request` in the controls, emitting nothing."""


class ModelPanel(Panel):
    """What the loaded model is."""

    def __init__(self, parent=None):
        super().__init__("Model", parent)
        self._label = QLabel("no model loaded")
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        QVBoxLayout(self).addWidget(self._label)

    def configure(self, info) -> None:
        rows = [
            ("family", info.family),
            ("resolution", f"{info.resolution}×{info.resolution}" + (" (guessed)" if info.resolution_guessed else "")),
            ("format", f"{info.source_format} ({info.source})"),
            ("latents", f"z {info.z_dim}, w {info.w_dim}, {info.num_ws} ws"),
            ("classes", str(info.c_dim) if info.c_dim else "unconditional"),
            ("file", info.path),
        ]
        rows += [("note", n) for n in info.notes]
        self._label.setText("<table>" + "".join(f"<tr><td><b>{k}</b>&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
                            + "</table>")

    def text(self) -> str:
        return self._label.text()


class LatentPanel(Panel):
    """Seed, fractional seed blending on the latent plane, animation, snap and class."""

    def __init__(self, parent=None):
        super().__init__("Latent", parent)
        self._x = self._y = 0.0
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.seed.setToolTip("Seed of the latent (Alt+Right / Alt+Left: next / previous)")
        self.position = QLabel()
        self.pad = DragPad("drag to blend neighbouring seeds")
        self.animate = QCheckBox("Animate")
        self.speed = QDoubleSpinBox()
        self.speed.setRange(-100.0, 100.0)
        self.speed.setValue(0.25)
        self.speed.setSuffix(" seeds/s")
        self.snap = QPushButton("Snap")
        self.snap.setToolTip("Round the position to the nearest whole seed")
        self.class_idx = QComboBox()
        self._timer = QTimer(self)
        self._timer.setInterval(ANIMATION_MS)

        form = QFormLayout(self)
        form.addRow("Seed", _row(self.seed, self.snap))
        form.addRow("", self.position)
        form.addRow("", self.pad)
        form.addRow(self.animate, self.speed)
        form.addRow("Class", self.class_idx)

        self.seed.valueChanged.connect(self._on_seed_value_changed)
        self.pad.dragged.connect(self._on_pad_dragged)
        self.animate.toggled.connect(self._on_animate_toggled)
        self.snap.clicked.connect(self._on_snap_clicked)
        self.class_idx.currentIndexChanged.connect(self.changed)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._show_position()

    @property
    def xy(self) -> tuple[float, float]:
        """The position on the latent plane: x counts seeds, y rows of SEED_ROW seeds."""
        return self._x, self._y

    def set_xy(self, x: float, y: float) -> None:
        self._x, self._y = x, y
        self._show_position()
        self.changed.emit()

    def drag(self, dx: float, dy: float) -> None:
        """Move on the latent plane by a pointer motion in pixels."""
        self.set_xy(self._x + dx / DRAG_PX_PER_SEED, self._y + dy / DRAG_PX_PER_SEED)

    def step(self, n: int) -> None:
        """Go to the whole seed `n` steps away."""
        self.set_xy(max(round(self._x) + n, 0), round(self._y))

    def configure(self, info) -> None:
        with QSignalBlocker(self.class_idx):
            self.class_idx.clear()
            self.class_idx.addItems([f"class {i}" for i in range(info.c_dim)] or ["(unconditional)"])
        self.class_idx.setEnabled(info.c_dim > 0)

    def write(self, request) -> None:
        request.seeds = blend_seeds(self._x, self._y)
        request.class_idx = self.class_idx.currentIndex() if self.class_idx.isEnabled() else None

    def read(self, request) -> None:
        # The heaviest seed; a blended position is restored from the session's own record of it.
        self._x, self._y = float(max(request.seeds, key=lambda sw: sw[1])[0]), 0.0
        if request.class_idx is not None and self.class_idx.isEnabled():
            with QSignalBlocker(self.class_idx):
                self.class_idx.setCurrentIndex(request.class_idx)
        self._show_position()

    def _show_position(self) -> None:
        seeds = blend_seeds(self._x, self._y)
        with QSignalBlocker(self.seed):
            self.seed.setValue(min(max(seed_at(self._x, self._y), 0), MAX_SEED))
        blend = ", ".join(f"{s}×{w:.2f}" for s, w in seeds) if len(seeds) > 1 else "one seed"
        self.position.setText(f"x {self._x:.2f}, y {self._y:.2f}: {blend}")

    def _on_seed_value_changed(self, value: int) -> None:
        self.set_xy(float(value), 0.0)

    def _on_pad_dragged(self, dx: float, dy: float, _right: bool) -> None:
        self.drag(dx, dy)

    def _on_animate_toggled(self, on: bool) -> None:
        if on:
            self._timer.start()
        else:
            self._timer.stop()

    def _on_timer_timeout(self) -> None:
        self.set_xy(max(self._x + self.speed.value() * ANIMATION_MS / 1000, 0.0), self._y)

    def _on_snap_clicked(self) -> None:
        self.set_xy(float(round(self._x)), float(round(self._y)))


def seed_at(x: float, y: float) -> int:
    """The whole seed nearest a point of the latent plane."""
    return round(x) + round(y) * SEED_ROW


class TruncationPanel(Panel):
    """Truncation ψ (−1…2) and the number of ws it applies to."""

    def __init__(self, parent=None):
        super().__init__("Truncation", parent)
        self.psi = QSlider(Qt.Orientation.Horizontal)
        self.psi.setRange(-100, 200)
        self.psi.setValue(100)
        self.psi.setPageStep(10)
        self.psi_label = QLabel()
        self.psi_label.setMinimumWidth(60)
        self.cutoff = QSlider(Qt.Orientation.Horizontal)
        self.cutoff.setRange(0, 1)
        self.cutoff.setValue(1)
        self.cutoff_label = QLabel()
        self.cutoff_label.setMinimumWidth(60)
        self._num_ws = 1
        form = QFormLayout(self)
        form.addRow("ψ", _row(self.psi, self.psi_label))
        form.addRow("Cutoff", _row(self.cutoff, self.cutoff_label))
        self.psi.valueChanged.connect(self._on_value_changed)
        self.cutoff.valueChanged.connect(self._on_value_changed)
        self._show_values()

    def configure(self, info) -> None:
        self._num_ws = info.num_ws
        with QSignalBlocker(self.cutoff):
            self.cutoff.setRange(0, info.num_ws)
            self.cutoff.setValue(info.num_ws)
        self._show_values()

    def write(self, request) -> None:
        request.truncation_psi = self.psi.value() / 100
        request.truncation_cutoff = None if self.cutoff.value() >= self._num_ws else self.cutoff.value()

    def read(self, request) -> None:
        with QSignalBlocker(self.psi), QSignalBlocker(self.cutoff):
            self.psi.setValue(round(request.truncation_psi * 100))
            cutoff = request.truncation_cutoff
            self.cutoff.setValue(self._num_ws if cutoff is None else cutoff)
        self._show_values()

    def _show_values(self) -> None:
        self.psi_label.setText(f"{self.psi.value() / 100:.2f}")
        n = self.cutoff.value()
        self.cutoff_label.setText(f"all {n}" if n >= self._num_ws else f"{n} of {self._num_ws}")

    def _on_value_changed(self, _value: int) -> None:
        self._show_values()
        self.changed.emit()


def layer_presets(num_ws: int) -> dict[str, tuple[int, int]]:
    """Coarse / middle / fine ranges of ws, split as the StyleGAN paper splits 18 ws (4 / 4 / 10)."""
    a = max(1, min(round(num_ws * 4 / 18), num_ws - 1))
    b = max(a + 1, min(round(num_ws * 8 / 18), num_ws - 1))
    if num_ws < 3:
        return {"coarse": (0, 0), "middle": (0, num_ws - 1), "fine": (num_ws - 1, num_ws - 1)}
    return {"coarse": (0, a - 1), "middle": (a, b - 1), "fine": (b, num_ws - 1)}


class MixingPanel(Panel):
    """Style mixing: the ws of a layer range taken from a second seed."""

    def __init__(self, parent=None):
        super().__init__("Style mixing", parent)
        self.enabled = QCheckBox("Mix in seed")
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.seed.setValue(1)
        self.layers = RangeSlider()
        self.layers.setToolTip("The ws taken from the mixing seed, labelled by resolution")
        self.layers_label = QLabel()
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.hide()
        self.presets: dict[str, QPushButton] = {name: QPushButton(name.capitalize())
                                                for name in ("coarse", "middle", "fine")}
        self._resolutions: tuple[int, ...] = (0,)
        form = QFormLayout(self)
        form.addRow(self.enabled, self.seed)
        form.addRow("Layers", self.layers)
        form.addRow("", self.layers_label)
        form.addRow("Presets", _row(*self.presets.values()))
        form.addRow("", self.note)
        self.enabled.toggled.connect(self._on_input_changed)
        self.seed.valueChanged.connect(self._on_input_changed)
        self.layers.range_changed.connect(self._on_input_changed)
        for name, button in self.presets.items():
            button.clicked.connect(lambda _checked=False, n=name: self.apply_preset(n))
        self._show_values()

    def configure(self, info) -> None:
        self._resolutions = tuple(info.ws_resolutions) or (0,) * info.num_ws
        with QSignalBlocker(self.layers), QSignalBlocker(self.enabled):
            self.layers.set_labels([f"{r}²" for r in self._resolutions])
            self.layers.set_range(*layer_presets(info.num_ws)["fine"])
            if info.num_ws < 2:
                self.enabled.setChecked(False)
        for w in self.findChildren(QWidget):
            if w is not self.note:
                w.setEnabled(info.num_ws > 1)
        self.note.setText("" if info.num_ws > 1 else f"a {info.family} model has a single latent: nothing to mix")
        self.note.setVisible(info.num_ws < 2)
        self._show_values()

    def apply_preset(self, name: str) -> None:
        self.layers.set_range(*layer_presets(self.layers.count())[name])
        self.enabled.setChecked(True)

    def write(self, request) -> None:
        low, high = self.layers.range()
        on = self.enabled.isChecked()
        request.mix_seed = self.seed.value() if on else None
        request.mix_layers = list(range(low, high + 1)) if on else []

    def read(self, request) -> None:
        with QSignalBlocker(self.enabled), QSignalBlocker(self.seed), QSignalBlocker(self.layers):
            self.enabled.setChecked(bool(request.mix_layers))
            if request.mix_seed is not None:
                self.seed.setValue(request.mix_seed)
            if request.mix_layers:
                self.layers.set_range(min(request.mix_layers), max(request.mix_layers))
        self._show_values()

    def _show_values(self) -> None:
        low, high = self.layers.range()
        res = self._resolutions
        self.layers_label.setText(f"ws {low}–{high} ({res[low]}²–{res[high]}²)" if high < len(res) else "")

    def _on_input_changed(self, *_args) -> None:
        self._show_values()
        self.changed.emit()


class NoisePanel(Panel):
    """Noise mode, noise seed and per-layer on/off (StyleGAN and StyleGAN2 only)."""

    MODES = ("const", "random", "none")

    def __init__(self, parent=None):
        super().__init__("Noise", parent)
        self.mode = QComboBox()
        self.mode.addItems(self.MODES)
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.seed.setEnabled(False)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.hide()
        self.layer_box = QWidget()
        self._grid = QGridLayout(self.layer_box)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self.toggles: list[QCheckBox] = []
        form = QFormLayout(self)
        form.addRow("Mode", self.mode)
        form.addRow("Seed", self.seed)
        form.addRow("Layers", self.layer_box)
        form.addRow("", self.note)
        self.mode.currentIndexChanged.connect(self._on_mode_changed)
        self.seed.valueChanged.connect(self.changed)

    def configure(self, info) -> None:
        for toggle in self.toggles:
            self._grid.removeWidget(toggle)
            toggle.deleteLater()
        self.toggles = []
        for i, (name, res) in enumerate(info.noise_layers):
            toggle = QCheckBox(f"{res}²")
            toggle.setToolTip(name)
            toggle.setChecked(True)
            toggle.toggled.connect(self.changed)
            self._grid.addWidget(toggle, i // 4, i % 4)
            self.toggles.append(toggle)
        has_noise = bool(info.has_noise and info.noise_layers)
        for w in (self.mode, self.layer_box):
            w.setEnabled(has_noise)
        self.seed.setEnabled(has_noise and self.mode.currentText() == "random")
        self.note.setText("" if has_noise else f"a {info.family} model has no noise inputs")
        self.note.setVisible(not has_noise)

    def write(self, request) -> None:
        request.noise_mode = self.mode.currentText()
        request.noise_seed = self.seed.value()
        enabled = [t.isChecked() for t in self.toggles]
        request.noise_enabled = None if all(enabled) else enabled

    def read(self, request) -> None:
        with QSignalBlocker(self.mode), QSignalBlocker(self.seed):
            self.mode.setCurrentText(request.noise_mode)
            self.seed.setValue(request.noise_seed)
            self.seed.setEnabled(self.mode.isEnabled() and request.noise_mode == "random")
        enabled = request.noise_enabled or [True] * len(self.toggles)
        for toggle, on in zip(self.toggles, enabled, strict=False):
            with QSignalBlocker(toggle):
                toggle.setChecked(on)

    def _on_mode_changed(self, _index: int) -> None:
        self.seed.setEnabled(self.mode.isEnabled() and self.mode.currentText() == "random")
        self.changed.emit()


class TransformPanel(Panel):
    """StyleGAN3's input transform: translate and rotate (typed, dragged or animated), reset."""

    def __init__(self, parent=None):
        super().__init__("Transform (StyleGAN3)", parent)
        self.tx, self.ty = QDoubleSpinBox(), QDoubleSpinBox()
        for box in (self.tx, self.ty):
            box.setRange(-10.0, 10.0)
            box.setDecimals(3)
            box.setSingleStep(0.01)
            box.setToolTip("Translation in picture widths")
        self.rotate = QDoubleSpinBox()
        self.rotate.setRange(-360.0, 360.0)
        self.rotate.setWrapping(True)
        self.rotate.setDecimals(1)
        self.rotate.setSuffix("°")
        self.pad = DragPad("drag: translate · right-drag: rotate")
        self.round = QCheckBox("Whole pixels")
        self.round.setToolTip("Round the translation to whole output pixels")
        self.untransform = QCheckBox("Untransform")
        self.untransform.setToolTip("Move the picture back by the transform (band-limited resampling): "
                                    "an equivariant network then shows a still picture")
        self.animate_translate = QCheckBox("translate")
        self.translate_speed = QDoubleSpinBox()
        self.translate_speed.setRange(-10.0, 10.0)
        self.translate_speed.setValue(0.1)
        self.translate_speed.setSuffix(" /s")
        self.animate_rotate = QCheckBox("rotate")
        self.rotate_speed = QDoubleSpinBox()
        self.rotate_speed.setRange(-720.0, 720.0)
        self.rotate_speed.setValue(30.0)
        self.rotate_speed.setSuffix(" °/s")
        self.reset = QPushButton("Reset")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.hide()
        self._resolution = 1
        self._has_transform = False
        self._timer = QTimer(self)
        self._timer.setInterval(ANIMATION_MS)

        form = QFormLayout(self)
        form.addRow("Translate", _row(self.tx, self.ty))
        form.addRow("Rotate", _row(self.rotate, self.reset))
        form.addRow("", self.pad)
        form.addRow("Animate", _row(self.animate_translate, self.translate_speed))
        form.addRow("", _row(self.animate_rotate, self.rotate_speed))
        form.addRow("", _row(self.round, self.untransform))
        form.addRow("", self.note)

        for box in (self.tx, self.ty, self.rotate):
            box.valueChanged.connect(self.changed)
        self.round.toggled.connect(self.changed)
        self.untransform.toggled.connect(self.changed)
        self.pad.dragged.connect(self._on_pad_dragged)
        self.reset.clicked.connect(self._on_reset_clicked)
        self.animate_translate.toggled.connect(self._on_animate_toggled)
        self.animate_rotate.toggled.connect(self._on_animate_toggled)
        self._timer.timeout.connect(self._on_timer_timeout)

    def configure(self, info) -> None:
        self._resolution = info.resolution
        self._has_transform = info.has_input_transform
        for w in self.findChildren(QWidget):
            if w is not self.note:
                w.setEnabled(info.has_input_transform)
        if not info.has_input_transform:
            self.animate_translate.setChecked(False)
            self.animate_rotate.setChecked(False)
        self.note.setText("" if info.has_input_transform else f"a {info.family} model has no input transform")
        self.note.setVisible(not info.has_input_transform)

    def translate_by(self, dx: float, dy: float) -> None:
        """Shift by (dx, dy) picture widths in one change."""
        with QSignalBlocker(self.tx), QSignalBlocker(self.ty):
            self.tx.setValue(self.tx.value() + dx)
            self.ty.setValue(self.ty.value() + dy)
        self.changed.emit()

    def write(self, request) -> None:
        tx, ty = self.tx.value(), self.ty.value()
        if self.round.isChecked():
            tx, ty = (round(t * self._resolution) / self._resolution for t in (tx, ty))
        request.translate = (tx, ty) if self._has_transform else (0.0, 0.0)
        request.rotate = self.rotate.value() if self._has_transform else 0.0
        request.untransform = self._has_transform and self.untransform.isChecked()

    def read(self, request) -> None:
        with (QSignalBlocker(self.tx), QSignalBlocker(self.ty), QSignalBlocker(self.rotate),
              QSignalBlocker(self.untransform)):
            self.tx.setValue(request.translate[0])
            self.ty.setValue(request.translate[1])
            self.rotate.setValue(request.rotate)
            self.untransform.setChecked(request.untransform)

    def _on_pad_dragged(self, dx: float, dy: float, right: bool) -> None:
        if right:
            self.rotate.setValue(self.rotate.value() + dx / DRAG_PX_PER_DEGREE)
        else:
            self.translate_by(dx / DRAG_PX_PER_UNIT, dy / DRAG_PX_PER_UNIT)

    def _on_reset_clicked(self) -> None:
        self.animate_translate.setChecked(False)
        self.animate_rotate.setChecked(False)
        with QSignalBlocker(self.tx), QSignalBlocker(self.ty), QSignalBlocker(self.rotate):
            self.tx.setValue(0.0)
            self.ty.setValue(0.0)
            self.rotate.setValue(0.0)
        self.changed.emit()

    def _on_animate_toggled(self, _on: bool) -> None:
        if self.animate_translate.isChecked() or self.animate_rotate.isChecked():
            self._timer.start()
        else:
            self._timer.stop()

    def _on_timer_timeout(self) -> None:
        dt = ANIMATION_MS / 1000
        with QSignalBlocker(self.tx), QSignalBlocker(self.rotate):
            if self.animate_translate.isChecked():
                self.tx.setValue(math.remainder(self.tx.value() + self.translate_speed.value() * dt, 2.0))
            if self.animate_rotate.isChecked():
                self.rotate.setValue(math.remainder(self.rotate.value() + self.rotate_speed.value() * dt, 360.0))
        self.changed.emit()


class LayersPanel(Panel):
    """Show a synthesis layer instead of the picture: its channels (grey or RGB), gain, or spectrum."""

    def __init__(self, parent=None):
        super().__init__("Layers", parent)
        self.enabled = QCheckBox("Show layer")
        self.layer = QComboBox()
        self.offset = QSpinBox()
        self.offset.setToolTip("First channel shown")
        self.channels = QComboBox()
        self.channels.addItem("RGB (3)", 3)
        self.channels.addItem("grey (1)", 1)
        self.brightness = QSlider(Qt.Orientation.Horizontal)
        self.brightness.setRange(-40, 40)
        self.brightness.setToolTip("Gain in dB")
        self.brightness_label = QLabel()
        self.brightness_label.setMinimumWidth(50)
        self.normalize = QCheckBox("Normalise")
        self.normalize.setToolTip("Scale each channel to its peak first")
        self.fft = QCheckBox("FFT")
        self.fft.setToolTip("Show the channels' power spectrum in dB (zero frequency in the middle)")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self._layers: list[tuple[str, int, int, int]] = []
        form = QFormLayout(self)
        form.addRow(self.enabled, self.layer)
        form.addRow("Channels", _row(self.offset, self.channels))
        form.addRow("Gain", _row(self.brightness, self.brightness_label))
        form.addRow("", _row(self.normalize, self.fft))
        form.addRow("", self.summary)
        self.enabled.toggled.connect(self._on_input_changed)
        self.layer.currentIndexChanged.connect(self._on_layer_changed)
        self.offset.valueChanged.connect(self._on_input_changed)
        self.channels.currentIndexChanged.connect(self._on_input_changed)
        self.brightness.valueChanged.connect(self._on_input_changed)
        self.normalize.toggled.connect(self._on_input_changed)
        self.fft.toggled.connect(self._on_input_changed)
        self._show_values()

    def set_layers(self, layers) -> None:
        """The model's layers as (name, channels, height, width); picks the last, shows the picture."""
        self._layers = list(layers)
        with QSignalBlocker(self.layer), QSignalBlocker(self.enabled):
            self.layer.clear()
            for name, c, h, w in self._layers:
                self.layer.addItem(f"{name}  ({c} ch, {w}×{h})", name)
            self.layer.setCurrentIndex(len(self._layers) - 1)
            self.enabled.setChecked(False)
        self._update_offset_range()
        for w in self.findChildren(QWidget):
            w.setEnabled(bool(self._layers))
        self._show_values()

    def select(self, name: str) -> None:
        """Show layer `name`."""
        index = self.layer.findData(name)
        if index < 0:
            raise ValueError(f"no layer {name!r}")
        with QSignalBlocker(self.enabled):
            self.enabled.setChecked(True)
        self.layer.setCurrentIndex(index)
        self._on_input_changed()

    def write(self, request) -> None:
        on = self.enabled.isChecked() and self.layer.currentIndex() >= 0
        request.layer = self.layer.currentData() if on else None
        request.channel_offset = self.offset.value()
        request.channels = self.channels.currentData()
        request.brightness = float(self.brightness.value())
        request.normalize = self.normalize.isChecked()
        request.fft = self.fft.isChecked()

    def read(self, request) -> None:
        widgets = (self.enabled, self.layer, self.offset, self.channels, self.brightness, self.normalize, self.fft)
        blockers = [QSignalBlocker(w) for w in widgets]
        index = self.layer.findData(request.layer) if request.layer is not None else -1
        self.enabled.setChecked(index >= 0)
        if index >= 0:
            self.layer.setCurrentIndex(index)
        self._update_offset_range()
        self.offset.setValue(request.channel_offset)
        self.channels.setCurrentIndex(max(self.channels.findData(request.channels), 0))
        self.brightness.setValue(round(request.brightness))
        self.normalize.setChecked(request.normalize)
        self.fft.setChecked(request.fft)
        for blocker in blockers:
            blocker.unblock()
        self._show_values()

    def _update_offset_range(self) -> None:
        index = self.layer.currentIndex()
        channels = self._layers[index][1] if 0 <= index < len(self._layers) else 1
        self.offset.setRange(0, max(channels - 1, 0))

    def _show_values(self) -> None:
        self.brightness_label.setText(f"{self.brightness.value():+d} dB")
        index = self.layer.currentIndex()
        if not self.enabled.isChecked() or not 0 <= index < len(self._layers):
            self.summary.setText("showing the picture")
            return
        name, c, h, w = self._layers[index]
        n = self.channels.currentData() if c >= self.channels.currentData() else 1
        first = max(0, min(self.offset.value(), c - n))
        what = "power spectrum of " if self.fft.isChecked() else ""
        self.summary.setText(f"{what}channels {first}–{first + n - 1} of {c}, {w}×{h}")

    def _on_layer_changed(self, _index: int) -> None:
        self._update_offset_range()
        self._on_input_changed()

    def _on_input_changed(self, *_args) -> None:
        self._show_values()
        self.changed.emit()
