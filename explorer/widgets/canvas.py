"""The picture: a pyqtgraph image in a view box with locked aspect (zoom, pan, fit, 1:1, hover)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal


class _ImageViewBox(pg.ViewBox):
    """A view box whose plain left drag is reported (to steer the latent) instead of panning.

    Shift + left drag and middle drag pan, right drag and the wheel zoom.
    """

    dragged = Signal(float, float)  # dx, dy in screen pixels since the last move

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() == Qt.MouseButton.LeftButton and not ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.dragged.emit(delta.x(), delta.y())
            return
        if ev.button() == Qt.MouseButton.LeftButton:  # shift + left: pan like the middle button
            ev.accept()
            delta = self.mapToView(ev.lastPos()) - self.mapToView(ev.pos())
            self.translateBy(QPointF(delta.x(), delta.y()))
            return
        super().mouseDragEvent(ev, axis)


class ImageCanvas(pg.GraphicsLayoutWidget):
    """Shows uint8 RGB frames; refits when the frame size changes."""

    dragged = Signal(float, float)  # left drag on the picture, screen pixels
    hovered = Signal(str)           # 'x, y: r g b' under the pointer, '' outside the picture

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("#202020")
        self.ci.setContentsMargins(0, 0, 0, 0)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self._view = _ImageViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self.addItem(self._view)
        self._item = pg.ImageItem(axisOrder="row-major")
        self._view.addItem(self._item)
        self._image: np.ndarray | None = None
        self._view.dragged.connect(self.dragged)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    @property
    def image(self) -> np.ndarray | None:
        """The frame on show, uint8 [H, W, 3], or None before the first."""
        return self._image

    def show_image(self, image: np.ndarray) -> None:
        refit = self._image is None or self._image.shape != image.shape
        self._image = image
        self._item.setImage(image, autoLevels=False, levels=(0, 255))
        if refit:
            self.fit()

    def fit(self) -> None:
        """Zoom so the whole picture fills the view."""
        if self._image is not None:
            h, w = self._image.shape[:2]
            self._view.setRange(QRectF(0, 0, w, h), padding=0)

    def actual_size(self) -> None:
        """Zoom to one picture pixel per screen pixel, keeping the centre."""
        rect = self._view.viewRect()
        w, h = self._view.width(), self._view.height()
        c = rect.center()
        self._view.setRange(QRectF(c.x() - w / 2, c.y() - h / 2, w, h), padding=0)

    def _on_mouse_moved(self, pos: QPointF) -> None:
        text = ""
        if self._image is not None and self._view.sceneBoundingRect().contains(pos):
            p = self._view.mapSceneToView(pos)
            x, y = math.floor(p.x()), math.floor(p.y())
            h, w = self._image.shape[:2]
            if 0 <= x < w and 0 <= y < h:
                r, g, b = (int(v) for v in self._image[y, x, :3])
                text = f"x {x}, y {y}: RGB {r} {g} {b}"
        self.hovered.emit(text)
