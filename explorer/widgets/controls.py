"""Small input widgets the panels share: a two-handle range slider and a drag pad."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget


class RangeSlider(QWidget):
    """Chooses a range [low, high] of whole steps, each step labelled underneath (e.g. a resolution).

    Drag either handle, click to move the nearer one, or use the arrow keys (Shift moves the upper).
    """

    range_changed = Signal(int, int)

    MARGIN = 8
    HANDLE = 7

    def __init__(self, parent=None):
        super().__init__(parent)
        self._labels: list[str] = ["0"]
        self._low = self._high = 0
        self._grabbed: str | None = None
        self.setMinimumHeight(40)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def sizeHint(self) -> QSize:
        return QSize(200, 40)

    def set_labels(self, labels: list[str]) -> None:
        """One label per step; resets the range to everything."""
        self._labels = list(labels) or ["0"]
        self._low, self._high = 0, len(self._labels) - 1
        self.update()

    def count(self) -> int:
        return len(self._labels)

    def range(self) -> tuple[int, int]:
        return self._low, self._high

    def set_range(self, low: int, high: int) -> None:
        low = max(0, min(low, self.count() - 1))
        high = max(low, min(high, self.count() - 1))
        if (low, high) != (self._low, self._high):
            self._low, self._high = low, high
            self.update()
            self.range_changed.emit(low, high)

    def _x(self, step: int) -> float:
        span = max(self.count() - 1, 1)
        return self.MARGIN + (self.width() - 2 * self.MARGIN) * step / span

    def _step_at(self, x: float) -> int:
        span = max(self.count() - 1, 1)
        frac = (x - self.MARGIN) / max(self.width() - 2 * self.MARGIN, 1)
        return max(0, min(round(frac * span), self.count() - 1))

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        enabled = self.isEnabled()
        groove_y = 12
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(pal.color(QPalette.ColorRole.Mid))
        p.drawRoundedRect(QRectF(self.MARGIN, groove_y - 2, self.width() - 2 * self.MARGIN, 4), 2, 2)
        accent = pal.color(QPalette.ColorRole.Highlight) if enabled else pal.color(QPalette.ColorRole.Mid)
        p.setBrush(accent)
        p.drawRect(QRectF(self._x(self._low), groove_y - 3, self._x(self._high) - self._x(self._low), 6))
        for step in (self._low, self._high):
            p.setBrush(accent.darker(120) if self.hasFocus() else accent)
            p.drawEllipse(QPointF(self._x(step), groove_y), self.HANDLE, self.HANDLE)
        # Labels, thinned out where they would overlap.
        p.setPen(pal.color(QPalette.ColorRole.WindowText) if enabled else QColor("gray"))
        font = p.font()
        font.setPointSizeF(max(font.pointSizeF() * 0.8, 6))
        p.setFont(font)
        metrics = p.fontMetrics()
        last_right = -1e9
        for step, label in enumerate(self._labels):
            w = metrics.horizontalAdvance(label)
            x = self._x(step) - w / 2
            if x > last_right + 2:
                p.drawText(QPointF(x, self.height() - 4), label)
                last_right = x + w
        p.end()

    def mousePressEvent(self, event) -> None:
        step = self._step_at(event.position().x())
        self._grabbed = "low" if abs(step - self._low) <= abs(step - self._high) and step <= self._high else "high"
        self._move_grabbed(step)

    def mouseMoveEvent(self, event) -> None:
        if self._grabbed:
            self._move_grabbed(self._step_at(event.position().x()))

    def mouseReleaseEvent(self, event) -> None:
        self._grabbed = None

    def _move_grabbed(self, step: int) -> None:
        if self._grabbed == "low":
            self.set_range(min(step, self._high), self._high)
        else:
            self.set_range(self._low, max(step, self._low))

    def keyPressEvent(self, event) -> None:
        delta = {Qt.Key.Key_Left: -1, Qt.Key.Key_Down: -1, Qt.Key.Key_Right: 1, Qt.Key.Key_Up: 1}.get(event.key())
        if delta is None:
            super().keyPressEvent(event)
        elif event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.set_range(self._low, self._high + delta)
        else:
            self.set_range(self._low + delta, self._high)


class DragPad(QWidget):
    """A handle to drag: reports pointer motion in pixels, with which button is held."""

    dragged = Signal(float, float, bool)  # dx, dy, whether the right button is held

    def __init__(self, text: str, parent=None):
        super().__init__(parent)
        self._text = text
        self._last: QPointF | None = None
        self._right = False
        self.setMinimumSize(60, 44)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.SizeAllCursor)
        self.setToolTip(text)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        pal = self.palette()
        p.setPen(pal.color(QPalette.ColorRole.Mid))
        p.setBrush(pal.color(QPalette.ColorRole.Base) if self.isEnabled() else pal.color(QPalette.ColorRole.Window))
        p.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
        p.setPen(pal.color(QPalette.ColorRole.WindowText) if self.isEnabled() else QColor("gray"))
        p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._text)
        p.end()

    def mousePressEvent(self, event) -> None:
        self._last = event.position()
        self._right = event.button() == Qt.MouseButton.RightButton

    def mouseMoveEvent(self, event) -> None:
        if self._last is not None:
            d = event.position() - self._last
            self._last = event.position()
            self.dragged.emit(d.x(), d.y(), self._right)

    def mouseReleaseEvent(self, event) -> None:
        self._last = None
