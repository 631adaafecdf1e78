"""Views of regression and sequence models (numpy in, pictures out).

* ``RegressionView``  - 1-D: the net's curve over the data and each last-hidden unit's
  contribution; 2-D: the output surface as a heat map with the points in their target colours.
* ``HiddenStateView`` - a recurrent layer's hidden state over the steps of one sample (and an
  LSTM's input/forget/cell/output gates), as heat maps: x = step, y = unit.
* ``AttentionView``   - each head's attention weights for one sample: row = query step, column =
  key step, viridis 0..1.
* ``PredictionView``  - one sample's input sequence with its true and predicted targets.
* ``TextView``        - text sampled from a character model, newest first, with the epoch it came from.

Colours come from widgets.paint (diverging for signed values, viridis for weights in 0..1).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QSpinBox,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from widgets import pyside_fix
from widgets.paint.colormaps import symmetric_limit, to_rgba
from widgets.paint.palette import CLASS_COLORS, TF_BLUE, TF_ORANGE

pyside_fix.install()

_TEXT = "#3c4043"
TRUE_COLOR = TF_BLUE
PRED_COLOR = TF_ORANGE
GATES = ("input", "forget", "cell", "output")


def _plot(layout: pg.GraphicsLayoutWidget, row: int, title: str = "", **labels) -> pg.PlotItem:
    p = layout.addPlot(row=row, col=0, title=title)
    p.hideButtons()
    for side, text in labels.items():
        p.setLabel(side, text, color=_TEXT)
    for side in ("left", "bottom"):
        p.getAxis(side).enableAutoSIPrefix(False)
    return p


def _heat(plot: pg.PlotItem) -> pg.ImageItem:
    img = pg.ImageItem(axisOrder="row-major")
    plot.addItem(img)
    plot.invertY(False)
    return img


def _caption(text: str = "") -> QLabel:
    """A one-line caption that may be cut short rather than widen its dock."""
    label = QLabel(text)
    label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
    return label


def _sample_row(text: str = "Sample") -> tuple[QHBoxLayout, QSpinBox]:
    row = QHBoxLayout()
    spin = QSpinBox()
    spin.setRange(0, 0)
    spin.setToolTip("Which validation sample to show")
    row.addWidget(QLabel(text))
    row.addWidget(spin)
    return row, spin


class RegressionView(QWidget):
    """The fitted function (1-D input) or the output surface (2-D input) of a regression net."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.stack = QStackedLayout(self)
        self.curve_widget = pg.GraphicsLayoutWidget()
        self.curve_widget.setBackground("w")
        self.fit_plot = _plot(self.curve_widget, 0, left="y", bottom="x")
        self.unit_plot = _plot(self.curve_widget, 1, left="unit x weight", bottom="x")
        self.unit_plot.setXLink(self.fit_plot)
        self.train_points = pg.ScatterPlotItem(size=5, pen=None, brush=pg.mkBrush(TF_BLUE + "80"))
        self.val_points = pg.ScatterPlotItem(size=5, pen=pg.mkPen(TF_BLUE), brush=pg.mkBrush("#ffffff"))
        self.fit_line = pg.PlotCurveItem(pen=pg.mkPen(PRED_COLOR, width=3))
        for item in (self.train_points, self.val_points, self.fit_line):
            self.fit_plot.addItem(item)
        self.unit_lines: list[pg.PlotCurveItem] = []
        self.surface_widget = pg.GraphicsLayoutWidget()
        self.surface_widget.setBackground("w")
        self.surface_plot = _plot(self.surface_widget, 0, left="x2", bottom="x1")
        self.surface_plot.setAspectLocked(True)
        self.surface_image = _heat(self.surface_plot)
        self.surface_points = pg.ScatterPlotItem(size=6, pen=pg.mkPen("#ffffff"))
        self.surface_plot.addItem(self.surface_points)
        self.stack.addWidget(self.curve_widget)
        self.stack.addWidget(self.surface_widget)
        self.limit = 1.0  # the surface's colour scale is +-limit

    def set_points(self, x_train, y_train, x_val, y_val) -> None:
        """The data (1-D): training points filled, validation points hollow."""
        self.stack.setCurrentWidget(self.curve_widget)
        self.train_points.setData(np.ravel(x_train), np.ravel(y_train))
        self.val_points.setData(np.ravel(x_val), np.ravel(y_val))

    def set_fit(self, xs: np.ndarray, ys: np.ndarray, units: np.ndarray | None = None, bias: float = 0.0) -> None:
        """The net's curve; ``units`` (n, len(xs)): each last-hidden unit's output times its output weight."""
        self.stack.setCurrentWidget(self.curve_widget)
        self.fit_line.setData(np.asarray(xs, float), np.asarray(ys, float))
        units = np.zeros((0, len(xs))) if units is None else np.asarray(units, float)
        while len(self.unit_lines) < len(units):
            line = pg.PlotCurveItem()
            self.unit_plot.addItem(line)
            self.unit_lines.append(line)
        for i, line in enumerate(self.unit_lines):
            if i < len(units):
                line.setPen(pg.mkPen(CLASS_COLORS[(i + 2) % len(CLASS_COLORS)], width=1.5))
                line.setData(np.asarray(xs, float), units[i])
            else:
                line.setData([], [])
        self.unit_plot.setTitle(f"{len(units)} units x weights; curve = sum {bias:+.2g}" if len(units) else "",
                                size="9pt")

    def set_surface(self, grid: np.ndarray, extent, points: np.ndarray | None = None,
                    values: np.ndarray | None = None) -> None:
        """The output over the plane (grid[i, j] at (xs[j], ys[i])), diverging around 0, with the points."""
        self.stack.setCurrentWidget(self.surface_widget)
        vals = [grid] if values is None else [grid, values]
        self.limit = max(symmetric_limit(v) for v in vals)
        self.surface_image.setImage(to_rgba(grid, "diverging", -self.limit, self.limit))
        x0, x1, y0, y1 = (float(v) for v in extent)
        self.surface_image.setRect(pg.QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
        if points is not None and values is not None and len(points):
            rgba = to_rgba(np.asarray(values), "diverging", -self.limit, self.limit)
            self.surface_points.setData(points[:, 0], points[:, 1], brush=[pg.mkBrush(*c) for c in rgba.tolist()])
        self.surface_plot.setTitle(f"output: blue -{self.limit:.2g} .. 0 .. orange +{self.limit:.2g}", size="9pt")

    def clear(self) -> None:
        for item in (self.train_points, self.val_points, self.fit_line, self.surface_points):
            item.setData([], [])
        for line in self.unit_lines:
            line.setData([], [])
        self.surface_image.clear()


class HiddenStateView(QWidget):
    """Hidden state (units x steps) of a recurrent layer for one sample; for an LSTM also its gates."""

    sample_changed = Signal(int)
    layer_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        row, self.sample_spin = _sample_row()
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Which recurrent layer")
        row.addWidget(QLabel("Layer"))
        row.addWidget(self.layer_combo)
        self.caption = _caption("Train a design with an RNN, LSTM or GRU layer to see its state over time.")
        row.addWidget(self.caption, 1)
        lay.addLayout(row)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        lay.addWidget(self.graphics, 1)
        # side by side: a dock under the canvas is wide and short
        self.state_plot = _plot(self.graphics, 0, "hidden state h_t", left="unit", bottom="step")
        self.state_image = _heat(self.state_plot)
        self.gate_plots: dict[str, pg.PlotItem] = {}
        self.gate_images: dict[str, pg.ImageItem] = {}
        for i, name in enumerate(GATES, start=1):
            p = self.graphics.addPlot(row=0, col=i)
            p.setTitle(f"{name} gate" if name != "cell" else "candidate g", size="9pt")
            p.hideButtons()
            p.setLabel("bottom", "step", color=_TEXT)
            p.setYLink(self.state_plot)
            self.gate_plots[name], self.gate_images[name] = p, _heat(p)
        self.sample_spin.valueChanged.connect(self.sample_changed.emit)
        self.layer_combo.currentTextChanged.connect(lambda t: t and self.layer_changed.emit(t))
        self.limit = 1.0
        self._show_gates(False)

    def set_sample_count(self, n: int) -> None:
        self.sample_spin.setRange(0, max(0, n - 1))

    def set_layers(self, layers: list[str], current: str) -> None:
        if [self.layer_combo.itemText(i) for i in range(self.layer_combo.count())] != list(layers):
            self.layer_combo.blockSignals(True)
            self.layer_combo.clear()
            self.layer_combo.addItems(list(layers))
            self.layer_combo.blockSignals(False)
        self.layer_combo.blockSignals(True)
        self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(False)

    def _show_gates(self, on: bool) -> None:
        for p in self.gate_plots.values():
            p.setVisible(on)

    def set_state(self, hidden: np.ndarray, gates: dict | None = None, kind: str = "", tokens: list | None = None) -> None:
        """``hidden`` (steps, units); ``gates`` {input, forget, cell, output: (steps, units)} for an LSTM."""
        h = np.asarray(hidden, np.float32)
        self.limit = symmetric_limit(h, floor=1e-6)
        self.state_image.setImage(to_rgba(h.T, "diverging", -self.limit, self.limit))  # rows = units
        self.state_plot.setTitle(f"{kind} h_t (±{self.limit:.2g})", size="9pt")
        self._show_gates(bool(gates))
        for name in GATES:
            if gates and name in gates:
                g = np.asarray(gates[name], np.float32).T
                lo, hi = (-1.0, 1.0) if name == "cell" else (0.0, 1.0)
                self.gate_images[name].setImage(to_rgba(g, "diverging" if name == "cell" else "viridis", lo, hi))
        steps = len(h)
        axis = self.state_plot.getAxis("bottom")
        if tokens is not None and steps <= 30:
            axis.setTicks([[(i + 0.5, repr(str(t))[1:-1] or " ") for i, t in enumerate(tokens)]])
        else:
            axis.setTicks(None)
        self.caption.setText(f"{steps} steps x {h.shape[1]} units; blue < 0 < orange"
                             + ("; gates (viridis 0..1) recomputed from the LSTM's weights" if gates else ""))

    def clear(self) -> None:
        self.state_image.clear()
        for img in self.gate_images.values():
            img.clear()


class AttentionView(QWidget):
    """Each head's attention weights for one sample: which key step each query step looked at."""

    sample_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        row, self.sample_spin = _sample_row()
        self.caption = _caption("Train a design with a SelfAttention layer to see its weights.")
        row.addWidget(self.caption, 1)
        lay.addLayout(row)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        lay.addWidget(self.graphics, 1)
        self.plots: list[pg.PlotItem] = []
        self.images: list[pg.ImageItem] = []
        self.sample_spin.valueChanged.connect(self.sample_changed.emit)
        self._layout_key: tuple = ()

    def set_sample_count(self, n: int) -> None:
        self.sample_spin.setRange(0, max(0, n - 1))

    def set_weights(self, weights: dict[str, np.ndarray], tokens: list | None = None) -> None:
        """``weights`` {layer id: (heads, T, T)}, rows = query steps, columns = key steps, each row sums to 1."""
        key = tuple((lid, w.shape) for lid, w in weights.items())
        if key != self._layout_key:
            self.graphics.clear()
            self.plots, self.images = [], []
            for r, (lid, w) in enumerate(weights.items()):
                for h in range(w.shape[0]):
                    p = self.graphics.addPlot(row=r, col=h, title=f"{lid} head {h + 1}")
                    p.hideButtons()
                    p.setAspectLocked(True)
                    p.invertY(True)  # query step 0 at the top, as a matrix is read
                    p.setLabel("bottom", "key step", color=_TEXT)
                    p.setLabel("left", "query step", color=_TEXT)
                    img = pg.ImageItem(axisOrder="row-major")
                    p.addItem(img)
                    self.plots.append(p)
                    self.images.append(img)
            self._layout_key = key
        i = 0
        for w in weights.values():
            for h in range(w.shape[0]):
                self.images[i].setImage(to_rgba(np.asarray(w[h], np.float32), "viridis", 0.0, 1.0))
                if tokens is not None and len(tokens) <= 12:  # longer: the step numbers read better
                    ticks = [[(j + 0.5, str(t)) for j, t in enumerate(tokens)]]
                    self.plots[i].getAxis("bottom").setTicks(ticks)
                i += 1
        last = next(iter(weights.values()), None)
        if last is not None:
            top = int(np.argmax(last[:, -1].mean(0)))
            self.caption.setText(f"weights 0..1; the last step looks most at step {top}")

    def clear(self) -> None:
        for img in self.images:
            img.clear()


class PredictionView(QWidget):
    """One sample: its input sequence, then the true and predicted next values (or classes)."""

    sample_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        row, self.sample_spin = _sample_row()
        self.caption = _caption()
        row.addWidget(self.caption, 1)
        lay.addLayout(row)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        lay.addWidget(self.graphics, 1)
        self.plot = _plot(self.graphics, 0, left="value", bottom="step")
        self.plot.addLegend(offset=(-5, 5))  # top right: the sequence starts at the left
        self.input_line = self.plot.plot(pen=pg.mkPen("#80868b", width=2), name="input")
        self.true_points = self.plot.plot(pen=pg.mkPen(TRUE_COLOR, width=2), symbol="o", symbolBrush=TRUE_COLOR,
                                          name="true")
        self.marks = pg.ScatterPlotItem(size=11, pen=pg.mkPen("#202124", width=1.5), brush=None, symbol="o")
        self.plot.addItem(self.marks)
        self.pred_points = self.plot.plot(pen=pg.mkPen(PRED_COLOR, width=2, style=pg.QtCore.Qt.DashLine), symbol="x",
                                          symbolPen=PRED_COLOR, name="predicted")
        self.sample_spin.valueChanged.connect(self.sample_changed.emit)

    def set_sample_count(self, n: int) -> None:
        self.sample_spin.setRange(0, max(0, n - 1))

    def set_prediction(self, inputs: np.ndarray, true: np.ndarray, pred: np.ndarray, classes: list | None = None,
                       marks: np.ndarray | None = None) -> None:
        """Regression: ``true``/``pred`` are the next values. Classification: ``true`` the class, ``pred`` its logits.
        ``marks``: steps to circle (the adding problem's marked numbers)."""
        x = np.asarray(inputs, float)
        t = len(x)
        self.input_line.setData(np.arange(t), x)
        m = np.asarray([] if marks is None else marks, int)
        self.marks.setData(m, x[m] if len(m) else [])
        if classes:
            p = np.exp(pred - np.max(pred))
            p /= p.sum()
            k, c = int(np.argmax(p)), int(true[0])
            name = lambda i: classes[i] if i < len(classes) else str(i)  # noqa: E731
            self.true_points.setData([], [])
            self.pred_points.setData([], [])
            self.caption.setText(f"true class: {name(c)}   predicted: {name(k)} ({100 * p[k]:.0f}%)"
                                 + ("  correct" if k == c else "  wrong"))
            return
        steps = np.arange(t, t + len(true))
        err = float(np.abs(np.asarray(true) - np.asarray(pred)).mean())
        if len(m):  # the target is not a continuation: show it on its own, after the sequence
            self.true_points.setData(steps, np.asarray(true, float))
            self.pred_points.setData(steps, np.asarray(pred, float))
            self.caption.setText(f"target = sum of the circled numbers = {float(true[0]):.3g}, "
                                 f"predicted {float(pred[0]):.3g}")
            return
        self.true_points.setData(np.r_[t - 1, steps], np.r_[x[-1], np.asarray(true, float)])
        self.pred_points.setData(np.r_[t - 1, steps], np.r_[x[-1], np.asarray(pred, float)])
        self.caption.setText(f"{len(true)} value(s) after step {t - 1}; mean |error| {err:.3g}")

    def clear(self) -> None:
        for item in (self.input_line, self.true_points, self.pred_points, self.marks):
            item.setData([], [])


class TextView(QWidget):
    """Text sampled from a next-character model, one entry per epoch (newest first)."""

    options_changed = Signal(dict)
    MAX_ENTRIES = 30

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.1, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(0.8)
        self.temperature.setToolTip("Lower: safer, repetitive text; higher: more surprising text")
        self.length = QSpinBox()
        self.length.setRange(20, 400)
        self.length.setValue(200)
        row.addWidget(QLabel("Temperature"))
        row.addWidget(self.temperature)
        row.addWidget(QLabel("Characters"))
        row.addWidget(self.length)
        self.seed_label = _caption()
        row.addWidget(self.seed_label, 1)
        lay.addLayout(row)
        self.edit = QPlainTextEdit()
        self.edit.setReadOnly(True)
        font = QFont("monospace")
        font.setStyleHint(QFont.TypeWriter)
        self.edit.setFont(font)
        lay.addWidget(self.edit, 1)
        self.entries: list[tuple[int, str]] = []
        self.temperature.valueChanged.connect(lambda _v: self.options_changed.emit(self.options()))
        self.length.valueChanged.connect(lambda _v: self.options_changed.emit(self.options()))

    def options(self) -> dict:
        return {"length": int(self.length.value()), "temperature": float(self.temperature.value())}

    def set_text(self, epoch: int, text: str, seed: str = "") -> None:
        """Add a new sample, labelled with the epoch it first arrived in (the worker resamples only now
        and then, at a bounded cost, and sends the last text meanwhile: a repeat is not a new sample)."""
        if seed:
            self.seed_label.setText(f"seed: “{seed}”")
        if self.entries and self.entries[0][1] == text:
            return
        if self.entries and self.entries[0][0] == epoch:
            self.entries[0] = (epoch, text)
        else:
            self.entries.insert(0, (epoch, text))
            del self.entries[self.MAX_ENTRIES:]
        self.edit.setPlainText("\n\n".join(f"— epoch {e} —\n{t}" for e, t in self.entries))

    def clear(self) -> None:
        self.entries = []
        self.edit.clear()
