"""Gradient flow over time: per layer, the weight-gradient norm and the update/weight ratio, log scale.

One line per weighted layer in both plots, the same colour for a layer in both (the layer's
position in the network picks it from the one categorical palette), one legend. Vanishing
gradients show as the first layers' lines lying decades below the last ones; a healthy
update/weight ratio sits near the dashed 1e-3 line. numpy in, nothing of the engine.
"""
from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from widgets.paint.palette import class_color

HEALTHY_RATIO = 1e-3
FLOOR = 1e-12  # log axes cannot show 0: exact zeros (a frozen layer) are drawn at this floor
_TEXT = "#3c4043"


def _plot(title: str, left: str) -> pg.PlotWidget:
    w = pg.PlotWidget(background="w")
    p = w.getPlotItem()
    p.setTitle(title, color=_TEXT, size="10pt")
    p.setLogMode(x=False, y=True)
    p.showGrid(x=True, y=True, alpha=0.15)
    p.setLabel("bottom", "step", color=_TEXT)
    p.setLabel("left", left, color=_TEXT)
    p.setMenuEnabled(False)
    p.getAxis("left").enableAutoSIPrefix(False)
    w.setMinimumHeight(60)
    return w


class GradientsView(QWidget):
    """Two log-scale plots (gradient norm, update/weight ratio) with one line per layer and a legend."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.norm_plot = _plot("Gradient norm ||dL/dW||", "norm")
        self.ratio_plot = _plot("Update / weight  ||ΔW|| / ||W||", "ratio")
        self.ratio_plot.setXLink(self.norm_plot)
        guide = pg.InfiniteLine(np.log10(HEALTHY_RATIO), angle=0, pen=pg.mkPen("#9aa0a6", style=Qt.PenStyle.DashLine))
        guide.setToolTip("healthy ~1e-3")
        self.ratio_plot.addItem(guide)
        self.legend = QLabel()  # one legend for both plots, above them so it hides no line
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.hint = QLabel("Train to see each layer's gradients (measured on the steps the views report).")
        self.hint.setStyleSheet(f"color: {_TEXT};")
        self.hint.setWordWrap(True)
        plots = QHBoxLayout()
        plots.setContentsMargins(0, 0, 0, 0)
        plots.addWidget(self.norm_plot)
        plots.addWidget(self.ratio_plot)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.hint)
        lay.addWidget(self.legend)
        lay.addLayout(plots, 1)
        self.layers: list[str] = []
        self.norm_lines: dict[str, pg.PlotDataItem] = {}
        self.ratio_lines: dict[str, pg.PlotDataItem] = {}

    def clear(self) -> None:
        for lines, plot in ((self.norm_lines, self.norm_plot), (self.ratio_lines, self.ratio_plot)):
            for item in lines.values():
                plot.removeItem(item)
            lines.clear()
        self.legend.setText("")
        self.layers = []

    def color_of(self, layer: str):
        return class_color(self.layers.index(layer))

    def set_history(self, layers: list[str], steps: np.ndarray, grad_norm: np.ndarray, update_ratio: np.ndarray) -> None:
        """``grad_norm`` and ``update_ratio`` are (layers, T) over ``steps`` (T,); NaN = not measured."""
        layers = list(layers)
        if layers != self.layers:
            self.clear()
            self.layers = layers
            for i, lid in enumerate(layers):
                pen = pg.mkPen(class_color(i), width=1)  # wider lines paint several times slower
                pen.setCosmetic(True)
                self.norm_lines[lid] = self.norm_plot.plot([], [], pen=pen)
                self.ratio_lines[lid] = self.ratio_plot.plot([], [], pen=pen)
            self.legend.setText("&nbsp; ".join(
                f"<span style='color:{class_color(i).name()}; font-size:14px'>&#9632;</span>"
                f"<span style='color:{_TEXT}'>&nbsp;{html.escape(lid)}</span>" for i, lid in enumerate(layers)))
        x = np.asarray(steps, np.float64)
        self.hint.setVisible(len(x) == 0)
        for i, lid in enumerate(layers):
            for lines, values in ((self.norm_lines, grad_norm), (self.ratio_lines, update_ratio)):
                y = np.asarray(values[i], np.float64)
                ok = np.isfinite(y)
                lines[lid].setData(x[ok], np.maximum(y[ok], FLOOR), connect="finite")
