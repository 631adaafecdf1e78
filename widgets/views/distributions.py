"""Distributions over time, TensorBoard-style: one strip per layer, x = step, y = value, colour = density.

The worker sends, per layer and reported step, a histogram of fixed bin count over that
step's [lo, hi]; here each column is spread onto one value grid per layer (the range over
all steps), normalised to its own peak, and painted with the perceptual colour map. A
selector picks weights, biases, activations (what the layer passes on) or weight gradients.
numpy in, nothing of the engine.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from widgets.paint.colormaps import lut

KINDS = ("weights", "biases", "activations", "gradients")
Y_RES = 64  # rows of each strip's image
X_RES = 200  # columns of each strip's image
STRIP_H = 58  # px per layer; more layers than fit scroll
CMAP = "viridis"
_TEXT = "#3c4043"


def density_image(counts: np.ndarray, lo: np.ndarray, hi: np.ndarray, rows: int = Y_RES) -> tuple[np.ndarray, float, float]:
    """(image (T, rows) in [0, 1], ymin, ymax): each step's histogram resampled onto one value grid."""
    counts = np.asarray(counts, np.float64)
    t, bins = counts.shape
    ok = np.isfinite(lo) & np.isfinite(hi)
    img = np.zeros((t, rows))
    if not ok.any():
        return img, 0.0, 1.0
    ymin, ymax = float(np.min(lo[ok])), float(np.max(hi[ok]))
    if ymax <= ymin:
        ymax = ymin + 1.0
    centres = ymin + (np.arange(rows) + 0.5) * (ymax - ymin) / rows
    for i in np.flatnonzero(ok):
        width = (hi[i] - lo[i]) / bins
        idx = np.floor((centres - lo[i]) / width).astype(int)
        inside = (idx >= 0) & (idx < bins)
        col = np.zeros(rows)
        col[inside] = counts[i, idx[inside]] / width  # a density, so narrow and wide columns compare
        peak = col.max()
        if peak <= 0 and counts[i].sum() > 0:  # all mass in a bin narrower than a row: mark its row
            col[min(rows - 1, max(0, int((0.5 * (lo[i] + hi[i]) - ymin) / (ymax - ymin) * rows)))] = 1.0
            peak = 1.0
        img[i] = col / peak if peak > 0 else col
    return img, ymin, ymax


class DistributionsView(QWidget):
    """A selector and one density strip per layer over the reported steps."""

    kind_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.selector = QComboBox()
        self.selector.addItems(list(KINDS))
        self.selector.setToolTip("What the strips show: each layer's weights, biases, activations (after its "
                                 "activation function) or weight gradients")
        self.selector.currentTextChanged.connect(self.kind_changed)
        self.hint = QLabel("Train to see how each layer's values spread over time.")
        self.hint.setStyleSheet(f"color: {_TEXT};")
        top = QHBoxLayout()
        top.addWidget(QLabel("Show"))
        top.addWidget(self.selector)
        top.addWidget(self.hint, 1)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.ci.layout.setColumnStretchFactor(1, 1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(self.graphics)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.scroll, 1)
        self.strips: dict[str, tuple[pg.PlotItem, pg.ImageItem]] = {}
        self.images: dict[str, np.ndarray] = {}

    def kind(self) -> str:
        return self.selector.currentText()

    def clear(self) -> None:
        self.graphics.clear()
        self.strips.clear()
        self.images.clear()
        self.hint.setVisible(True)

    def set_distributions(self, kind: str, steps: np.ndarray, layers: list[str], counts: dict, lo: dict, hi: dict) -> None:
        """Per layer id: counts (T, bins), lo/hi (T,) over ``steps`` (T,)."""
        if kind != self.kind():
            return  # an answer to the previous choice
        layers = list(layers)
        if layers != list(self.strips):
            self.clear()
            for i, lid in enumerate(layers):
                self.graphics.addLabel(lid, row=i, col=0, color=_TEXT, size="8pt")
                plot = self.graphics.addPlot(row=i, col=1)
                plot.getAxis("left").setWidth(44)
                plot.setMenuEnabled(False)
                plot.setMouseEnabled(x=False, y=False)
                plot.hideButtons()
                plot.getAxis("bottom").setStyle(showValues=i == len(layers) - 1)
                img = pg.ImageItem()
                img.setLookupTable(lut(CMAP))
                plot.addItem(img)
                self.strips[lid] = (plot, img)
            self.graphics.setMinimumHeight(STRIP_H * len(layers) + 20)
        steps = np.asarray(steps, np.float64)
        self.hint.setVisible(len(steps) == 0)
        if not len(steps):
            return
        x0 = float(steps[0])
        x1 = float(steps[-1]) if len(steps) > 1 and steps[-1] > steps[0] else x0 + 1.0
        # reported steps are not evenly spaced (rate-limited, thinned): each column holds until the next
        grid = np.linspace(x0, x1, X_RES)
        at = np.clip(np.searchsorted(steps, grid, side="right") - 1, 0, len(steps) - 1)
        for lid in layers:
            plot, item = self.strips[lid]
            image, ymin, ymax = density_image(counts[lid], np.asarray(lo[lid]), np.asarray(hi[lid]))
            self.images[lid] = image
            item.setImage(image[at], levels=(0.0, 1.0), autoLevels=False)
            item.setRect(x0, ymin, x1 - x0, ymax - ymin)
            plot.setXRange(x0, x1, padding=0)
            plot.setYRange(ymin, ymax, padding=0)
