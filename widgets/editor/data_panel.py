"""Dataset panel: pick a dataset and its settings, and preview the data the app passes in.

A view: it never loads data (the app computes arrays with engine.datasets and calls
show_points / show_images / show_message) and emits ``dataset_changed(kind, params)``.
Image kinds come from engine.datasets.images (numpy only, like the rest of the schema).
"""
from __future__ import annotations

import html
import math

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine import datasets
from widgets.paint.palette import CLASS_COLORS  # the same class colours as the decision boundary

MAX_POINTS = 3000  # preview subsample: enough to see the shape, cheap to draw
MAX_IMAGES = 64
INT_LIMIT = 2**31 - 1
LABELS = {"n_points": "Points", "val_fraction": "Validation share", "n_per_class": "Per class"}


def class_color(i: int) -> QColor:
    return QColor(CLASS_COLORS[i % len(CLASS_COLORS)])


def dataset_schema(include_images: bool = True) -> tuple[dict, dict, dict]:
    """(params per kind, help per kind, editor hints) for the tabular sets plus, unless
    ``include_images`` is false, the image sets.

    Hints: ``{"folders": {(kind, param)}, "choices": {(kind, param): (...)}}``.
    """
    params = dict(datasets.DATASET_PARAMS)
    helps = dict(datasets.DATASET_HELP)
    hints: dict = {"folders": set(), "choices": {**datasets.tabular.CHOICES, ("csv", "task"): ("classification", "regression")}}
    if include_images:
        images = datasets.images
        params.update(images.IMAGE_PARAMS)
        helps.update(images.IMAGE_HELP)
        hints["folders"] = set(images.FOLDER_PARAMS)
        hints["choices"].update(images.CHOICES)
    # numpy-only sets: listed at once, after the image kinds (the order of datasets.all_kinds)
    for mod in (datasets.regression, datasets.sequences):
        params.update(mod.PARAMS)
        helps.update(mod.HELP)
    return params, helps, hints


class PathEdit(QWidget):
    """A file path with a "..." button that opens a file chooser."""

    path_chosen = Signal(str)

    def __init__(self, file_filter: str = "CSV files (*.csv);;All files (*)", folder: bool = False, parent=None):
        super().__init__(parent)
        self.file_filter = file_filter
        self.folder = folder
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("choose a file...")
        self.edit.editingFinished.connect(self._on_edit_finished)
        self.button = QToolButton()
        self.button.setText("...")
        self.button.setToolTip("Choose a folder" if folder else "Choose a file")
        self.button.clicked.connect(self._on_button_clicked)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.button)

    def value(self) -> str:
        return self.edit.text().strip()

    def setValue(self, text: str) -> None:  # noqa: N802 - same name as the spin boxes'
        self.edit.setText(text)

    def ask_path(self) -> str:
        """The file dialog (tests replace this)."""
        if self.folder:
            return QFileDialog.getExistingDirectory(self, "Choose a folder", self.value())
        path, _ = QFileDialog.getOpenFileName(self, "Choose a data file", self.value(), self.file_filter)
        return path

    def _on_button_clicked(self) -> None:
        path = self.ask_path()
        if path:
            self.edit.setText(path)
            self.path_chosen.emit(path)

    def _on_edit_finished(self) -> None:
        self.path_chosen.emit(self.value())


