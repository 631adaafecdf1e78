"""The Compare dock (issue 12): choose what to vary, then watch the variants train side by side.

Plain data in, user intent out (app.compare is the controller). The dock holds:

* the sweep: one or two settings (``set_settings`` takes engine.variants.sweepable_settings'
  dicts) with their values as text ("0.01, 0.03, 0.1"), Train all / Pause / Step / Stop all;
* a grid of small multiples, one tile per variant at its (row, column), labelled with the values
  that differ: a decision boundary (``set_boundary``) or a confusion matrix (``set_confusion``);
* validation loss and accuracy of every variant overlaid, one colour per variant;
* a sortable table (values, parameters, MACs, best validation accuracy and loss, epoch of the
  best, time, state) and a scatter of validation error vs cost with the Pareto front marked.

Clicking a tile, a row or a point selects the variant (``variant_selected``); "Stop variant" and
"Use this variant" act on the selection. Nothing here knows torch or the engine.
"""
from __future__ import annotations

import csv
import math
import os

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from widgets import pyside_fix
from widgets.paint.colormaps import blend_classes, to_rgba
from widgets.paint.images import fitted_rect
from widgets.paint.palette import SELECTION_COLOR, class_colors

pyside_fix.install()

# one colour per variant (up to 16): Tableau 10, then six more that stay apart from them
VARIANT_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                  "#9c755f", "#bab0ac", "#1f3b73", "#8c564b", "#17becf", "#bcbd22", "#7f7f7f", "#d62728")
NONE = ""  # the second setting's "nothing" entry
_TEXT = "#3c4043"
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
INDEX_ROLE = Qt.ItemDataRole.UserRole + 2
COST_NAMES = {"macs": "MACs per sample", "params": "parameters"}


def variant_color(i: int) -> QColor:
    return QColor(VARIANT_COLORS[i % len(VARIANT_COLORS)])


