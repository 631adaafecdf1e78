"""Decision boundary and neuron pictures over the input plane, in the manner of TensorFlow Playground.

Pure views: they take numpy arrays (from engine.probes, in the worker) and emit user intent.
Grid layout, as engine.probes makes it: ``grid[i, j]`` is the point ``(xs[j], ys[i])`` with
``xs = linspace(xmin, xmax, res)``, so rows follow y (upwards) and columns follow x.

Every plot item is made once; an update is a numpy colour lookup plus ``setImage`` /
``setData``. Qt repaints at most once per frame, so a burst of snapshots costs one paint.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QCheckBox, QComboBox, QGraphicsItem, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from widgets import pyside_fix
from widgets.paint.colorbar import ColorBar, paint_color_strip
from widgets.paint.colormaps import blend_classes, neuron_rgba, symmetric_limit, to_rgba
from widgets.paint.palette import BACKGROUND_ALPHA, TF_BLUE, TF_ORANGE, class_colors, rgb_to_hex

pyside_fix.install()  # PySide6 6.12 on Python 3.11 loses references to True/None on every emit

PCA = "pca"
PCA_LABEL = "PCA (first two components)"
_OUTLINE = QColor("#2b2b2b")  # validation rings: dark edge so a ring reads on its own class colour
_AXIS_PEN = QColor("#9aa0a6")
_TEXT = QColor("#3c4043")


_NO_BRUSH = QBrush(QColor(0, 0, 0, 0))  # hollow: validation rings show the plane through them


def _cosmetic_pen(color: QColor, width: float) -> QPen:
    pen = QPen(color, width)
    pen.setCosmetic(True)
    return pen


def _check_extent(extent) -> tuple[float, float, float, float]:
    try:
        xmin, xmax, ymin, ymax = (float(v) for v in np.asarray(extent, dtype=np.float64).ravel())
    except (TypeError, ValueError):
        raise ValueError(f"extent must be (xmin, xmax, ymin, ymax), got {extent!r}") from None
    if not (np.isfinite([xmin, xmax, ymin, ymax]).all() and xmax > xmin and ymax > ymin):
        raise ValueError(f"extent {extent!r} must be finite with xmax > xmin and ymax > ymin")
    return xmin, xmax, ymin, ymax


def _pixel_rect(extent, shape) -> QRectF:
    """The image rectangle whose pixel centres sit exactly on the grid points of ``extent``."""
    xmin, xmax, ymin, ymax = extent
    rows, cols = shape[0], shape[1]
    dx = (xmax - xmin) / max(cols - 1, 1)
    dy = (ymax - ymin) / max(rows - 1, 1)
    return QRectF(xmin - dx / 2, ymin - dy / 2, (xmax - xmin) + dx, (ymax - ymin) + dy)



class SmoothImageItem(pg.ImageItem):
    """An ImageItem drawn with bilinear filtering: a 100 x 100 grid shown large looks smooth, as in
    TF Playground, instead of a staircase of cells. The data stay exact; only the painting blends."""

    def paint(self, painter, *args) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        super().paint(painter, *args)


class _SquareHolder(QWidget):
    """Keeps the plot's data area square and centred (the input plane is square), whatever the dock's shape.

    The view range is exactly the extent, so there is no empty band beside the picture, and
    locking the aspect ratio is not needed.
    """

    def __init__(self, plot: pg.PlotWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self.plot = plot
        plot.setParent(self)
        self.setMinimumSize(160, 160)
        self._extras = (60.0, 48.0)  # axis and margin space around the data area, measured on first layout
        plot.getPlotItem().getViewBox().sigResized.connect(self._on_view_resized)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(420, 420)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit()

    def _on_view_resized(self) -> None:
        vb = self.plot.getPlotItem().getViewBox()
        r = vb.sceneBoundingRect()
        if r.width() > 0 and r.height() > 0:
            extras = (self.plot.width() - r.width(), self.plot.height() - r.height())
            if extras != self._extras:  # first real layout (or new axis sizes): refit once with the measured margins
                self._extras = extras
                self._fit()

    def _fit(self) -> None:
        extra_w, extra_h = self._extras
        side = max(min(self.width() - extra_w, self.height() - extra_h), 20)
        w, h = round(side + extra_w), round(side + extra_h)
        self.plot.setGeometry((self.width() - w) // 2, (self.height() - h) // 2, w, h)


_PLOT_MARGINS = (2, 6, 10, 2)  # left, top, right, bottom of the PlotItem inside its view


def _make_plot(parent: QWidget, left_width: int = 46, bottom_height: int = 38) -> pg.PlotWidget:
    plot = pg.PlotWidget(parent, background="w")
    plot.setFrameShape(plot.Shape.NoFrame)
    item = plot.getPlotItem()
    item.setContentsMargins(*_PLOT_MARGINS)
    item.layout.setContentsMargins(0, 0, 0, 0)
    item.hideButtons()
    item.setMenuEnabled(True)  # keeps pyqtgraph's "Export..." for a PNG/SVG of the plane
    vb = item.getViewBox()
    vb.disableAutoRange()
    vb.setDefaultPadding(0.0)
    for name in ("left", "bottom"):
        ax = item.getAxis(name)
        ax.setPen(_AXIS_PEN)
        ax.setTextPen(_TEXT)
        ax.setStyle(tickLength=-4)
        ax.enableAutoSIPrefix(False)
    item.getAxis("left").setWidth(left_width)
    item.getAxis("bottom").setHeight(bottom_height)
    return plot


class _ColorKey(QWidget):
    """The key under the plane: a p(class 1) gradient (2 classes) or class swatches, plus marker styles."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.names: list[str] = ["class 0", "class 1"]
        self.colors: list[QColor] = [QColor(TF_BLUE), QColor(TF_ORANGE)]
        self.show_markers = True
        self.setMinimumHeight(34)

    def set_classes(self, names: list[str], colors: np.ndarray) -> None:
        self.names = list(names)
        self.colors = [QColor(rgb_to_hex(c)) for c in colors]
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(320, 36)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(self.font())
        font.setPointSizeF(max(font.pointSizeF() - 1, 7))
        p.setFont(font)
        fm = p.fontMetrics()
        h = self.height()
        right = self.width() - 6
        if self.show_markers:
            right = self._paint_markers(p, fm, h) - 14
        if len(self.names) == 2:
            self._paint_gradient(p, fm, h, right)
        else:
            self._paint_swatches(p, fm, h, right)
        p.end()

    def _paint_gradient(self, p: QPainter, fm, h: int, right: int) -> None:
        left_name, right_name = self.names
        x0 = 6 + fm.horizontalAdvance(left_name) + 8
        x1 = min(right - fm.horizontalAdvance(right_name) - 8, x0 + 360)  # a key, not a banner
        if x1 - x0 < 40:
            x0, x1 = 6, right
            left_name = right_name = ""
        bar = QRectF(x0, 5, x1 - x0, 10)
        paint_color_strip(p, bar, "plane")
        p.setPen(_TEXT)
        baseline = bar.center().y() + fm.ascent() / 2 - 1
        p.drawText(QPointF(6, baseline), left_name)
        p.drawText(QPointF(x1 + 8, baseline), right_name)
        ty = bar.bottom() + fm.ascent() + 2
        for t, label in ((0.0, "0"), (0.5, "0.5"), (1.0, "1")):
            x = bar.left() + t * bar.width()
            p.drawLine(QPointF(x, bar.bottom()), QPointF(x, bar.bottom() + 2))
            w = fm.horizontalAdvance(label)
            p.drawText(QPointF(min(max(x - w / 2, bar.left()), bar.right() - w), ty), label)
        cap = f"p({self.names[1]})"
        if bar.width() > 4 * fm.horizontalAdvance(cap):  # room for a caption between the ticks
            p.setPen(QColor("#80868b"))
            p.drawText(QPointF(bar.left() + 0.75 * bar.width() - fm.horizontalAdvance(cap) / 2, ty), cap)

    def _paint_swatches(self, p: QPainter, fm, h: int, right: int) -> None:
        x, y = 6.0, h / 2
        for name, color in zip(self.names, self.colors, strict=False):
            w = 14 + fm.horizontalAdvance(name) + 12
            if x + w > right:
                p.setPen(_TEXT)
                p.drawText(QPointF(x, y + fm.ascent() / 2 - 1), "…")
                break
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(color)
            p.drawRoundedRect(QRectF(x, y - 5, 10, 10), 2, 2)
            p.setPen(_TEXT)
            p.drawText(QPointF(x + 14, y + fm.ascent() / 2 - 1), name)
            x += w

    def _paint_markers(self, p: QPainter, fm, h: int) -> int:
        y = h / 2
        labels = ("train", "validation")
        width = 12 + fm.horizontalAdvance(labels[0]) + 14 + 12 + fm.horizontalAdvance(labels[1])
        x = self.width() - 6 - width
        grey = QColor("#5f6368")
        p.setPen(QPen(QColor("white"), 1.2))
        p.setBrush(grey)
        p.drawEllipse(QPointF(x + 4, y), 4, 4)
        p.setPen(_TEXT)
        p.drawText(QPointF(x + 12, y + fm.ascent() / 2 - 1), labels[0])
        x2 = x + 12 + fm.horizontalAdvance(labels[0]) + 14
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(_OUTLINE, 3.2))
        p.drawEllipse(QPointF(x2 + 4, y), 4, 4)
        p.setPen(QPen(grey.lighter(160), 1.6))
        p.drawEllipse(QPointF(x2 + 4, y), 4, 4)
        p.setPen(_TEXT)
        p.drawText(QPointF(x2 + 12, y + fm.ascent() / 2 - 1), labels[1])
        return int(x)


