"""The one colour bar: a strip of a named colour map with its low, (zero) and high values.

``paint_color_strip`` draws the strip with QPainter so composite keys (the decision plane's
class key) reuse exactly the bar the ``ColorBar`` widget shows. The views are QPainter widgets
and small pyqtgraph plots whose keys sit under the picture as one text line, so a plain widget
fits better than ``pg.ColorBarItem`` (a graphics item with drag handles that needs a plot layout);
the colours themselves come from the same ``pg.ColorMap`` (widgets.paint.colormaps).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from widgets.paint.colormaps import colormap

FRAME_COLOR = QColor("#c4c7c5")


def fmt_value(v: float) -> str:
    """A compact number for scale labels and tooltips: 3 significant digits."""
    if not np.isfinite(v):
        return "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.2e}"
    return f"{v:.3g}"


def paint_color_strip(p: QPainter, bar: QRectF, cmap: str, stops: int = 17) -> None:
    """Fill ``bar`` with the named map, left (low) to right (high), framed with rounded corners."""
    cm = colormap(cmap)
    grad = QLinearGradient(bar.topLeft(), bar.topRight())
    for t in np.linspace(0.0, 1.0, stops):
        grad.setColorAt(float(t), cm.map(float(t), mode=cm.QCOLOR))
    p.save()
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QPen(FRAME_COLOR, 1))
    p.setBrush(QBrush(grad))
    p.drawRoundedRect(bar, 2, 2)
    p.restore()


class ColorBar(QWidget):
    """A horizontal colour scale: optional label, low value, strip, high value, and a 0 tick
    under the strip when the range spans zero. ``set_range(None, None)`` hides the scale text."""

    def __init__(self, parent: QWidget | None = None, *, cmap: str = "diverging", label: str = "",
                 small: bool = False):
        super().__init__(parent)
        self._cmap = cmap
        self._lo: float | None = -1.0
        self._hi: float | None = 1.0
        self._label = label
        if small:
            font = QFont(self.font())
            font.setPointSizeF(max(font.pointSizeF() - 1, 7))
            self.setFont(font)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(QFontMetrics(self.font()).height() + 14)

    def set_range(self, lo: float | None, hi: float | None, cmap: str | None = None, label: str | None = None) -> None:
        if cmap is not None:
            colormap(cmap)  # unknown names fail here, not in a paint event
            self._cmap = cmap
        if label is not None:
            self._label = label
        self._lo = None if lo is None else float(lo)
        self._hi = None if hi is None else float(hi)
        self.update()

    def range(self) -> tuple[float | None, float | None]:
        return self._lo, self._hi

    def cmap(self) -> str:
        return self._cmap

    def text(self) -> str:
        """The scale as a line of text ("" when empty), e.g. '-0.5 … 0 … 0.5'."""
        if self._lo is None or self._hi is None:
            return ""
        mid = " … 0 …" if self._lo < 0 < self._hi else " …"
        return f"{fmt_value(self._lo)}{mid} {fmt_value(self._hi)}"

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(220, self.height())

    def strip_rect(self) -> QRect:
        fm = QFontMetrics(self.font())
        label_w = fm.horizontalAdvance(self._label) + 8 if self._label else 0
        lo = fmt_value(self._lo) if self._lo is not None else ""
        hi = fmt_value(self._hi) if self._hi is not None else ""
        side = max(fm.horizontalAdvance(lo), fm.horizontalAdvance(hi)) + 8
        return QRect(label_w + side, 3, max(20, self.width() - label_w - 2 * side - 2), 9)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._lo is None or self._hi is None:
            return
        p = QPainter(self)
        fm = QFontMetrics(self.font())
        bar = self.strip_rect()
        paint_color_strip(p, QRectF(bar), self._cmap)
        p.setPen(self.palette().color(self.foregroundRole()))
        if self._label:
            label_w = fm.horizontalAdvance(self._label) + 8
            p.drawText(QRect(0, 0, label_w, self.height()), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                       self._label)
        row = QRect(0, bar.y() - 3, 0, bar.height() + 6)
        p.drawText(QRect(0, row.y(), bar.x() - 5, row.height()), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                   fmt_value(self._lo))
        p.drawText(QRect(bar.right() + 6, row.y(), self.width(), row.height()),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, fmt_value(self._hi))
        if self._lo < 0 < self._hi:
            x = bar.x() + int(bar.width() * (-self._lo) / (self._hi - self._lo))
            p.drawLine(x, bar.bottom() + 1, x, bar.bottom() + 3)
            p.drawText(QRect(x - 20, bar.bottom() + 3, 40, fm.height()),
                       Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, "0")
        p.end()
