"""The loss landscape: a contour plot of the loss on a 2-D slice around the current weights,
with the optimiser's path projected onto it, and the loss along the line from the initial to
the current weights. Computed on demand in the worker (progress and Cancel)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from widgets.paint.colormaps import colormap
from widgets.paint.palette import SELECTION, TF_ORANGE
from widgets.views.analysis_common import JobRow

LEVELS = 12


class LandscapeView(QWidget):
    compute_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.job = JobRow("Compute landscape", "Loss on a 2-D slice through the weights along two filter-normalised "
                                               "random directions (Li et al. 2018), on 512 training samples")
        self.along_combo = QComboBox()
        self.along_combo.addItem("random directions (filter-normalised)", "random")
        self.along_combo.addItem("principal directions of the path", "path")
        self.along_combo.setToolTip("Random directions show the shape of the minimum; the path is almost orthogonal to "
                                    "them, so its principal directions show where the optimiser went (Li et al. §7)")
        self.job.layout().insertWidget(1, self.along_combo)
        lay.addWidget(self.job)
        row = QHBoxLayout()
        self.slice_plot = pg.PlotWidget(background="w", title="Loss around the current weights")
        self.slice_plot.setMenuEnabled(False)
        self.slice_plot.hideButtons()
        self.slice_plot.setLabel("bottom", "direction 1")
        self.slice_plot.setLabel("left", "direction 2")
        self.image = pg.ImageItem()
        self.image.setColorMap(colormap("viridis"))
        self.slice_plot.addItem(self.image)
        self.contours: list[pg.IsocurveItem] = []
        self.path = pg.PlotDataItem(pen=pg.mkPen("w", width=2), symbol="o", symbolSize=5, symbolBrush=TF_ORANGE)
        self.centre = pg.ScatterPlotItem(size=12, symbol="star", brush=pg.mkBrush(SELECTION), pen=pg.mkPen("w"))
        self.slice_plot.addItem(self.path)
        self.slice_plot.addItem(self.centre)
        self.line_plot = pg.PlotWidget(background="w", title="Initial (0) → current (1) weights")
        self.line_plot.setMenuEnabled(False)
        self.line_plot.hideButtons()
        self.line_plot.setLabel("bottom", "alpha")
        self.line_plot.setLabel("left", "loss")
        row.addWidget(self.slice_plot, 3)
        row.addWidget(self.line_plot, 2)
        lay.addLayout(row, 1)
        self.caption = QLabel("Press Compute landscape while or after training")
        self.caption.setStyleSheet("color: #5f6368")
        lay.addWidget(self.caption)
        self.result: dict | None = None
        self.job.start_requested.connect(lambda: self.compute_requested.emit())
        self.caption.setWordWrap(True)
        self.job.cancel_requested.connect(lambda: self.cancel_requested.emit())

    def along(self) -> str:
        return self.along_combo.currentData()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(560, 320)

    def set_result(self, r: dict) -> None:
        self.result = r
        coords, grid = np.asarray(r["coords"]), np.asarray(r["loss"], np.float64)
        lo, hi = coords[0], coords[-1]
        shown = np.log10(np.clip(grid, 1e-8, None))  # losses span decades; contours read better in log
        finite = shown[np.isfinite(shown)]
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        self.image.setImage(shown.T, levels=(vmin, vmax))  # ImageItem is (x, y); grid[i, j] is (beta_i, alpha_j)
        step = (hi - lo) / max(1, len(coords) - 1)
        self.image.setRect(pg.QtCore.QRectF(lo - step / 2, lo - step / 2, hi - lo + step, hi - lo + step))
        for c in self.contours:
            self.slice_plot.removeItem(c)
        self.contours = []
        for level in np.linspace(vmin, vmax, LEVELS + 2)[1:-1]:
            iso = pg.IsocurveItem(data=shown.T, level=level, pen=pg.mkPen(255, 255, 255, 150))
            iso.setParentItem(self.image)
            self.contours.append(iso)
        path = np.asarray(r.get("path", np.zeros((0, 2))))
        self.path.setData(path[:, 0], path[:, 1]) if len(path) else self.path.setData([], [])
        self.centre.setData(pos=[(0.0, 0.0)])
        self.line_plot.clear()
        self.line_plot.plot(r["line_alpha"], r["line_loss"], pen=pg.mkPen(SELECTION, width=2), symbol="o", symbolSize=4)
        self.line_plot.addItem(pg.InfiniteLine(0.0, pen=pg.mkPen("#bbbbbb")))
        self.line_plot.addItem(pg.InfiniteLine(1.0, pen=pg.mkPen("#bbbbbb")))
        reach = float(np.abs(path).max()) if len(path) else 0.0
        note = ""
        if r.get("along") == "path":
            ratio = np.asarray(r.get("path_ratio", np.zeros(2)))
            note = f"; the two directions hold {100 * ratio.sum():.0f}% of the path's variance"
        elif len(path) and reach < 0.05 * (hi - lo):
            note = "; the path stays near the star: random directions are almost orthogonal to it - try the path's directions"
        self.caption.setText(f"centre loss {r['centre_loss']:.4g} on {r['n_samples']} training samples, "
                             f"{len(coords)}x{len(coords)} grid; path: {max(0, len(path) - 1)} weight snapshots (orange) "
                             f"to the current weights (star); colour: log10 loss{note}")

    def clear(self) -> None:
        self.result = None
        self.image.clear()
        for c in self.contours:
            self.slice_plot.removeItem(c)
        self.contours = []
        self.path.setData([], [])
        self.centre.setData(pos=np.zeros((0, 2)))
        self.line_plot.clear()
        self.job.set_running(False)
        self.caption.setText("Press Compute landscape while or after training")