class BoundaryView(QWidget):
    """Class probabilities over the input plane with the training (filled) and validation (hollow) points.

    Two classes: a diverging map of p(class 1), blue - white - orange. More classes: class
    colours mixed by probability, paler where the model is unsure. Data with more than two
    features gets a chooser for the plane: two features, or the first two principal components.
    """

    projection_changed = Signal(object)  # (i, j) feature indices or "pca"
    probe_moved = Signal(float, float)  # the what-if probe was dragged to this plane point

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._probs: np.ndarray | None = None
        self._extent: tuple[float, float, float, float] | None = None
        self._image_shape: tuple[int, int] | None = None
        self._rgba: np.ndarray | None = None
        self._feature_names: list[str] = []
        self._class_names: list[str] = []
        self._labels_overridden = False
        self._projection: object = (0, 1)
        self._last_points: tuple | None = None
        self._n_classes = 2
        self._colors = class_colors(2)

        self._build_projection_row()
        self._build_plot()
        self.key = _ColorKey(self)
        self.show_validation_check = QCheckBox("Show validation points", self)
        self.show_validation_check.setChecked(True)
        self.show_validation_check.setToolTip("Draw the held-out points (hollow rings) on top of the training points")
        self.discretize_check = QCheckBox("Discretize output", self)
        self.discretize_check.setToolTip("Paint each point of the plane in the colour of its most likely class")
        self.readout = QLabel(self)
        self.readout.setStyleSheet("color:#5f6368")
        self.readout.setMinimumWidth(10)

        options = QHBoxLayout()
        options.setContentsMargins(0, 0, 0, 0)
        options.addWidget(self.show_validation_check)
        options.addWidget(self.discretize_check)
        options.addStretch(1)
        options.addWidget(self.readout)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)
        lay.addWidget(self.projection_row)
        lay.addWidget(self.plot_box, 1)
        lay.addWidget(self.key)
        lay.addLayout(options)

        self.show_validation_check.toggled.connect(self._on_show_validation_toggled)
        self.discretize_check.toggled.connect(self._on_discretize_toggled)
        self.plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self.set_projection_enabled(False)
        self._apply_axis_labels()

    # ---- construction ----------------------------------------------------------------------
    def _build_projection_row(self) -> None:
        self.projection_row = QWidget(self)
        self.plane_combo = QComboBox(self.projection_row)
        self.plane_combo.addItems(["Two features", PCA_LABEL])
        self.plane_combo.setToolTip("Which plane through the input space to draw: two of the features "
                                    "(the others held at their training mean) or the first two principal components")
        self.x_combo = QComboBox(self.projection_row)
        self.y_combo = QComboBox(self.projection_row)
        self.x_combo.setToolTip("Feature on the horizontal axis")
        self.y_combo.setToolTip("Feature on the vertical axis")
        row = QHBoxLayout(self.projection_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Plane", self.projection_row))
        row.addWidget(self.plane_combo)
        row.addSpacing(8)
        row.addWidget(QLabel("x", self.projection_row))
        row.addWidget(self.x_combo, 1)
        row.addWidget(QLabel("y", self.projection_row))
        row.addWidget(self.y_combo, 1)
        self.plane_combo.currentIndexChanged.connect(self._on_plane_combo_changed)
        self.x_combo.currentIndexChanged.connect(self._on_x_combo_changed)
        self.y_combo.currentIndexChanged.connect(self._on_y_combo_changed)

    def _build_plot(self) -> None:
        self.plot = _make_plot(self)
        self.plot_box = _SquareHolder(self.plot, self)
        self.image_item = SmoothImageItem(axisOrder="row-major")
        self.image_item.setZValue(-10)
        # One scatter item per class and role, each with a single pen and brush: per-point brush
        # lists make ScatterPlotItem.setData ~7x slower. Items are made on first need and reused.
        self.train_items: list[pg.ScatterPlotItem] = []
        self.val_items: list[pg.ScatterPlotItem] = []
        # A validation ring is drawn twice: a wide dark stroke under all rings, then the class colour.
        self.val_outline_item = pg.ScatterPlotItem(size=8, pxMode=True, antialias=True, brush=_NO_BRUSH,
                                                   pen=_cosmetic_pen(_OUTLINE, 3.2))
        self.val_outline_item.setZValue(2)
        self.val_outline_item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.plot.addItem(self.val_outline_item)
        self.plot.addItem(self.image_item)
        self.placeholder = pg.TextItem("The decision boundary appears here\nwhen the network trains",
                                       color="#80868b", anchor=(0.5, 0.5))
        self.plot.addItem(self.placeholder)
        self.plot.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
        # the what-if probe: drag it and every layer's activation for that point lights up on the canvas
        self.probe = pg.TargetItem(pos=(0.0, 0.0), size=14, movable=True, pen=pg.mkPen("#202124", width=2),
                                   label="probe", labelOpts={"color": "#202124", "offset": (8, -14)})
        self.probe.setZValue(20)
        self.probe.hide()
        self.probe.sigPositionChanged.connect(lambda item: self.probe_moved.emit(float(item.pos().x()),
                                                                                  float(item.pos().y())))
        self.plot.addItem(self.probe)

    def set_probe(self, x: float, y: float) -> None:
        """Move the probe (as a drag does: ``probe_moved`` follows)."""
        self.probe.show()
        self.probe.setPos(x, y)

    # ---- public API -------------------------------------------------------------------------
    def set_boundary(self, probs: np.ndarray, extent) -> None:
        """Show class probabilities ``probs`` (res, res, k) over ``extent`` = (xmin, xmax, ymin, ymax).

        A (res, res) or (res, res, 1) array is read as p(class 1) of a binary problem.
        """
        p = np.asarray(probs, dtype=np.float32)
        if p.ndim == 2:
            p = p[..., None]
        if p.ndim != 3 or p.shape[0] < 2 or p.shape[1] < 2 or p.shape[2] < 1:
            raise ValueError(f"boundary probabilities must be (res, res, classes), got shape {np.shape(probs)}")
        if p.shape[2] == 1:
            p = np.concatenate([1.0 - p, p], axis=2)
        ext = _check_extent(extent)
        self._probs = p
        self.placeholder.hide()
        self.probe.show()
        if p.shape[2] != self._n_classes:
            self._set_class_count(p.shape[2], self._class_names)
        self._render_image()
        shape = p.shape[:2]
        if ext != self._extent or shape != self._image_shape:
            self._extent, self._image_shape = ext, shape
            self.image_item.setRect(_pixel_rect(ext, shape))
            self.plot.setRange(xRange=(ext[0], ext[1]), yRange=(ext[2], ext[3]), padding=0)

    def set_points(self, train_xy, train_y, val_xy=None, val_y=None, class_names=None) -> None:
        """Training points (filled) and validation points (hollow rings) in plane coordinates."""
        tr_xy, tr_y = self._check_points(train_xy, train_y, "training")
        va_xy, va_y = self._check_points(val_xy, val_y, "validation")
        names = [str(n) for n in class_names] if class_names is not None else None
        key = (tr_xy, tr_y, va_xy, va_y, names)
        if self._last_points is not None and _same_points(self._last_points, key):
            return  # probes send the same cached arrays every snapshot: skip the re-layout
        self._last_points = key
        k = max(len(names) if names else 0, int(max(tr_y.max(initial=-1), va_y.max(initial=-1))) + 1, 2)
        if names is None:
            k = max(k, self._n_classes)  # a sample without the last class does not make the class go away
        if names is not None or k != self._n_classes:
            self._set_class_count(k, names or self._class_names)
            self._render_image()
        n_items = max(self._n_classes, int(tr_y.max(initial=0)) + 1, int(va_y.max(initial=0)) + 1)
        self._ensure_point_items(n_items)
        for c in range(len(self.train_items)):
            self.train_items[c].setData(pos=tr_xy[tr_y == c])
            self.val_items[c].setData(pos=va_xy[va_y == c])
        self.val_outline_item.setData(pos=va_xy)
        if self._extent is None and len(tr_xy) + len(va_xy):
            both = np.concatenate([tr_xy, va_xy])
            m = float(np.abs(both[np.isfinite(both).all(axis=1)]).max(initial=1.0)) * 1.1
            self.plot.setRange(xRange=(-m, m), yRange=(-m, m), padding=0)

    def set_feature_names(self, names) -> None:
        """Feature names for the plane chooser and axis labels; > 2 features shows the chooser (PCA first)."""
        self._feature_names = [str(n) for n in names]
        n = len(self._feature_names)
        for combo in (self.x_combo, self.y_combo):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(self._feature_names)
            combo.blockSignals(False)
        self._projection = PCA if n > 2 else (0, 1)
        self._sync_combos()
        self.set_projection_enabled(n > 2)
        self._labels_overridden = False
        self._apply_axis_labels()

    def set_projection_enabled(self, enabled: bool) -> None:
        """Show the plane chooser (data with more than two features) or hide it (2-D data)."""
        self.projection_row.setVisible(bool(enabled))

    def set_projection(self, projection) -> None:
        """Select ``(i, j)`` or ``"pca"`` without emitting projection_changed (e.g. restoring a session)."""
        self._projection = self._normalise_projection(projection)
        self._sync_combos()
        self._labels_overridden = False
        self._apply_axis_labels()

    def projection(self):
        """The plane shown: ``(i, j)`` feature indices or ``"pca"``."""
        return self._projection

    def set_axis_labels(self, xlabel: str, ylabel: str) -> None:
        """Axis titles (e.g. the probes' 'PC1 (73% of variance)'); reset when the plane changes."""
        self._labels_overridden = True
        self.plot.setLabel("bottom", str(xlabel), color=_TEXT.name())
        self.plot.setLabel("left", str(ylabel), color=_TEXT.name())

    def set_show_validation(self, show: bool) -> None:
        self.show_validation_check.setChecked(bool(show))

    def set_discretize(self, on: bool) -> None:
        self.discretize_check.setChecked(bool(on))

    def image_rgba(self) -> np.ndarray | None:
        """The (res, res, 4) uint8 picture currently shown (rows follow y), or None."""
        return self._rgba

    def clear(self) -> None:
        """Forget the boundary and the points (e.g. a new dataset)."""
        self._probs = self._rgba = None
        self._extent = self._image_shape = None
        self._last_points = None
        self.image_item.clear()
        self.placeholder.show()
        self.probe.hide()
        self.plot.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
        for it in (*self.train_items, self.val_outline_item, *self.val_items):
            it.clear()
        self.readout.clear()

    # ---- internals --------------------------------------------------------------------------
    @staticmethod
    def _check_points(xy, y, what: str) -> tuple[np.ndarray, np.ndarray]:
        if xy is None:
            return np.zeros((0, 2), np.float64), np.zeros(0, np.intp)
        xy = np.asarray(xy, dtype=np.float64)
        y = np.zeros(len(xy), np.intp) if y is None else np.asarray(y).ravel()
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"{what} points must be (N, 2) plane coordinates, got shape {xy.shape}")
        if len(y) != len(xy):
            raise ValueError(f"{what} points: {len(xy)} points but {len(y)} labels")
        y = np.clip(np.nan_to_num(y.astype(np.float64), nan=0.0), 0, None).astype(np.intp)
        return xy, y

    def _set_class_count(self, k: int, names) -> None:
        self._n_classes = int(k)
        self._colors = class_colors(self._n_classes)
        names = list(names or [])
        self._class_names = [names[i] if i < len(names) else f"class {i}" for i in range(self._n_classes)]
        self.key.set_classes(self._class_names, self._colors)

    def _ensure_point_items(self, k: int) -> None:
        while len(self.train_items) < k:
            c = len(self.train_items)
            tr = pg.ScatterPlotItem(size=7, pxMode=True, antialias=True, pen=_cosmetic_pen(QColor("white"), 1.2))
            va = pg.ScatterPlotItem(size=8, pxMode=True, antialias=True, brush=_NO_BRUSH)
            tr.setZValue(1)
            va.setZValue(3)
            for item in (tr, va):
                # the points stay put while the heatmap under them changes ~10 times/s: repaint
                # them from a cached pixmap instead of redrawing hundreds of antialiased symbols
                item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
            va.setVisible(self.show_validation_check.isChecked())
            self.plot.addItem(tr)
            self.plot.addItem(va)
            self.train_items.append(tr)
            self.val_items.append(va)
            self._color_point_items(c)

    def _color_point_items(self, c: int) -> None:
        color = QColor(rgb_to_hex(class_colors(c + 1)[c]))
        self.train_items[c].setBrush(QBrush(color))
        self.val_items[c].setPen(_cosmetic_pen(color, 1.7))

    def _render_image(self) -> None:
        p = self._probs
        if p is None:
            return
        k = p.shape[2]
        if self.discretize_check.isChecked() or k > 2:
            rgba = blend_classes(p, class_colors(k), BACKGROUND_ALPHA, discretize=self.discretize_check.isChecked())
        else:
            rgba = to_rgba(p[..., 1], "plane", 0.0, 1.0)
        self._rgba = rgba
        self.image_item.setImage(rgba, autoLevels=False)

    def _normalise_projection(self, projection):
        if isinstance(projection, str) and projection.lower() == PCA:
            return PCA
        try:
            i, j = (int(v) for v in projection)
        except (TypeError, ValueError):
            raise ValueError(f"projection must be (i, j) feature indices or 'pca', got {projection!r}") from None
        return (i, j)

    def _sync_combos(self) -> None:
        for combo in (self.plane_combo, self.x_combo, self.y_combo):
            combo.blockSignals(True)
        pca = self._projection == PCA
        self.plane_combo.setCurrentIndex(1 if pca else 0)
        i, j = (0, 1) if pca else self._projection
        self.x_combo.setCurrentIndex(i if i < self.x_combo.count() else -1)
        self.y_combo.setCurrentIndex(j if j < self.y_combo.count() else -1)
        self.x_combo.setEnabled(not pca)
        self.y_combo.setEnabled(not pca)
        for combo in (self.plane_combo, self.x_combo, self.y_combo):
            combo.blockSignals(False)

    def _feature_label(self, i: int) -> str:
        return self._feature_names[i] if 0 <= i < len(self._feature_names) else f"x{i + 1}"

    def _apply_axis_labels(self) -> None:
        if self._labels_overridden:
            return
        if self._projection == PCA:
            xl, yl = "PC1", "PC2"
        else:
            xl, yl = (self._feature_label(i) for i in self._projection)
        self.plot.setLabel("bottom", xl, color=_TEXT.name())
        self.plot.setLabel("left", yl, color=_TEXT.name())

    def _change_projection(self, projection) -> None:
        if projection == self._projection:
            return
        self._projection = projection
        self._sync_combos()
        self._labels_overridden = False
        self._apply_axis_labels()
        self.projection_changed.emit(projection)

    # ---- handlers ---------------------------------------------------------------------------
    def _on_plane_combo_changed(self, index: int) -> None:
        if index == 1:
            self._change_projection(PCA)
        else:
            i, j = max(self.x_combo.currentIndex(), 0), max(self.y_combo.currentIndex(), 0)
            self._change_projection((i, j if j != i else (i + 1) % max(self.y_combo.count(), 2)))

    def _on_x_combo_changed(self, index: int) -> None:
        if self._projection == PCA or index < 0:
            return
        i, j = self._projection
        # picking the feature already on the other axis swaps the axes rather than making a line
        self._change_projection((index, i if index == j else j))

    def _on_y_combo_changed(self, index: int) -> None:
        if self._projection == PCA or index < 0:
            return
        i, j = self._projection
        self._change_projection((j if index == i else i, index))

    def _on_show_validation_toggled(self, checked: bool) -> None:
        for it in (self.val_outline_item, *self.val_items):
            it.setVisible(checked)

    def _on_discretize_toggled(self, checked: bool) -> None:
        self._render_image()

    def _on_scene_mouse_moved(self, pos) -> None:
        if self._probs is None or self._extent is None or not self.plot.sceneBoundingRect().contains(pos):
            self.readout.clear()
            return
        pt = self.plot.getPlotItem().getViewBox().mapSceneToView(pos)
        xmin, xmax, ymin, ymax = self._extent
        rows, cols = self._probs.shape[:2]
        j = int(round((pt.x() - xmin) / (xmax - xmin) * (cols - 1)))
        i = int(round((pt.y() - ymin) / (ymax - ymin) * (rows - 1)))
        if not (0 <= i < rows and 0 <= j < cols):
            self.readout.clear()
            return
        pr = self._probs[i, j]
        c = int(pr.argmax())
        name = self._class_names[c] if c < len(self._class_names) else f"class {c}"
        self.readout.setText(f"({pt.x():.2f}, {pt.y():.2f})  {name} {100 * pr[c]:.0f}%")


