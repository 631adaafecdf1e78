"""The kernel lab's face: editable input and kernel grids, the operation's settings, the output
as numbers and as an image, and one highlighted position with its multiply-add.

numpy only: the numbers come from the worker (app.kernel_lab sends them); this widget parses
what the user types, shows what it is given and says when something changed.
"""
from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from widgets.paint.colormaps import map_argb, symmetric_limit
from widgets.paint.images import qimage

OPS = (("conv", "Convolution (cross-correlation)"), ("maxpool", "Max pool"), ("avgpool", "Average pool"),
       ("transposed", "Transposed convolution"))
WINDOW = "#f6c343"  # the highlighted window; a warm accent that reads on both grid colours
CELL = "#e4572e"


def parse_grid(text: str) -> np.ndarray:
    """Rows of numbers (spaces, commas, tabs or brackets between them); a blank line starts the
    next channel. Returns (channels, rows, cols); ValueError names the line to fix."""
    cleaned = text.replace("[", " ").replace("]", " ").replace(",", " ").replace(";", "\n")
    channels, rows = [], []
    for n, line in enumerate(cleaned.splitlines(), 1):
        if not line.strip():
            if rows:
                channels.append(rows)
                rows = []
            continue
        try:
            rows.append([float(v) for v in line.split()])
        except ValueError:
            raise ValueError(f"line {n}: '{line.strip()[:30]}' is not a row of numbers") from None
    if rows:
        channels.append(rows)
    if not channels:
        raise ValueError("type at least one row of numbers")
    for c in channels:
        if len({len(r) for r in c}) != 1:
            raise ValueError("every row needs the same number of values")
    if len({(len(c), len(c[0])) for c in channels}) != 1:
        raise ValueError("every channel needs the same rows x columns")
    return np.asarray(channels, dtype=np.float64)


def format_grid(a) -> str:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    chans = ["\n".join(" ".join(_n(v) for v in row) for row in ch) for ch in a]
    return "\n\n".join(chans)


def _n(v: float) -> str:
    return f"{v:g}" if float(v).is_integer() else f"{v:.4g}"