def _fmt(v: float, pct: bool = False, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if pct:
        return f"{100 * v:.1f} %"
    if isinstance(v, int) or float(v).is_integer() and abs(v) >= 1:
        return f"{int(v):,}"
    return f"{v:.{digits}g}"


class _Item(QTableWidgetItem):
    """A cell that sorts by its number (SORT_ROLE), NaN last, text otherwise."""

    def __lt__(self, other) -> bool:  # noqa: D105 - Qt override
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            a = math.inf if a != a else a
            b = math.inf if b != b else b
            return a < b
        return str(self.text()) < str(other.text())


class VariantTile(QFrame):
    """One variant's picture with its label above it; a coloured edge names its colour."""

    clicked = Signal(int)

    def __init__(self, index: int, label: str, color: QColor, parent: QWidget | None = None):
        super().__init__(parent)
        self.index = index
        self.label = label
        self.color = color
        self.state = ""
        self.selected = False
        self.rgba: np.ndarray | None = None  # the picture shown (H, W, 4) uint8, rows top first
        self._image = None
        self.setMinimumSize(84, 104)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip(label)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(130, 150)

    def set_rgba(self, rgba: np.ndarray) -> None:
        a = np.ascontiguousarray(rgba, dtype=np.uint8)
        self.rgba = a
        h, w = a.shape[:2]
        self._image = QImage(a.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        self.update()

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.update()

    def set_selected(self, on: bool) -> None:
        if on != self.selected:
            self.selected = on
            self.update()

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.clicked.emit(self.index)
        super().mousePressEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        r = self.rect()
        p.fillRect(r, QColor("#ffffff"))
        f = QFont(p.font())
        f.setBold(True)
        f.setPointSizeF(max(7.0, f.pointSizeF() * 0.9))
        p.setFont(f)
        fm = p.fontMetrics()
        lines = self.label.split(", ")  # one value per line: "lr=0.1" over "dense1 units=8"
        if self.state in ("stopped", "diverged"):
            lines[-1] += f" ({self.state})"
        head = fm.height() * len(lines) + 6
        p.fillRect(QRect(0, 0, r.width(), head), self.color)
        p.setPen(QColor("#ffffff"))
        for k, line in enumerate(lines):
            p.drawText(QRect(6, 3 + k * fm.height(), r.width() - 12, fm.height()),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                       fm.elidedText(line, Qt.TextElideMode.ElideRight, r.width() - 12))
        area = QRect(3, head + 3, r.width() - 6, r.height() - head - 6)
        if self._image is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(fitted_rect(area, self._image.width(), self._image.height()), self._image)
            if self.state in ("stopped", "diverged"):
                p.fillRect(area, QColor(255, 255, 255, 110))  # faded: it no longer changes
        else:
            p.setPen(QColor("#9aa0a6"))
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, "waiting...")
        pen = QPen(SELECTION_COLOR if self.selected else self.color, 4 if self.selected else 2)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(r.adjusted(1, 1, -2, -2))
        p.end()


class CompareView(QWidget):
    """The Compare dock's widget; see the module docstring."""

    train_requested = Signal(list)  # [(setting, values text)] for the chosen settings
    pause_requested = Signal()
    step_requested = Signal()
    stop_requested = Signal()
    stop_variant_requested = Signal(int)
    use_variant_requested = Signal(int)
    inspect_variant_requested = Signal(int)
    variant_selected = Signal(int)
    export_csv_requested = Signal()
    export_png_requested = Signal()
    cost_changed = Signal(str)  # "macs" | "params"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.selected = -1
        self.tiles: list[VariantTile] = []
        self.loss_curves: list[pg.PlotCurveItem] = []
        self.acc_curves: list[pg.PlotCurveItem] = []
        self._rows: dict[int, int] = {}
        self._columns: list[str] = []
        self._histories: dict[int, tuple] = {}

        # ---- the sweep ----
        self.setting_combos = [QComboBox(self), QComboBox(self)]
        self.value_edits = [QLineEdit(self), QLineEdit(self)]
        for combo in self.setting_combos:
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        self.value_edits[0].setPlaceholderText("values, e.g. 0.01, 0.03, 0.1, 0.3, 1")
        self.value_edits[1].setPlaceholderText("values (optional second setting)")
        self.setting_combos[0].setToolTip("The setting to vary: its values make the variants")
        self.setting_combos[1].setToolTip("A second setting: every pair of values is a variant (a grid)")
        self.train_button = QPushButton("Train all", self)
        self.train_button.setToolTip("Train every variant at once (at most 16)")
        self.pause_button = QPushButton("Pause", self)
        self.step_button = QPushButton("Step", self)
        self.stop_button = QPushButton("Stop all", self)
        self.stop_variant_button = QPushButton("Stop variant", self)
        self.stop_variant_button.setToolTip("Stop the selected variant; the others go on training")
        self.use_button = QPushButton("Use this variant", self)
        self.use_button.setToolTip("Make the selected variant the design (undoable), keeping its trained weights")
        self.inspect_button = QPushButton("Inspect", self)
        self.inspect_button.setToolTip("Show the selected variant in every view - boundary, neurons, confusion, "
                                       "saliency... - as it is now (a click on a variant does it once training stops)")
        self.csv_button = QPushButton("CSV…", self)
        self.csv_button.setToolTip("Export the table as CSV")
        self.png_button = QPushButton("PNG…", self)
        self.png_button.setToolTip("Export the grid of pictures as a PNG image")
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #c5221f;")
        self.message.hide()

        form = QGridLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addWidget(QLabel("Vary", self), 0, 0)
        form.addWidget(self.setting_combos[0], 0, 1)
        form.addWidget(self.value_edits[0], 0, 2)
        form.addWidget(QLabel("and", self), 1, 0)
        form.addWidget(self.setting_combos[1], 1, 1)
        form.addWidget(self.value_edits[1], 1, 2)
        form.setColumnStretch(2, 1)
        # two short rows rather than one long one: a narrow dock must not force the window wider
        buttons = QVBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.setSpacing(2)
        for group in ((self.train_button, self.pause_button, self.step_button, self.stop_button),
                      (self.stop_variant_button, self.inspect_button, self.use_button, None, self.csv_button, self.png_button)):
            row = QHBoxLayout()
            row.setContentsMargins(0, 0, 0, 0)
            for b in group:
                row.addStretch(1) if b is None else row.addWidget(b)
            if None not in group:
                row.addStretch(1)
            buttons.addLayout(row)

        # ---- the grid of small multiples ----
        self.grid = QWidget(self)
        self.grid.setObjectName("compare_grid")
        self.grid.setStyleSheet("#compare_grid { background: white; }")
        self.grid_layout = QGridLayout(self.grid)
        self.grid_layout.setContentsMargins(4, 4, 4, 4)
        self.grid_layout.setSpacing(6)
        self.grid_scroll = QScrollArea(self)
        self.grid_scroll.setWidget(self.grid)
        self.grid_scroll.setWidgetResizable(True)
        self.grid_hint = QLabel("Pick a setting and its values, then Train all: each variant appears here.", self.grid)
        self.grid_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.grid_hint.setWordWrap(True)  # a narrow dock must not cut the sentence
        self.grid_hint.setStyleSheet(f"color: {_TEXT};")
        self.grid_layout.addWidget(self.grid_hint, 0, 0)

        # ---- the curves ----
        self.graphics = pg.GraphicsLayoutWidget(self)
        self.graphics.setBackground("w")
        self.graphics.ci.setContentsMargins(2, 2, 6, 2)
        self.loss_plot = self.graphics.addPlot(row=0, col=0)
        self.acc_plot = self.graphics.addPlot(row=1, col=0)
        self.acc_plot.setXLink(self.loss_plot)
        for plot, label in ((self.loss_plot, "val. loss"), (self.acc_plot, "val. accuracy %")):
            plot.setLabel("left", label, color=_TEXT)
            plot.hideButtons()
            plot.getAxis("left").setWidth(48)
            for name in ("left", "bottom"):
                plot.getAxis(name).setPen("#9aa0a6")
                plot.getAxis(name).setTextPen(_TEXT)
                plot.getAxis(name).enableAutoSIPrefix(False)
        self.acc_plot.setLabel("bottom", "epoch", color=_TEXT)
        self.acc_plot.setLimits(yMin=-5, yMax=105)
        # fixed ranges where they can be (accuracy 0-100 %, epochs in 1-2-5 steps): an axis whose
        # range is unchanged repaints from its cache, and these plots repaint several times a second
        self.acc_plot.setYRange(0, 100, padding=0.02)
        self.acc_plot.enableAutoRange(y=False)
        self.loss_plot.enableAutoRange(x=False)
        self._x_max = 0.0
        self._set_x_max(10.0)

        # ---- the table ----
        self.table = QTableWidget(0, 0, self)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        # sized to the contents when asked (fit_columns), not on every change: ResizeToContents measured
        # every cell on each update and took 50-100 ms of the event loop per table refresh
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self._fitted = False
        self.table.setSortingEnabled(True)

        # ---- the scatter ----
        self.cost_combo = QComboBox(self)
        self.cost_combo.addItem("cost: MACs per sample", "macs")
        self.cost_combo.addItem("cost: parameters", "params")
        self.cost_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.cost_combo.setMinimumContentsLength(10)
        self.scatter_plot = pg.PlotWidget(self)
        self.scatter_plot.setBackground("w")
        self.scatter_plot.hideButtons()
        pi = self.scatter_plot.getPlotItem()
        pi.setLabel("left", "validation error (%)", color=_TEXT)
        pi.setLabel("bottom", COST_NAMES["macs"], color=_TEXT)
        for name in ("left", "bottom"):
            pi.getAxis(name).setPen("#9aa0a6")
            pi.getAxis(name).setTextPen(_TEXT)
            pi.getAxis(name).enableAutoSIPrefix(False)
        self.front_line = pg.PlotCurveItem(pen=pg.mkPen("#5f6368", width=1.5, style=Qt.PenStyle.DashLine))
        self.front_marks = pg.ScatterPlotItem(size=16, pen=pg.mkPen("#202124", width=2), brush=pg.mkBrush(0, 0, 0, 0))
        self.points = pg.ScatterPlotItem(size=10, pen=pg.mkPen("w", width=1))
        for item in (self.front_line, self.front_marks, self.points):
            self.scatter_plot.addItem(item)
        self.points.sigClicked.connect(self._on_points_clicked)
        self.scatter_points: list[tuple[float, float]] = []
        self.front: list[bool] = []
        scatter_box = QWidget(self)
        sb = QVBoxLayout(scatter_box)
        sb.setContentsMargins(0, 0, 0, 0)
        sb.setSpacing(2)
        sb.addWidget(self.cost_combo)
        sb.addWidget(self.scatter_plot, 1)
        self.front_label = QLabel("Ringed: the Pareto front", self)
        self.front_label.setToolTip("No other variant is both cheaper and better than a ringed one")
        self.front_label.setStyleSheet(f"color: {_TEXT}; font-size: 8pt;")
        sb.addWidget(self.front_label)

        top_split = QSplitter(Qt.Orientation.Horizontal, self)
        top_split.addWidget(self.grid_scroll)
        top_split.addWidget(self.graphics)
        top_split.setSizes([560, 380])
        top_split.setStretchFactor(0, 3)
        top_split.setStretchFactor(1, 2)
        bottom_split = QSplitter(Qt.Orientation.Horizontal, self)
        bottom_split.addWidget(self.table)
        bottom_split.addWidget(scatter_box)
        bottom_split.setSizes([600, 340])
        bottom_split.setStretchFactor(0, 3)
        bottom_split.setStretchFactor(1, 2)
        main_split = QSplitter(Qt.Orientation.Vertical, self)
        main_split.addWidget(top_split)
        main_split.addWidget(bottom_split)
        main_split.setSizes([400, 200])
        main_split.setStretchFactor(0, 2)
        main_split.setStretchFactor(1, 1)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.message)
        lay.addWidget(main_split, 1)

        self.train_button.clicked.connect(lambda: self.train_requested.emit(self.axes()))
        self.pause_button.clicked.connect(self.pause_requested.emit)
        self.step_button.clicked.connect(self.step_requested.emit)
        self.stop_button.clicked.connect(self.stop_requested.emit)
        self.stop_variant_button.clicked.connect(self._on_stop_variant_clicked)
        self.use_button.clicked.connect(self._on_use_clicked)
        self.inspect_button.clicked.connect(self._on_inspect_clicked)
        self.csv_button.clicked.connect(self.export_csv_requested.emit)
        self.png_button.clicked.connect(self.export_png_requested.emit)
        self.table.itemSelectionChanged.connect(self._on_table_selection_changed)
        self.cost_combo.currentIndexChanged.connect(lambda _i: self.cost_changed.emit(self.cost_combo.currentData()))
        self.set_running(False)

    # ---- the sweep ---------------------------------------------------------------------------
    def set_settings(self, items: list[dict]) -> None:
        """The settings one can vary (dicts with setting, label, current); keeps the choice when it still exists."""
        for k, combo in enumerate(self.setting_combos):
            keep = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            if k == 1:
                combo.addItem("(nothing)", NONE)
            for it in items:
                cur = it.get("current")
                shown = f"{it['label']}  (now {cur:g})" if isinstance(cur, float) else f"{it['label']}  (now {cur})"
                combo.addItem(shown, it["setting"])
            i = combo.findData(keep)
            if i < 0 and k == 0:  # the first thing a course varies
                i = combo.findData("training.lr")
            combo.setCurrentIndex(i if i >= 0 else 0)
            combo.blockSignals(False)

    def set_axes(self, axes: list[tuple[str, str]]) -> None:
        """Show a sweep: [(setting, values text)], one or two."""
        for k in range(2):
            setting, text = axes[k] if k < len(axes) else (NONE, "")
            combo = self.setting_combos[k]
            i = combo.findData(setting)
            if i < 0 and setting:
                combo.addItem(setting, setting)  # a setting the design no longer has: shown, and refused on Train
                i = combo.count() - 1
            combo.setCurrentIndex(max(i, 0))
            self.value_edits[k].setText(text)

    def axes(self) -> list[tuple[str, str]]:
        """The chosen settings with their values text; the second only when it is set."""
        out = []
        for k in range(2):
            setting = self.setting_combos[k].currentData()
            text = self.value_edits[k].text().strip()
            if setting and (k == 0 or text):
                out.append((setting, text))
        return out

    def show_problem(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def problem(self) -> str:
        """The message shown above the grid ("" when none)."""
        return self.message.text()

    def set_running(self, running: bool, paused: bool = False) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        for b in (self.pause_button, self.step_button, self.stop_button, self.stop_variant_button):
            b.setEnabled(running)

    # ---- a new comparison ----------------------------------------------------------------------
    def begin(self, labels: list[str], cells: list[tuple[int, int]], columns: list[str]) -> None:
        """Make a tile, two curves and a table row per variant (labels in variant order)."""
        self.clear()
        self.grid_hint.hide()
        if all(c == 0 for _, c in cells):  # one setting varies: fill rows of a near-square grid, not one column
            cols = math.ceil(math.sqrt(len(cells)))
            cells = [divmod(i, cols) for i in range(len(cells))]
        for i, (label, (r, c)) in enumerate(zip(labels, cells, strict=True)):
            tile = VariantTile(i, label, variant_color(i), self.grid)
            tile.clicked.connect(self.select)
            self.grid_layout.addWidget(tile, r, c)
            self.tiles.append(tile)
            pen = pg.mkPen(variant_color(i), width=2)
            for plot, store in ((self.loss_plot, self.loss_curves), (self.acc_plot, self.acc_curves)):
                curve = pg.PlotCurveItem(pen=pen, connect="finite", name=label)  # no antialiasing: 16 curves repaint often
                plot.addItem(curve)
                store.append(curve)
        self._columns = ["Variant", *columns, "Parameters", "MACs / sample", "Best val acc", "Best val loss",
                         "Best epoch", "Time (s)", "State"]
        self.table.setSortingEnabled(False)
        self.table.setColumnCount(len(self._columns))
        self.table.setHorizontalHeaderLabels(self._columns)
        self.table.setRowCount(len(labels))
        for i, label in enumerate(labels):
            for col in range(len(self._columns)):
                item = _Item()
                item.setData(INDEX_ROLE, i)
                self.table.setItem(i, col, item)
            first = self.table.item(i, 0)
            first.setText(label)
            first.setData(SORT_ROLE, i)
            first.setForeground(variant_color(i))
            f = first.font()
            f.setBold(True)
            first.setFont(f)
        self.table.setSortingEnabled(True)
        self._fitted = False

    def clear(self) -> None:
        for tile in self.tiles:
            self.grid_layout.removeWidget(tile)
            tile.deleteLater()
        self.tiles = []
        for plot, store in ((self.loss_plot, self.loss_curves), (self.acc_plot, self.acc_curves)):
            for curve in store:
                plot.removeItem(curve)
            store.clear()
        self._histories.clear()
        self._set_x_max(10.0)
        self.table.setRowCount(0)
        self.points.clear()
        self.front_marks.clear()
        self.front_line.setData([], [])
        self.scatter_points, self.front = [], []
        self.selected = -1
        self.grid_hint.show()

    # ---- live parts -------------------------------------------------------------------------
    def set_history(self, i: int, epochs: np.ndarray, val_loss: np.ndarray, val_acc: np.ndarray) -> None:
        """Variant i's validation curves (per epoch); unchanged lengths are not redrawn."""
        key = (len(epochs), float(epochs[-1]) if len(epochs) else 0.0)
        if self._histories.get(i) == key or i >= len(self.loss_curves):
            return
        self._histories[i] = key
        x = np.asarray(epochs, np.float64)
        self.loss_curves[i].setData(x, np.asarray(val_loss, np.float64))
        self.acc_curves[i].setData(x, 100.0 * np.asarray(val_acc, np.float64))
        if len(x) and x[-1] > self._x_max:
            self._set_x_max(float(x[-1]))

    def _set_x_max(self, last: float) -> None:
        """Show epochs up to the next 1-2-5 step above ``last``."""
        step = 10.0 ** math.floor(math.log10(max(last, 1.0)))
        top = next(m * step for m in (1, 2, 5, 10) if m * step >= last)
        self._x_max = top
        self.loss_plot.setXRange(0, top, padding=0.01)

    def set_boundary(self, i: int, probs: np.ndarray) -> None:
        """Variant i's class probabilities (res, res, k) over the plane (rows: y upwards)."""
        p = np.asarray(probs, np.float32)
        if p.ndim == 2:
            p = np.stack([1.0 - p, p], axis=-1)
        rgba = blend_classes(p, class_colors(max(p.shape[-1], 2)), opacity=0.85)
        self.tiles[i].set_rgba(rgba[::-1])

    def set_confusion(self, i: int, matrix: np.ndarray) -> None:
        """Variant i's confusion matrix (true rows x predicted columns), shaded by each row's share."""
        m = np.asarray(matrix, np.float64)
        share = m / np.maximum(m.sum(1, keepdims=True), 1.0)
        rgba = to_rgba(share, "viridis", 0.0, 1.0)
        self.tiles[i].set_rgba(np.repeat(np.repeat(rgba, 8, 0), 8, 1))  # crisp cells, not blurred by scaling

    def set_state(self, i: int, state: str) -> None:
        if i < len(self.tiles):
            self.tiles[i].set_state(state)

    def set_rows(self, rows: dict[int, list]) -> None:
        """Table cells per variant: [(text, sort value)] for the columns after "Variant"."""
        sort_col = self.table.horizontalHeader().sortIndicatorSection()
        self.table.setSortingEnabled(False)
        where = {self.table.item(r, 0).data(INDEX_ROLE): r for r in range(self.table.rowCount())}
        for i, cells in rows.items():
            r = where.get(i)
            if r is None:
                continue
            for col, (text, value) in enumerate(cells, start=1):
                item = self.table.item(r, col)
                if item.text() != text:
                    item.setText(text)
                    item.setData(SORT_ROLE, value)
        self.table.setSortingEnabled(True)
        if sort_col < 0:
            self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        if not self._fitted:
            self.fit_columns()

    def fit_columns(self) -> None:
        """Size the table's columns to their contents (once filled, and when the comparison ends)."""
        self._fitted = True
        self.table.resizeColumnsToContents()

    def set_scatter(self, points: list[tuple[float, float]], front: list[bool], cost_name: str) -> None:
        """(cost, validation error) per variant (NaN: not known yet) and which are on the Pareto front."""
        self.scatter_points, self.front = list(points), list(front)
        ok = [k for k, (c, e) in enumerate(points) if math.isfinite(c) and math.isfinite(e)]
        self.points.setData([{"pos": (points[k][0], 100 * points[k][1]), "data": k,
                              "brush": pg.mkBrush(variant_color(k)),
                              "size": 14 if k == self.selected else 10} for k in ok])
        on = sorted((points[k][0], 100 * points[k][1]) for k in ok if front[k])
        self.front_marks.setData([x for x, _ in on], [y for _, y in on])
        self.front_line.setData([x for x, _ in on], [y for _, y in on])
        pi = self.scatter_plot.getPlotItem()
        pi.setLabel("bottom", COST_NAMES.get(cost_name, cost_name), color=_TEXT)
        xs = [points[k][0] for k in ok]
        if xs and min(xs) == max(xs):  # one cost for all (a learning-rate sweep): a readable range around it
            half = max(1.0, 0.1 * abs(xs[0]))
            pi.setXRange(xs[0] - half, xs[0] + half, padding=0)
        else:
            pi.enableAutoRange(x=True)

    # ---- selection ---------------------------------------------------------------------------
    def select(self, i: int) -> None:
        """Highlight variant i in the grid, the curves and the table."""
        if i == self.selected:
            return
        self.selected = i
        for t in self.tiles:
            t.set_selected(t.index == i)
        for k, (lc, ac) in enumerate(zip(self.loss_curves, self.acc_curves, strict=True)):
            pen = pg.mkPen(variant_color(k), width=4 if k == i else 2)
            lc.setPen(pen)
            ac.setPen(pen)
            lc.setZValue(10 if k == i else 0)
            ac.setZValue(10 if k == i else 0)
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(INDEX_ROLE) == i:
                self.table.blockSignals(True)
                self.table.selectRow(r)
                self.table.blockSignals(False)
        if self.scatter_points:
            self.set_scatter(self.scatter_points, self.front, self.cost_combo.currentData())
        self.variant_selected.emit(i)

    def _on_table_selection_changed(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.select(self.table.item(rows[0].row(), 0).data(INDEX_ROLE))

    def _on_points_clicked(self, _item, points, *_a) -> None:
        if len(points):
            self.select(int(points[0].data()))

    def _on_stop_variant_clicked(self) -> None:
        if self.selected >= 0:
            self.stop_variant_requested.emit(self.selected)
        else:
            self.show_problem("Select a variant first (click its picture or its row)")

    def _on_use_clicked(self) -> None:
        if self.selected >= 0:
            self.use_variant_requested.emit(self.selected)
        else:
            self.show_problem("Select a variant first (click its picture or its row)")

    def _on_inspect_clicked(self) -> None:
        if self.selected >= 0:
            self.inspect_variant_requested.emit(self.selected)
        else:
            self.show_problem("Select a variant first (click its picture or its row)")

    # ---- what is shown (tests, export) ----------------------------------------------------------
    def curve_count(self) -> int:
        """Variants with a validation-loss curve drawn (at least one point)."""
        return sum(1 for c in self.loss_curves if c.getData()[0] is not None and len(c.getData()[0]))

    def tile_images(self) -> list[np.ndarray | None]:
        return [t.rgba for t in self.tiles]

    def table_rows(self) -> list[list[str]]:
        """The table as shown (current sort order), header excluded."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    def export_csv(self, path: str | os.PathLike) -> None:
        """The table, in its shown order, as CSV with a header row."""
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(self._columns)
            w.writerows(self.table_rows())

    def export_png(self, path: str | os.PathLike) -> bool:
        """The grid of small multiples as an image."""
        return self.grid.grab().save(os.fspath(path), "PNG")