class DataPanel(QWidget):
    """Dataset kind, typed parameter editors and a live preview (scatter or image grid)."""

    dataset_changed = Signal(str, dict)

    def __init__(self, parent=None, include_images: bool = True):
        super().__init__(parent)
        self.schema, self.helps, self.hints = dataset_schema(include_images)
        self.kind = ""
        self.editors: dict[str, QWidget] = {}

        self.kind_combo = QComboBox()
        self.kind_combo.setObjectName("dataset_kind")
        self.kind_combo.currentIndexChanged.connect(self._on_kind_combo_changed)
        self.help_label = QLabel()
        self.help_label.setWordWrap(True)
        self.help_label.setStyleSheet("color: #5f6672;")
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.form.addRow("Dataset", self.kind_combo)
        self.params_form = QFormLayout()
        self.params_form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)

        # pyqtgraph's plot widgets are made on first use: importing pyqtgraph costs ~0.3 s,
        # which the window should not wait for before it shows
        self.plot = self.scatter = None
        self.image_view = self.image_box = self.image_item = None
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setAlignment(Qt.AlignCenter)
        self.message_label.setStyleSheet("color: #c62828; padding: 12px;")
        self.message_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.preview = QStackedWidget()
        self.preview.addWidget(self.message_label)
        self.preview.setMinimumHeight(160)
        self.legend_label = QLabel()
        self.legend_label.setWordWrap(True)
        self.legend_label.setVisible(False)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.summary_label.setStyleSheet("color: #5f6672;")

        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addLayout(self.form)
        lay.addWidget(self.help_label)
        lay.addLayout(self.params_form)
        lay.addWidget(self.legend_label)
        lay.addWidget(self.preview, 1)
        lay.addWidget(self.summary_label)
        self._fill_kinds()

    # ---- kinds -------------------------------------------------------------------------
    def _fill_kinds(self) -> None:
        with _Blocked(self.kind_combo):
            current = self.kind
            self.kind_combo.clear()
            for k in self.schema:
                self.kind_combo.addItem(k)
                self.kind_combo.setItemData(self.kind_combo.count() - 1, self.helps.get(k, ""), Qt.ToolTipRole)
            if current and self.kind_combo.findText(current) < 0:
                self.kind_combo.addItem(current)
            self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findText(current)))

    def refresh_kinds(self, include_images: bool = True) -> None:
        """Re-read the dataset kinds (e.g. to add the image kinds)."""
        self.schema, self.helps, self.hints = dataset_schema(include_images)
        self._fill_kinds()
        if self.kind in self.schema and not self.editors:
            self._build_editors(self.kind)

    # ---- from the app ------------------------------------------------------------------
    def set_dataset(self, kind: str, params: dict) -> None:
        """Show the design's dataset (emits nothing)."""
        if kind != self.kind:
            self.kind = kind
            self._fill_kinds()
            self._build_editors(kind)
        schema = self.schema.get(kind, ())
        for par in schema:
            w = self.editors.get(par.name)
            if w is not None:
                _set_value(w, params.get(par.name, par.default))
        self.help_label.setText(self.helps.get(kind, "" if kind in self.schema else
                                               f"'{kind}' is not a dataset this version knows"))

    def show_points(self, x: np.ndarray, y: np.ndarray, class_names: list[str], summary: str = "") -> None:
        """Scatter of 2-D points coloured by class."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y).astype(int)
        if len(x) > MAX_POINTS:
            idx = np.random.default_rng(0).choice(len(x), MAX_POINTS, replace=False)
            x, y = x[idx], y[idx]
        pg = self._ensure_plots()
        brushes = [pg.mkBrush(class_color(c)) for c in range(max(len(class_names), int(y.max(initial=0)) + 1))]
        self.scatter.setData(x=x[:, 0], y=x[:, 1], brush=[brushes[c] for c in y], pen=pg.mkPen(255, 255, 255, 90))
        # fitted once, not kept auto-ranging: with the aspect locked, auto-range in a small dock fed
        # back into itself and redrew the axes ~30 times a second, idle or not
        self.plot.autoRange(padding=0.05)
        self.plot.disableAutoRange()
        self.preview.setCurrentWidget(self.plot)
        self.legend_label.setText(legend_html(class_names))
        self.legend_label.setVisible(True)
        self.summary_label.setText(summary)

    def show_images(self, images: np.ndarray, y: np.ndarray, class_names: list[str], summary: str = "") -> None:
        """A grid of the first images, (N, C, H, W) with C = 1 or 3."""
        self._ensure_plots()
        grid = image_grid(np.asarray(images, dtype=float)[:MAX_IMAGES])
        self.image_item.setImage(grid, levels=(0.0, 1.0))
        self.image_box.autoRange(padding=0.02)
        self.preview.setCurrentWidget(self.image_view)
        self.legend_label.setVisible(False)  # class colours mean nothing on a picture grid
        self.summary_label.setText(summary)

    def _ensure_plots(self):
        """Create the scatter plot and the image grid view (imports pyqtgraph); returns pyqtgraph."""
        import pyqtgraph as pg

        if self.plot is None:
            background = self.palette().color(self.backgroundRole()).lighter(103)
            self.plot = pg.PlotWidget(background=background)
            self.plot.setAspectLocked(True)
            self.plot.setMenuEnabled(False)
            self.plot.hideButtons()
            self.plot.showGrid(x=True, y=True, alpha=0.15)
            self.scatter = pg.ScatterPlotItem(size=5, pen=None)
            self.plot.addItem(self.scatter)
            self.image_view = pg.GraphicsLayoutWidget()
            self.image_view.setBackground(background)
            self.image_box = self.image_view.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
            self.image_item = pg.ImageItem()
            self.image_box.addItem(self.image_item)
            self.preview.addWidget(self.plot)
            self.preview.addWidget(self.image_view)
        return pg

    def show_message(self, text: str) -> None:
        """Instead of a preview: why there is none (bad CSV, unknown dataset...)."""
        self.message_label.setText(text)
        self.preview.setCurrentWidget(self.message_label)
        self.legend_label.setVisible(False)
        self.summary_label.setText("")

    def message(self) -> str:
        return self.message_label.text() if self.preview.currentWidget() is self.message_label else ""

    # ---- editors -----------------------------------------------------------------------
    def _build_editors(self, kind: str) -> None:
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self.editors = {}
        for par in self.schema.get(kind, ()):
            w = _editor(par, self.hints, kind)
            w.setObjectName(f"dataset_{par.name}")
            w.setToolTip(par.help)
            self.editors[par.name] = w
            label = LABELS.get(par.name, par.name.replace("_", " ").capitalize())
            self.params_form.addRow(label, w)
            _signal(w).connect(self._on_editor_changed)

    def params(self) -> dict:
        return {name: _value(w) for name, w in self.editors.items()}

    def _on_kind_combo_changed(self, index: int) -> None:
        kind = self.kind_combo.itemText(index)
        if not kind or kind == self.kind:
            return
        carried = self.params()  # keep seed, split and point count when switching sets
        self.kind = kind
        self._build_editors(kind)
        for par in self.schema.get(kind, ()):
            if par.name in carried:
                _set_value(self.editors[par.name], carried[par.name])
        self.help_label.setText(self.helps.get(kind, ""))
        self.dataset_changed.emit(kind, self.params())

    def _on_editor_changed(self, *_args) -> None:
        self.dataset_changed.emit(self.kind, self.params())


class _Blocked:
    def __init__(self, w):
        self.w = w

    def __enter__(self):
        self.old = self.w.blockSignals(True)

    def __exit__(self, *exc):
        self.w.blockSignals(self.old)


def _editor(par, hints: dict, kind: str) -> QWidget:
    if par.type == "int":
        w = QSpinBox()
        w.setRange(int(max(par.min, -INT_LIMIT)), int(min(par.max, INT_LIMIT)))
        w.setKeyboardTracking(False)  # regenerating data per keystroke would churn the preview
        return w
    if par.type == "float":
        w = QDoubleSpinBox()
        w.setRange(par.min, par.max)
        span = par.max - par.min
        w.setDecimals(2 if span <= 2 else 1)
        w.setSingleStep(0.05 if span <= 2 else 1.0)
        w.setKeyboardTracking(False)
        return w
    if par.type == "path":
        if (kind, par.name) in hints["folders"]:
            return PathEdit(folder=True)
        if kind == "csv":
            return PathEdit()
        return PathEdit(file_filter="All files (*)")
    if (kind, par.name) in hints["choices"]:
        w = QComboBox()
        w.addItems(list(hints["choices"][(kind, par.name)]))
        return w
    return QLineEdit()


def _signal(w: QWidget):
    if isinstance(w, QComboBox):
        return w.currentTextChanged
    if isinstance(w, PathEdit):
        return w.path_chosen
    if isinstance(w, QLineEdit):
        return w.editingFinished
    return w.valueChanged


def _value(w: QWidget):
    if isinstance(w, QComboBox):
        return w.currentText()
    if isinstance(w, QLineEdit):
        return w.text().strip()
    return w.value()


def _set_value(w: QWidget, value) -> None:
    with _Blocked(w):
        if isinstance(w, QComboBox):
            if w.findText(str(value)) < 0:
                w.addItem(str(value))
            w.setCurrentIndex(w.findText(str(value)))
        elif isinstance(w, PathEdit):
            with _Blocked(w.edit):
                w.setValue(str(value))
        elif isinstance(w, QLineEdit):
            if not w.hasFocus():
                w.setText(str(value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            if w.value() != value:
                w.setValue(value)


def legend_html(class_names: list[str]) -> str:
    """Coloured dots and class names, one line that wraps."""
    items = [f"<span style='color:{CLASS_COLORS[i % len(CLASS_COLORS)]}; font-size:14px'>\u25cf</span>&nbsp;{html.escape(n)}"
             for i, n in enumerate(class_names)]
    return "&nbsp;&nbsp; ".join(items)


def image_grid(images: np.ndarray, pad: int = 1) -> np.ndarray:
    """(N, C, H, W) -> one (W_total, H_total[, 3]) image for pyqtgraph, scaled to 0..1."""
    if images.ndim != 4 or len(images) == 0:
        return np.zeros((1, 1))
    n, c, h, w = images.shape
    lo, hi = float(images.min()), float(images.max())
    images = (images - lo) / (hi - lo) if hi > lo else np.zeros_like(images)
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    chans = 3 if c == 3 else 1
    if chans == 1:
        images = 1.0 - images  # dark ink on light paper reads better than white on black
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, chans), 0.8 if chans == 1 else 1.0)
    for i in range(n):
        r, col = divmod(i, cols)
        tile = images[i].transpose(1, 2, 0) if c == 3 else images[i, :1].transpose(1, 2, 0)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = tile
    out = out if chans == 3 else out[..., 0]
    return np.swapaxes(out, 0, 1)  # pyqtgraph's ImageItem indexes [x, y]