def matrix_html(a: np.ndarray, marked: set[tuple[int, int]] = frozenset(), colour: str = WINDOW, pad: int = 0,
                title: str = "") -> str:
    """A 2-D array as an HTML table; ``marked`` cells (row, col, may lie in the padding) are highlighted."""
    h, w = a.shape
    rows = []
    for r in range(-pad, h + pad):
        cells = []
        for c in range(-pad, w + pad):
            inside = 0 <= r < h and 0 <= c < w
            text = _n(a[r, c]) if inside else "0"
            style = f"background:{colour};" if (r, c) in marked else ("color:#999;" if not inside else "")
            cells.append(f"<td style='{style}' align='right'>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = f"<b>{html.escape(title)}</b><br>" if title else ""
    table = "<table cellspacing='0' cellpadding='3' border='1' style='border-collapse:collapse'>"
    return head + table + "".join(rows) + "</table>"


def grid_pixmap(a: np.ndarray, size: int = 120) -> QPixmap:
    """The map as an image: diverging colours around zero (the same map as the neuron views)."""
    lim = symmetric_limit(a, 1e-9)
    img = qimage(map_argb(a, "diverging", -lim, lim))
    return QPixmap.fromImage(img).scaled(size, size, Qt.KeepAspectRatio, Qt.FastTransformation)


class KernelLabView(QWidget):
    """Signals: ``changed`` (any input), ``preset_chosen(name)``, ``position_changed(row, col)``,
    ``sample_requested`` (take the input from the current run's dataset)."""

    changed = Signal()
    preset_chosen = Signal(str)
    position_changed = Signal(int, int)
    sample_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.output: np.ndarray | None = None
        self.pad = 0
        self._quiet = False
        self.preset = QComboBox()
        self.preset.setObjectName("kernel_lab_preset")
        self.op = QComboBox()
        for key, label in OPS:
            self.op.addItem(label, key)
        self.stride = QSpinBox()
        self.stride.setRange(1, 8)
        self.padding = QComboBox()
        self.padding.setEditable(True)
        self.padding.addItems(["0", "1", "2", "3", "same"])
        self.size = QSpinBox()
        self.size.setRange(1, 8)
        self.size.setValue(2)
        self.ceil = QCheckBox("ceil mode")
        self.input_edit = QPlainTextEdit()
        self.input_edit.setPlaceholderText("rows of numbers; a blank line starts the next channel")
        self.kernel_edit = QPlainTextEdit()
        self.kernel_edit.setPlaceholderText("k x k numbers (one grid per input channel)")
        for e in (self.input_edit, self.kernel_edit):
            e.setMaximumHeight(130)
        self.sample_button = QPushButton("Digit from the dataset")
        self.sample_button.setToolTip("Take a validation image of the current run's dataset as the input")
        self.row = QSpinBox()
        self.col = QSpinBox()
        self.prev_button, self.next_button = QPushButton("<"), QPushButton(">")
        self.formula = QLabel()
        self.layer = QLabel()
        self.math = QLabel()
        self.verdict = QLabel()
        self.error = QLabel()
        self.error.setStyleSheet("color:#b00020")
        for lab in (self.formula, self.layer, self.math, self.verdict, self.error):
            lab.setWordWrap(True)
            lab.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.input_view, self.kernel_view, self.output_view, self.expected_view = QLabel(), QLabel(), QLabel(), QLabel()
        self.output_view.setObjectName("kernel_lab_output")
        self.input_image, self.output_image = QLabel(), QLabel()
        self._layout()
        for w in (self.op, self.padding):
            w.currentTextChanged.connect(self._on_edit)
        for w in (self.stride, self.size):
            w.valueChanged.connect(self._on_edit)
        self.ceil.toggled.connect(self._on_edit)
        self.input_edit.textChanged.connect(self._on_edit)
        self.kernel_edit.textChanged.connect(self._on_edit)
        self.preset.activated.connect(lambda i: self.preset_chosen.emit(self.preset.itemText(i)))
        self.sample_button.clicked.connect(self.sample_requested)
        self.row.valueChanged.connect(lambda *_: self.position_changed.emit(self.row.value(), self.col.value()))
        self.col.valueChanged.connect(lambda *_: self.position_changed.emit(self.row.value(), self.col.value()))
        self.prev_button.clicked.connect(lambda: self._step(-1))
        self.next_button.clicked.connect(lambda: self._step(1))
        self._update_enabled()

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("Preset", self.preset)
        form.addRow("Operation", self.op)
        row = QHBoxLayout()
        for lab, w in (("stride", self.stride), ("padding", self.padding), ("window", self.size)):
            row.addWidget(QLabel(lab))
            row.addWidget(w)
        row.addWidget(self.ceil)
        form.addRow(row)
        edits = QGridLayout()
        edits.addWidget(QLabel("Input"), 0, 0)
        edits.addWidget(QLabel("Kernel"), 0, 1)
        edits.addWidget(self.input_edit, 1, 0)
        edits.addWidget(self.kernel_edit, 1, 1)
        edits.addWidget(self.sample_button, 2, 0)
        pos = QHBoxLayout()
        pos.addWidget(QLabel("Output cell: row"))
        pos.addWidget(self.row)
        pos.addWidget(QLabel("column"))
        pos.addWidget(self.col)
        pos.addWidget(self.prev_button)
        pos.addWidget(self.next_button)
        pos.addStretch(1)
        grids = QGridLayout()
        grids.addWidget(self.input_view, 0, 0, Qt.AlignTop)
        grids.addWidget(self.kernel_view, 0, 1, Qt.AlignTop)
        grids.addWidget(self.output_view, 0, 2, Qt.AlignTop)
        grids.addWidget(self.expected_view, 0, 3, Qt.AlignTop)
        grids.addWidget(self.input_image, 1, 0, Qt.AlignTop)
        grids.addWidget(self.output_image, 1, 2, Qt.AlignTop)
        grids.setColumnStretch(4, 1)
        inner = QWidget()
        box = QVBoxLayout(inner)
        box.addLayout(form)
        box.addLayout(edits)
        box.addWidget(self.error)
        box.addLayout(pos)
        box.addWidget(self.math)
        box.addLayout(grids)
        box.addWidget(self.formula)
        box.addWidget(self.layer)
        box.addWidget(self.verdict)
        box.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    # ---- what the user set -------------------------------------------------------------------
    def set_presets(self, names: list[str]) -> None:
        self.preset.clear()
        self.preset.addItems(names)

    def settings(self) -> dict:
        """The compute arguments (engine.kernel_lab.compute); ValueError if a grid cannot be read."""
        op = self.op.currentData()
        x = parse_grid(self.input_edit.toPlainText())
        kernel = parse_grid(self.kernel_edit.toPlainText()) if op in ("conv", "transposed") else None
        if kernel is not None and kernel.shape[0] == 1:
            kernel = kernel[0]
        pad = self.padding.currentText().strip()
        return {"x": x, "kernel": kernel, "op": op, "stride": self.stride.value(),
                "padding": pad if pad == "same" else pad or "0", "size": self.size.value(),
                "ceil_mode": self.ceil.isChecked()}

    def load(self, preset: dict) -> None:
        """Fill every field from a preset (engine.kernel_lab.PRESETS entry) and emit ``changed`` once."""
        self._quiet = True
        try:
            self.op.setCurrentIndex(max(0, self.op.findData(preset["op"])))
            self.stride.setValue(int(preset["stride"]))
            self.padding.setCurrentText(str(preset["padding"]))
            self.size.setValue(int(preset["size"]))
            self.ceil.setChecked(bool(preset["ceil_mode"]))
            self.input_edit.setPlainText(format_grid(preset["input"]))
            k = preset.get("kernel")
            self.kernel_edit.setPlainText(format_grid(np.asarray(k).reshape(-1, *np.shape(k)[-2:])) if k is not None else "")
            i = self.preset.findText(preset.get("name", ""))
            if i >= 0:
                self.preset.setCurrentIndex(i)
        finally:
            self._quiet = False
        self._update_enabled()
        self.changed.emit()

    def _on_edit(self, *_a) -> None:
        self._update_enabled()
        if not self._quiet:
            self.expected_view.clear()
            self.verdict.clear()
            self.changed.emit()

    def _update_enabled(self) -> None:
        op = self.op.currentData()
        self.kernel_edit.setEnabled(op in ("conv", "transposed"))
        self.size.setEnabled(op in ("maxpool", "avgpool"))
        self.ceil.setEnabled(op in ("maxpool", "avgpool"))

    def _step(self, d: int) -> None:
        if self.output is None:
            return
        h, w = self.output.shape[1:]
        i = (self.row.value() * w + self.col.value() + d) % (h * w)
        self.row.blockSignals(True)
        self.row.setValue(i // w)
        self.row.blockSignals(False)
        self.col.setValue(i % w)
        self.position_changed.emit(self.row.value(), self.col.value())

    # ---- what the worker computed ------------------------------------------------------------
    def show_error(self, text: str) -> None:
        self.error.setText(text)

    def show_result(self, output: np.ndarray, formula: str, layer: str, params: int, pad: int) -> None:
        self.error.clear()
        self.output, self.pad = np.asarray(output), int(pad)
        h, w = self.output.shape[1:]
        for spin, n in ((self.row, h), (self.col, w)):
            spin.blockSignals(True)
            spin.setRange(0, n - 1)
            spin.blockSignals(False)
        maps = self.output.shape[0]
        self.formula.setText(f"Output size: {formula}" + (f"  ({maps} maps)" if maps > 1 else ""))
        self.layer.setText(f"Equivalent layer: {layer} - {params} parameters")
        self.position_changed.emit(self.row.value(), self.col.value())

    def show_expected(self, expected: np.ndarray | None, note: str, matches: bool) -> None:
        self.expected_view.setText(matrix_html(np.asarray(expected, dtype=np.float64), title="Expected (notes)")
                                   if expected is not None else "")
        mark = "matches" if matches else "DOES NOT match"
        self.verdict.setText(f"<b>{'&#10004;' if matches else '&#10008;'} The computed result {mark} the notes</b>"
                             f"{' - ' + html.escape(note) if note else ''}")

    def show_position(self, x: np.ndarray, kernel: np.ndarray | None, cells: list, text: str) -> None:
        """Highlight the window of the current output cell and show its multiply-add."""
        if self.output is None:
            return
        r, c = self.row.value(), self.col.value()
        marked = {(rr, cc) for ch, rr, cc in cells if ch == 0}
        pad = self.pad if self.op.currentData() != "transposed" else 0
        self.input_view.setText(matrix_html(x[0], marked, pad=pad, title="Input" + (" (channel 1)" if len(x) > 1 else "")))
        k2 = None if kernel is None else np.asarray(kernel).reshape(-1, *np.shape(kernel)[-2:])[0]
        self.kernel_view.setText(matrix_html(k2, title="Kernel") if k2 is not None else "")
        self.output_view.setText(matrix_html(self.output[0], {(r, c)}, CELL, title="Output (computed by torch)"))
        self.math.setText(f"<b>out[{r}, {c}]</b> = {html.escape(text)}")
        self.input_image.setPixmap(grid_pixmap(x[0]))
        self.output_image.setPixmap(grid_pixmap(self.output[0]))
