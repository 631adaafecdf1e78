"""The Embedding view: validation samples placed by their activations at one layer, in 2-D.

PCA follows training live; t-SNE is computed on demand (progress and Cancel) and then shown
until the layer changes or PCA is chosen again. Points are coloured by class; clicking one
shows that sample (its picture, or its feature values) and emits ``sample_clicked``.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from widgets.paint.colormaps import lut
from widgets.paint.images import image_to_argb, qimage
from widgets.paint.palette import SELECTION, class_colors
from widgets.views.analysis_common import JobRow

SHADES = 8  # colour steps for a continuous target (quantiles of the validation targets)


class EmbeddingView(QWidget):
    layer_changed = Signal(object)  # layer id, or None for the default (the layer before the Output)
    tsne_requested = Signal(object)  # layer id
    cancel_requested = Signal()
    sample_clicked = Signal(int)  # index into the validation set

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._values: np.ndarray | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        top.addWidget(QLabel("Layer"))
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Whose activations place the points (default: the layer before the Output)")
        top.addWidget(self.layer_combo, 1)
        top.addWidget(QLabel("Method"))
        self.method_combo = QComboBox()
        self.method_combo.addItems(["PCA (live)", "t-SNE"])
        top.addWidget(self.method_combo)
        lay.addLayout(top)
        self.job = JobRow("Compute t-SNE", "t-SNE of this layer's activations (a few seconds; training goes on)")
        lay.addWidget(self.job)
        body = QHBoxLayout()
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.getPlotItem().setAspectLocked(False)
        self.scatter = pg.ScatterPlotItem(size=7, pen=pg.mkPen("w", width=0.5), hoverable=True)
        self.marker = pg.ScatterPlotItem(size=14, pen=pg.mkPen(SELECTION, width=2), brush=None)
        self.plot.addItem(self.scatter)
        self.plot.addItem(self.marker)
        body.addWidget(self.plot, 3)
        side = QVBoxLayout()
        self.sample_image = QLabel()
        self.sample_image.setFixedSize(96, 96)
        self.sample_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample_text = QLabel("Click a point to see its sample")
        self.sample_text.setWordWrap(True)
        self.sample_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        side.addWidget(self.sample_image)
        side.addWidget(self.sample_text, 1)
        body.addLayout(side, 1)
        lay.addLayout(body, 1)
        self.caption = QLabel("")
        self.caption.setStyleSheet("color: #5f6368")
        lay.addWidget(self.caption)
        self._pts = np.zeros((0, 2), np.float32)
        self._index = np.zeros(0, np.int64)
        self._labels = np.zeros(0, np.int64)
        self._names: list[str] = []
        self._features: np.ndarray | None = None
        self._feature_names: list[str] = []
        self._images: np.ndarray | None = None
        self.selected: int | None = None
        self.method = "PCA"
        self._shown_method = ""
        self.layer_combo.currentIndexChanged.connect(self._on_layer_combo_changed)
        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        self.job.start_requested.connect(lambda: self.tsne_requested.emit(self.layer()))
        self.job.cancel_requested.connect(lambda: self.cancel_requested.emit())
        self.scatter.sigClicked.connect(self._on_scatter_clicked)
        self._on_method_changed(0)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(420, 320)

    # ---- inputs --------------------------------------------------------------------------------
    def set_layers(self, ids: list[str], labels: list[str] | None = None) -> None:
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItem("before the Output", None)
        for lid, text in zip(ids, labels or ids, strict=True):
            self.layer_combo.addItem(text, lid)
        self.layer_combo.blockSignals(False)

    def layer(self):
        return self.layer_combo.currentData()

    def set_data(self, labels: np.ndarray, class_names: list[str], images: np.ndarray | None = None,
                 feature_names: list[str] | None = None) -> None:
        y = np.asarray(labels)
        self._values = None  # regression / sequence targets: points are coloured by value, in SHADES steps
        if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
            self._all_labels = y.astype(np.int64)
        else:
            v = y.reshape(len(y), -1)[:, 0].astype(np.float64) if len(y) else np.zeros(0)
            edges = np.quantile(v, np.linspace(0, 1, SHADES + 1)[1:-1]) if len(v) else np.zeros(0)
            self._values, self._all_labels = v, np.searchsorted(edges, v).astype(np.int64)
        self._names = list(class_names)
        self._images = images
        self._feature_names = list(feature_names or [])

    def set_points(self, points: np.ndarray, index: np.ndarray, method: str, layer: str, ratio=None,
                   features: np.ndarray | None = None) -> None:
        """Show ``points`` (N, 2) of validation samples ``index`` (N,); PCA updates are ignored while t-SNE is shown."""
        if method == "PCA" and self.method != "PCA":
            return
        pts = np.asarray(points, np.float32).reshape(-1, 2)
        if method == self._shown_method and pts.shape == self._pts.shape and np.array_equal(pts, self._pts) \
                and np.array_equal(index, self._index):
            return  # the worker sent its cached result again: nothing to redraw
        self._shown_method = method
        self._pts, self._index = pts, np.asarray(index, np.int64)
        if features is not None:
            self._features = np.asarray(features, np.float32)
        labels = getattr(self, "_all_labels", np.zeros(0, np.int64))
        self._labels = labels[self._index] if len(labels) >= len(self._index) else np.zeros(len(self._index), np.int64)
        if self._values is None:
            colors = class_colors(int(self._labels.max()) + 1 if len(self._labels) else 1)
        else:  # low target values dark, high ones bright
            colors = lut("viridis", SHADES)[:, :3]
        # one brush object per class: pyqtgraph then skips building a brush per point
        brushes = [pg.mkBrush(*c) for c in colors]
        self.scatter.setData(pos=pts, brush=[brushes[c] for c in self._labels], data=np.arange(len(pts)))
        what = f"PCA ({100 * ratio[0]:.0f}% + {100 * ratio[1]:.0f}% of variance)" if method == "PCA" and ratio is not None \
            else method
        self.caption.setText(f"{len(pts)} validation samples at {layer} - {what}")
        self._update_marker()

    def show_tsne(self, points: np.ndarray, index: np.ndarray, layer: str) -> None:
        self.method_combo.blockSignals(True)
        self.method_combo.setCurrentIndex(1)
        self.method_combo.blockSignals(False)
        self.method = "t-SNE"
        self.set_points(points, index, "t-SNE", layer)

    # ---- selection -----------------------------------------------------------------------------
    def _on_layer_combo_changed(self, _i: int) -> None:
        self.method_combo.setCurrentIndex(0)  # a t-SNE of another layer is stale: back to the live PCA
        self.layer_changed.emit(self.layer())

    def _on_method_changed(self, i: int) -> None:
        self.method = "PCA" if i == 0 else "t-SNE"
        self.job.setVisible(i == 1)

    def _on_scatter_clicked(self, _item, points, *args) -> None:
        if len(points):
            self.select_point(int(points[0].data()))

    def point_positions(self) -> np.ndarray:
        return self._pts

    def select_point(self, i: int) -> None:
        """Show point ``i``'s sample (as a click does) and emit its validation index."""
        if not 0 <= i < len(self._index):
            return
        self.selected = int(self._index[i])
        lab = int(self._labels[i])
        if self._values is not None:
            name = f"target {self._values[self.selected]:.4g}" if self.selected < len(self._values) else ""
        else:
            name = self._names[lab] if lab < len(self._names) else str(lab)
        lines = [f"sample {self.selected}: {name}"]
        if self._images is not None and self.selected < len(self._images):
            from PySide6.QtGui import QPixmap

            img = qimage(image_to_argb(self._images[self.selected]))
            self.sample_image.setPixmap(QPixmap.fromImage(img).scaled(96, 96, Qt.AspectRatioMode.KeepAspectRatio))
        elif self._features is not None and i < len(self._features):
            self.sample_image.clear()
            for k, v in enumerate(self._features[i]):
                fname = self._feature_names[k] if k < len(self._feature_names) else f"x{k + 1}"
                lines.append(f"{fname} = {v:.3g}")
        self.sample_text.setText("\n".join(lines))
        self._update_marker()
        self.sample_clicked.emit(self.selected)

    def _update_marker(self) -> None:
        if self.selected is None:
            self.marker.setData(pos=np.zeros((0, 2)))
            return
        hit = np.flatnonzero(self._index == self.selected)
        self.marker.setData(pos=self._pts[hit[:1]] if len(hit) else np.zeros((0, 2)))

    def clear(self) -> None:
        self._shown_method = ""
        self.scatter.setData(pos=np.zeros((0, 2)))
        self._pts = np.zeros((0, 2), np.float32)
        self._index = np.zeros(0, np.int64)
        self.selected = None
        self._update_marker()
        self.caption.setText("")
        self.sample_text.setText("Click a point to see its sample")
        self.sample_image.clear()
        self.job.set_running(False)