def _same_points(a: tuple, b: tuple) -> bool:
    for u, v in zip(a[:4], b[:4], strict=True):
        if u is not v and (u.shape != v.shape or not np.array_equal(u, v)):
            return False
    return a[4] == b[4]


class NeuronMapView(QWidget):
    """One unit's output over the input plane, symmetric diverging colours around zero (TF Playground).

    Without a map (nothing hovered yet, or image data, which has no 2-D input plane) it says what
    it is for instead of showing an empty plot.
    """

    PLACEHOLDER = ("Hover a unit in a Dense layer's card to see what it responds to \u2013 "
                   "available for 2-D data")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._rgba: np.ndarray | None = None
        self._extent = None
        self._shape = None
        self.limit = 1.0
        self.title_label = QLabel(self)
        font = QFont(self.title_label.font())
        font.setBold(True)
        self.title_label.setFont(font)
        self.title_label.setStyleSheet("color:#3c4043")
        self.plot = _make_plot(self, left_width=30, bottom_height=24)
        self.plot_box = _SquareHolder(self.plot, self)
        self.plot_box.setMinimumSize(100, 100)
        self.image_item = SmoothImageItem(axisOrder="row-major")
        self.plot.addItem(self.image_item)
        self.plot.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
        self.key = ColorBar(self, cmap="plane", small=True)
        self.placeholder = QLabel(self.PLACEHOLDER, self)
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color:#80868b; padding: 16px;")
        self.placeholder.setMinimumWidth(120)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(2)
        lay.addWidget(self.title_label)
        lay.addWidget(self.plot_box, 1)
        lay.addWidget(self.key)
        lay.addWidget(self.placeholder, 1)
        self.clear()

    def set_map(self, values: np.ndarray, extent, title: str = "", limit: float | None = None) -> None:
        """Show ``values`` (res, res) over ``extent``; colours span ±``limit`` (default: max |v|).

        Pass ``limit`` for bounded outputs (1 for tanh) so a small output looks small; leave it
        None for unbounded ones (ReLU, linear) so the picture uses the whole colour range.
        """
        v = np.asarray(values, dtype=np.float32)
        if v.ndim != 2 or v.shape[0] < 2 or v.shape[1] < 2:
            raise ValueError(f"a neuron map must be a (res, res) grid, got shape {np.shape(values)}")
        ext = _check_extent(extent)
        m = float(limit) if limit is not None and float(limit) > 0 else symmetric_limit(v, floor=1e-6)
        self.limit = m
        self._rgba = neuron_rgba(v, m)
        self.image_item.setImage(self._rgba, autoLevels=False)
        if ext != self._extent or v.shape != self._shape:
            self._extent, self._shape = ext, v.shape
            self.image_item.setRect(_pixel_rect(ext, v.shape))
            self.plot.setRange(xRange=(ext[0], ext[1]), yRange=(ext[2], ext[3]), padding=0)
        self.title_label.setText(str(title))
        self.key.set_range(-m, m)
        self._show_map(True)

    def image_rgba(self) -> np.ndarray | None:
        return self._rgba

    def has_map(self) -> bool:
        return self._rgba is not None

    def set_placeholder(self, text: str) -> None:
        """What the empty view says (the app may explain why there is no map, e.g. for image data)."""
        self.placeholder.setText(text)

    def clear(self) -> None:
        self._rgba = None
        self.image_item.clear()
        self.title_label.setText("")
        self.key.set_range(None, None)
        self._show_map(False)

    def _show_map(self, shown: bool) -> None:
        for w in (self.title_label, self.plot_box, self.key):
            w.setVisible(shown)
        self.placeholder.setVisible(not shown)
