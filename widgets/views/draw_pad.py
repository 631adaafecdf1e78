"""A small canvas to draw an input image with the mouse (a digit for an MNIST-like network).

Strokes are painted with a thick antialiased round brush on a hidden canvas several times the
input size and area-averaged down to the input's H x W, which gives the soft edges of scanned
digits. The pad shows the downsampled pixels (what the network will see), white ink on black.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from widgets.paint.colormaps import map_argb
from widgets.paint.images import fitted_rect, qimage

HIRES = 224  # side of the hidden canvas the strokes are painted on, in pixels (at least)
EMIT_INTERVAL_MS = 60  # while drawing, drawing_changed at most ~16 times a second


class DrawPad(QWidget):
    """Draw with the left mouse button, erase with the right one; ``clear()`` wipes it.

    ``drawing_changed(np.ndarray)`` carries the image as float32 (H, W) in [0, 1] (1 = full ink).
    """

    drawing_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None, size: tuple[int, int] = (28, 28), brush: float | None = None):
        super().__init__(parent)
        self._h, self._w = 28, 28
        self._brush_px: float | None = brush  # stroke width in input pixels; None: ~1/10 of the side
        self._canvas = QImage()
        self._last: QPointF | None = None
        self._erasing = False
        self._array = np.zeros((28, 28), np.float32)
        self._display = QImage()
        self._display_key: tuple | None = None
        self._emit_timer = QTimer(self)
        self._emit_timer.setSingleShot(True)
        self._emit_timer.setInterval(EMIT_INTERVAL_MS)
        self._emit_timer.timeout.connect(self._on_emit_timer_timeout)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("Draw with the left mouse button, erase with the right one")
        self.set_size(*size)

    # ---- public API ---------------------------------------------------------------------
    def set_size(self, h: int, w: int) -> None:
        """The input's H x W; clears the pad when it changes."""
        h, w = int(h), int(w)
        if h < 1 or w < 1:
            raise ValueError(f"draw pad size must be at least 1x1, got {h}x{w}")
        if (h, w) == (self._h, self._w) and not self._canvas.isNull():
            return
        self._h, self._w = h, w
        s = self._scale()
        self._canvas = QImage(w * s, h * s, QImage.Format.Format_Grayscale8)
        self._canvas.fill(0)
        self._array = np.zeros((h, w), np.float32)
        self._refresh_shown()
        self.updateGeometry()

    def size_hw(self) -> tuple[int, int]:
        return self._h, self._w

    def clear(self) -> None:
        """Wipe the drawing and emit the empty image."""
        self._canvas.fill(0)
        self._array = np.zeros((self._h, self._w), np.float32)
        self._refresh_shown()
        self._emit_now()

    def image(self) -> np.ndarray:
        """The drawing as float32 (H, W) in [0, 1]."""
        return self._array.copy()

    def is_empty(self) -> bool:
        return not bool(self._array.any())

    def brush_width(self) -> float:
        """Stroke width in input pixels."""
        return self._brush_px if self._brush_px else max(1.5, 0.1 * min(self._h, self._w))

    # ---- internals ----------------------------------------------------------------------
    def _scale(self) -> int:
        return max(1, -(-HIRES // max(self._h, self._w)))

    def _downsample(self) -> np.ndarray:
        s = self._scale()
        bpl = self._canvas.bytesPerLine()
        raw = np.frombuffer(self._canvas.constBits(), np.uint8, count=self._canvas.sizeInBytes())
        hires = raw.reshape(self._h * s, bpl)[:, : self._w * s].astype(np.float32)
        return (hires.reshape(self._h, s, self._w, s).mean(axis=(1, 3)) / 255.0).astype(np.float32)

    def _refresh_shown(self) -> None:
        self._display_key = None  # the drawing changed: rebuild the display image on the next paint
        self.update()

    def _pad_rect(self) -> QRect:
        return fitted_rect(self.rect().adjusted(2, 2, -2, -2), self._w, self._h)

    def _to_canvas(self, pos: QPointF) -> QPointF:
        r = self._pad_rect()
        s = self._scale()
        if r.width() <= 0 or r.height() <= 0:
            return QPointF(-1, -1)
        return QPointF((pos.x() - r.x()) / r.width() * self._w * s, (pos.y() - r.y()) / r.height() * self._h * s)

    def _stroke(self, a: QPointF, b: QPointF) -> None:
        s = self._scale()
        p = QPainter(self._canvas)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = QColor(0, 0, 0) if self._erasing else QColor(255, 255, 255)
        width = self.brush_width() * s * (1.8 if self._erasing else 1.0)
        p.setPen(QPen(color, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        if a == b:
            p.setBrush(color)
            p.setPen(Qt.PenStyle.NoPen)
            p.drawEllipse(a, width / 2, width / 2)
        else:
            p.drawLine(a, b)
        p.end()
        self._array = self._downsample()
        self._refresh_shown()

    def _emit_now(self) -> None:
        self._emit_timer.stop()
        self.drawing_changed.emit(self._array.copy())

    def _on_emit_timer_timeout(self) -> None:
        self.drawing_changed.emit(self._array.copy())

    # ---- Qt overrides -------------------------------------------------------------------
    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        side = max(self._h, self._w)
        s = max(1, 224 // side)
        return QSize(self._w * s + 4, self._h * s + 4)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(112, 112)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        return int(round(width * self._h / max(1, self._w)))

    def _display_image(self, scale: int) -> QImage:
        """The drawing upscaled by ``scale`` with a faint pixel grid baked in (one drawImage per paint)."""
        key = (scale,)  # reset by _refresh_shown whenever the drawing changes
        if self._display_key != key:
            gray = map_argb(self._array, "gray", 0.0, 1.0)
            if scale >= 6:
                # A faint grid shows how coarse the network's input is; baked in numpy because
                # dozens of translucent drawLine calls per mouse move are slow.
                big = gray.repeat(scale, axis=0).repeat(scale, axis=1)
                rgb = big.view(np.uint8).reshape(big.shape + (4,))
                lines = np.zeros(big.shape, bool)
                lines[scale::scale, :] = True
                lines[:, scale::scale] = True
                rgb[lines, :3] = np.minimum(rgb[lines, :3].astype(np.uint16) + 22, 255).astype(np.uint8)
                self._display = qimage(big)
            else:
                self._display = qimage(gray)
            self._display_key = key
        return self._display

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        r = self._pad_rect()
        if r.width() > 0:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            p.drawImage(r, self._display_image(max(1, r.width() // self._w)))
            p.setPen(QPen(QColor(0, 0, 0, 90), 1))
            p.drawRect(QRectF(r).adjusted(-0.5, -0.5, 0.5, 0.5))
            if self.is_empty():
                p.setPen(QColor(255, 255, 255, 120))
                p.drawText(r, Qt.AlignmentFlag.AlignCenter, "draw here")
        p.end()

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.button() not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return super().mousePressEvent(event)
        self._erasing = event.button() == Qt.MouseButton.RightButton
        self._last = self._to_canvas(event.position())
        self._stroke(self._last, self._last)
        if not self._emit_timer.isActive():
            self._emit_timer.start()
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._last is None:
            return super().mouseMoveEvent(event)
        pos = self._to_canvas(event.position())
        self._stroke(self._last, pos)
        self._last = pos
        if not self._emit_timer.isActive():
            self._emit_timer.start()  # coalesce: one emit per interval however fast the mouse moves
        event.accept()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._last is None:
            return super().mouseReleaseEvent(event)
        self._stroke(self._last, self._to_canvas(event.position()))
        self._last = None
        self._emit_now()  # the finished stroke always goes out at once
        event.accept()
