"""Loss and accuracy curves per epoch, the latest values as text, the previous run for comparison.

``update_history`` takes the trainer's history (numpy arrays per epoch) as often as snapshots
arrive; it returns at once when nothing changed (snapshots within one epoch carry the same
history), and otherwise re-feeds the curves made once in ``__init__`` with ``setData``.
"""
from __future__ import annotations

import csv
import math
import os

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from widgets import pyside_fix

pyside_fix.install()  # PySide6 6.12 on Python 3.11 loses references to True/None on every emit

COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")
TRAIN_COLOR = "#1a73e8"
VAL_COLOR = "#e8710a"
PREVIOUS_COLOR = (128, 134, 139, 110)  # grey, faint: there to compare against, not to read
_TEXT = "#3c4043"


MAX_DRAWN_EPOCHS = 400  # longer histories are drawn as the min and max of 400 buckets


def decimate(x: np.ndarray, y: np.ndarray, buckets: int = MAX_DRAWN_EPOCHS) -> tuple[np.ndarray, np.ndarray]:
    """At most 2 x ``buckets`` points: each bucket's lowest and highest value, in epoch order.

    An antialiased line of thousands of epochs took 10-50 ms to paint (bench/ui_latency.py, an LSTM
    run); a dock a few hundred pixels wide cannot show more, and min/max keeps every spike visible.
    NaN gaps inside a bucket are dropped (a bucket of only NaN stays a gap).
    """
    n = len(x)
    if n <= 2 * buckets:
        return x, y
    size = -(-n // buckets)  # epochs per bucket
    k = -(-n // size)
    pad = k * size - n
    yy = np.concatenate([np.asarray(y, np.float64), np.full(pad, np.nan)]).reshape(k, size)
    empty = ~np.isfinite(yy).any(axis=1)
    lo = np.where(np.isfinite(yy), yy, np.inf).argmin(axis=1)
    hi = np.where(np.isfinite(yy), yy, -np.inf).argmax(axis=1)
    first, second = np.minimum(lo, hi), np.maximum(lo, hi)  # in epoch order within the bucket
    idx = (np.arange(k) * size)[:, None] + np.stack([first, second], axis=1)
    idx = np.minimum(idx, n - 1).ravel()
    ys = np.asarray(y)[idx].astype(y.dtype, copy=True)
    ys[np.repeat(empty, 2)] = np.nan  # a bucket with no value stays a gap
    return np.asarray(x)[idx], ys


def nice_ceiling(n: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 4, 5, 6, 8 x 10^k that is >= n (at least 1): the epoch axis grows in
    these steps, so its ticks are redrawn a few times per decade instead of at every epoch."""
    n = max(float(n), 1.0)
    k = 10.0 ** math.floor(math.log10(n))
    return next(m * k for m in (1, 1.5, 2, 3, 4, 5, 6, 8, 10) if m * k >= n - 1e-9)


def _pen(color, width: float, dashed: bool = False) -> QPen:
    pen = pg.mkPen(color, width=width)
    pen.setCosmetic(True)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def _fmt_loss(v: float) -> str:
    if not math.isfinite(v):
        return "–"
    return f"{v:.3g}" if abs(v) >= 0.001 else f"{v:.2e}"


def _fmt_acc(v: float) -> str:
    return f"{100 * v:.1f}%" if math.isfinite(v) else "–"


def normalise_history(history: dict | None) -> dict[str, np.ndarray]:
    """Float arrays of one length for every key present; missing metric columns become NaN.

    The length is that of ``epoch`` (or of the longest metric without it, numbered 1..n).
    """
    h = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in (history or {}).items() if v is not None}
    if "epoch" in h:
        n = len(h["epoch"])
    else:
        n = max((len(v) for v in h.values()), default=0)
        h["epoch"] = np.arange(1, n + 1, dtype=np.float64)
    out = {}
    for key in list(COLUMNS) + sorted(k for k in h if k not in COLUMNS):
        v = h.get(key)
        if v is None:
            v = np.full(n, np.nan)
        elif len(v) != n:  # a column behind or ahead of the epochs: align on the epochs
            v = np.concatenate([v[:n], np.full(max(n - len(v), 0), np.nan)])
        out[key] = v
    return out


class _LossAxis(pg.AxisItem):
    """Loss axis whose log mode labels decades and, where there is room, 2x and 5x (pyqtgraph labels 1..9x
    of every decade, which piles up in a short plot)."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802,N803 - pyqtgraph override
        if not (np.isfinite(minVal) and np.isfinite(maxVal)) or maxVal <= minVal:
            return super().logTickValues(minVal, maxVal, size, stdTicks)
        per_decade = size / (maxVal - minVal)  # pixels per factor of ten
        mults = (2, 3, 5) if per_decade > 200 else (2, 5) if per_decade > 70 else ()
        lo, hi = int(np.floor(minVal)), int(np.ceil(maxVal))
        step = max(1, int(np.ceil(30 / per_decade))) if per_decade > 0 else 1  # at most a label per 30 px
        major = [float(v) for v in range(lo, hi + 1) if minVal <= v <= maxVal and v % step == 0]
        minor = [v + float(np.log10(m)) for v in range(lo, hi) for m in mults if minVal < v + np.log10(m) < maxVal]
        if len(major) + len(minor) < 2:  # a narrow range inside one decade: plain ticks on the values
            lo_v, hi_v = 10.0 ** minVal, 10.0 ** maxVal
            raw = (hi_v - lo_v) / max(size / 40.0, 2.0)
            mag = 10.0 ** np.floor(np.log10(raw))
            spacing = next(f * mag for f in (1, 2, 5, 10) if f * mag >= raw)
            ticks = np.arange(np.ceil(lo_v / spacing) * spacing, hi_v, spacing)
            return [(None, [float(v) for v in np.log10(ticks[ticks > 0])])]
        return [(float(step), major), (None, minor)]

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph override
        return [f"{10.0 ** v:.3g}" for v in values]  # pyqtgraph's "%0.1g" turns 0.031 and 0.034 into two "0.03"


class _EpochAxis(pg.AxisItem):
    """Epoch axis: whole epochs only (no 2.5 epochs on a short run)."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802,N803 - pyqtgraph override
        levels = super().tickValues(minVal, maxVal, size)
        out = [(sp, [v for v in vals if float(v).is_integer()]) for sp, vals in levels if sp >= 1]
        return out or [(1.0, [float(v) for v in range(int(np.ceil(minVal)), int(np.floor(maxVal)) + 1)])]


class CurvesView(QWidget):
    """Two stacked plots against epoch: loss (optionally log) and accuracy in %, train solid, validation dashed."""

    export_requested = Signal()  # the "Export CSV…" button was pressed

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._history: dict[str, np.ndarray] = normalise_history({})
        self._previous: dict[str, np.ndarray] | None = None

        self.latest_label = QLabel(self)
        self.latest_label.setTextFormat(Qt.TextFormat.RichText)
        self.latest_label.setToolTip("Latest epoch: train / validation")
        # Wraps instead of running under the checkbox: a label that cannot wrap claims its whole text
        # width as its minimum, and a narrow dock then paints the controls over it.
        self.latest_label.setWordWrap(True)
        self.latest_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.latest_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.log_check = QCheckBox("Log loss", self)
        self.log_check.setToolTip("Logarithmic loss axis (epochs with a zero or missing loss are left out)")
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.setToolTip("Save this run's per-epoch history as a CSV file")
        self.export_button.setEnabled(False)

        self.graphics = pg.GraphicsLayoutWidget(self)
        self.graphics.setBackground("w")
        self.graphics.ci.setContentsMargins(2, 2, 6, 2)
        self.graphics.ci.setSpacing(4)
        self.loss_plot = self.graphics.addPlot(row=0, col=0,
                                               axisItems={"left": _LossAxis("left"), "bottom": _EpochAxis("bottom")})
        self.acc_plot = self.graphics.addPlot(row=1, col=0, axisItems={"bottom": _EpochAxis("bottom")})
        self.acc_plot.setXLink(self.loss_plot)
        for plot, label in ((self.loss_plot, "loss"), (self.acc_plot, "accuracy (%)")):
            plot.setLabel("left", label, color=_TEXT)
            # no grid: pyqtgraph redraws grid lines with the axes on every update, which tripled
            # the paint time of this view (60 ms -> 20 ms at 900x330) and stalled the event loop
            plot.setMenuEnabled(True)
            plot.hideButtons()
            plot.getAxis("left").setWidth(52)
            for name in ("left", "bottom"):
                ax = plot.getAxis(name)
                ax.setPen("#9aa0a6")
                ax.setTextPen(_TEXT)
                ax.enableAutoSIPrefix(False)  # "loss (x0.001)" reads worse than plain 0.2
        self.acc_plot.setLabel("bottom", "epoch", color=_TEXT)
        self.acc_plot.setLimits(xMin=0, yMin=-5, yMax=105)
        self.score = "acc"  # the *_acc columns' meaning: "acc" (accuracy) or "R²" (regression)
        self.loss_plot.setLimits(xMin=0)  # epochs start at 1: no negative epochs on a short run
        # the epoch axis follows the run in nice steps (nice_ceiling) until the user zooms or pans it
        self._follow_x = True
        self._x_top = 0.0
        self.loss_plot.enableAutoRange(x=False)
        for plot in (self.loss_plot, self.acc_plot):
            plot.getViewBox().sigRangeChangedManually.connect(self._on_view_range_changed_manually)

        # PlotCurveItem, not PlotDataItem: setData is ~20x cheaper, and log mode is done here
        # (log10 of the data, axis in log mode) so zeros and NaN are dropped on our terms.
        prev_pen, prev_dash = _pen(PREVIOUS_COLOR, 1.0), _pen(PREVIOUS_COLOR, 1.0, dashed=True)
        train_pen, val_pen = _pen(TRAIN_COLOR, 2.0), _pen(VAL_COLOR, 2.0, dashed=True)
        self.prev_curves: dict[str, pg.PlotCurveItem] = {}
        self.curves: dict[str, pg.PlotCurveItem] = {}
        for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
            plot = self.loss_plot if key.endswith("_loss") else self.acc_plot
            train = key.startswith("train")
            self.prev_curves[key] = pg.PlotCurveItem(pen=prev_pen if train else prev_dash, connect="finite")
            self.curves[key] = pg.PlotCurveItem(pen=train_pen if train else val_pen, connect="finite", antialias=True)
            plot.addItem(self.prev_curves[key])
            plot.addItem(self.curves[key])
        # A dot on the newest train and validation value of each plot, so a run of one epoch shows too.
        self._head_brushes = [pg.mkBrush(TRAIN_COLOR), pg.mkBrush(VAL_COLOR)]
        self.heads = {}
        for name, plot in (("loss", self.loss_plot), ("acc", self.acc_plot)):
            self.heads[name] = pg.ScatterPlotItem(size=6, pen=pg.mkPen("w", width=1), antialias=True)
            self.heads[name].setZValue(5)
            plot.addItem(self.heads[name])
        self.legend = pg.LegendItem(offset=(-8, 6), labelTextColor=_TEXT, labelTextSize="8pt",
                                    brush=pg.mkBrush(255, 255, 255, 210), pen=pg.mkPen("#dadce0"))
        self.legend.setParentItem(self.loss_plot.getViewBox())
        self.legend.addItem(self.curves["train_loss"], "train")
        self.legend.addItem(self.curves["val_loss"], "validation")
        self._previous_in_legend = False
        self._previous_label = "previous run"
        self._marker_epoch: float | None = None
        # the epoch the other views show when the timeline looks back (app.timeline); hidden when live
        self.markers = [pg.InfiniteLine(angle=90, movable=False, pen=_pen("#5f6368", 1.0, dashed=True))
                        for _plot in (self.loss_plot, self.acc_plot)]
        for plot, marker in zip((self.loss_plot, self.acc_plot), self.markers, strict=True):
            marker.setZValue(6)
            marker.hide()
            plot.addItem(marker, ignoreBounds=True)

        top = QHBoxLayout()
        top.setContentsMargins(4, 0, 4, 0)
        top.addWidget(self.latest_label, 1)
        top.addWidget(self.log_check)
        top.addWidget(self.export_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 4, 2, 2)
        lay.setSpacing(2)
        lay.addLayout(top)
        lay.addWidget(self.graphics, 1)
        self._layout = lay

        self.log_check.toggled.connect(self._on_log_check_toggled)
        self.export_button.clicked.connect(self._on_export_button_clicked)
        self._show_latest()

    # ---- public API ---------------------------------------------------------------------------
    def update_history(self, history: dict[str, np.ndarray]) -> None:
        """Show the current run's per-epoch history (keys epoch, train_loss, train_acc, val_loss, val_acc, lr)."""
        h = normalise_history(history)
        if h.keys() == self._history.keys() and all(
                len(h[k]) == len(self._history[k]) and np.array_equal(h[k], self._history[k], equal_nan=True) for k in h):
            return
        self._history = h
        self._draw(self.curves, h)
        self._draw_heads(h)
        self._follow_epochs()
        self._show_latest()
        self.export_button.setEnabled(len(h["epoch"]) > 0)

    def set_series_names(self, first: str = "train", second: str = "validation") -> None:
        """Name the solid and dashed lines (a GAN draws the discriminator's and the generator's loss)."""
        for key, name in (("train_loss", first), ("val_loss", second)):
            label = self.legend.getLabel(self.curves[key])
            if label is not None and label.text != name:
                label.setText(name)
        self.latest_label.setToolTip(f"Latest epoch: {first} / {second}")

    def series_names(self) -> tuple[str, str]:
        return tuple(self.legend.getLabel(self.curves[k]).text for k in ("train_loss", "val_loss"))

    def add_footer(self, widget: QWidget) -> None:
        """Put ``widget`` (e.g. the training timeline) in a row under the plots."""
        self._layout.addWidget(widget)

    def set_marker(self, epoch: float | None) -> None:
        """A vertical line at ``epoch`` on both plots (the epoch the other views show); None hides it."""
        self._marker_epoch = None if epoch is None else float(epoch)
        for marker in self.markers:
            if epoch is None:
                marker.hide()
            else:
                marker.setValue(float(epoch))
                marker.show()

    def marker_epoch(self) -> float | None:
        return self._marker_epoch

    def set_previous_label(self, text: str) -> None:
        """Name the faint line of the previous run (e.g. "before fork")."""
        self._previous_label = text
        if self._previous_in_legend:
            label = self.legend.getLabel(self.prev_curves["train_loss"])
            if label is not None and label.text != text:
                label.setText(text)

    def previous_history(self) -> dict[str, np.ndarray] | None:
        """The faint line's history (copies), or None."""
        return None if self._previous is None else {k: v.copy() for k, v in self._previous.items()}

    def set_live(self, live: bool) -> None:
        """While a run trains, lines are drawn without antialiasing (half the paint time of this view:
        ~19 -> ~12 ms at 900x330); a paused or finished run gets the smooth picture."""
        for c in self.curves.values():
            if c.opts.get("antialias") == live:
                c.opts["antialias"] = not live
                c.update()

    def _follow_epochs(self) -> None:
        if not self._follow_x:
            return
        last = [float(np.nanmax(h["epoch"])) for h in (self._history, self._previous) if h is not None and len(h["epoch"])]
        top = nice_ceiling(max(last)) if last else 1.0
        if top != self._x_top:
            self._x_top = top
            self.loss_plot.setXRange(0, top, padding=0.02)

    def _on_view_range_changed_manually(self, *_args) -> None:
        self._follow_x = False  # the user looks at a part: leave it there until the next run

    def history(self) -> dict[str, np.ndarray]:
        """The current run's history as shown (copies)."""
        return {k: v.copy() for k, v in self._history.items()}

    def start_new_run(self) -> None:
        """Keep the current run as a faint grey line for comparison and start an empty one."""
        if len(self._history["epoch"]):
            self._previous = self._history
            self._draw(self.prev_curves, self._previous)
            if not self._previous_in_legend:
                self.legend.addItem(self.prev_curves["train_loss"], self._previous_label)
                self._previous_in_legend = True
        self._history = normalise_history({})
        self._draw(self.curves, self._history)
        self._draw_heads(self._history)
        self._follow_x, self._x_top = True, 0.0
        self._follow_epochs()
        self._show_latest()
        self.export_button.setEnabled(False)

    def clear(self) -> None:
        """Forget the current and the previous run."""
        self._history = normalise_history({})
        self._previous = None
        for c in self.prev_curves.values():
            c.setData([], [])
        if self._previous_in_legend:
            self.legend.removeItem(self.prev_curves["train_loss"])
            self._previous_in_legend = False
        self.start_new_run()

    def set_log_scale(self, on: bool) -> None:
        self.log_check.setChecked(bool(on))

    def export_csv(self, path: str | os.PathLike) -> None:
        """Write the current run's history: epoch,train_loss,train_acc,val_loss,val_acc[,lr], one row per epoch.

        Numbers are written in full precision (``repr``), so reading the file back gives the same values.
        """
        h = self._history
        cols = list(COLUMNS) + (["lr"] if "lr" in h else [])
        epochs = h["epoch"]
        whole = bool(np.all(np.isfinite(epochs)) and np.all(epochs == np.round(epochs)))
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for i in range(len(epochs)):
                row = [str(int(epochs[i])) if whole else repr(float(epochs[i]))]
                row += [repr(float(h[c][i])) for c in cols[1:]]
                w.writerow(row)

    def choose_export_path(self) -> str | None:
        """Ask for a CSV file name (overridable; tests replace it). None when cancelled."""
        path, _ = QFileDialog.getSaveFileName(self, "Export training history", "history.csv", "CSV files (*.csv)")
        if not path:
            return None
        return path if path.lower().endswith(".csv") else path + ".csv"

    def export_via_dialog(self) -> str | None:
        """Pick a file and write the CSV; a failure is shown in a message box. Returns the path written."""
        path = self.choose_export_path()
        if not path:
            return None
        try:
            self.export_csv(path)
        except OSError as exc:
            QMessageBox.warning(self, "Export CSV", f"Could not write {path}:\n{exc.strerror or exc}\n\n"
                                                    "Choose a folder you can write to.")
            return None
        return path

    def set_score_name(self, short: str = "acc") -> None:
        """Name the *_acc columns: "acc" for accuracy, "R²" when a regression run stores R^2 there."""
        self.score = short
        regression = short != "acc"
        self.acc_plot.setLabel("left", "R² (%)" if regression else "accuracy (%)", color=_TEXT)
        self.acc_plot.setLimits(yMin=-105 if regression else -5)  # R^2 starts below 0 on a fresh net
        self._show_latest()

    def set_accuracy_shown(self, shown: bool) -> None:
        """Show the accuracy (or R²) plot, or give its room to the loss (autoencoders and GANs have no score)."""
        if shown == self.accuracy_shown():
            return
        ci = self.graphics.ci
        if shown:
            ci.addItem(self.acc_plot, row=1, col=0)
        else:
            ci.removeItem(self.acc_plot)
        self.loss_plot.setLabel("bottom", "" if shown else "epoch", color=_TEXT)
        self.loss_plot.getAxis("bottom").setStyle(showValues=not shown)
        self._show_latest()

    def accuracy_shown(self) -> bool:
        return self.acc_plot.scene() is not None

    def latest_text(self) -> str:
        """The latest-values line as plain text, e.g. 'epoch 37  loss 0.081 / 0.094  acc 98.7% / 97.5%'."""
        h = self._history
        if not len(h["epoch"]):
            return "no epochs yet"
        last = {k: float(v[-1]) for k, v in h.items()}
        ep = last["epoch"]
        ep_s = str(int(ep)) if math.isfinite(ep) and ep == int(ep) else f"{ep:g}"
        text = f"epoch {ep_s}  loss {_fmt_loss(last['train_loss'])} / {_fmt_loss(last['val_loss'])}"
        if self.accuracy_shown():
            text += f"  {self.score} {_fmt_acc(last['train_acc'])} / {_fmt_acc(last['val_acc'])}"
        return text

    # ---- drawing ------------------------------------------------------------------------------
    def _series(self, h: dict[str, np.ndarray], key: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) as plotted: accuracy in %, loss as log10 in log mode; NaN wherever there is no point."""
        x = h["epoch"]
        y = h[key] * 100.0 if key.endswith("_acc") else h[key].copy()
        y[~np.isfinite(y)] = np.nan  # inf would wreck the auto range; NaN just leaves a gap
        if key.endswith("_loss") and self.log_check.isChecked():
            with np.errstate(invalid="ignore", divide="ignore"):
                y = np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan)  # 0 or < 0 has no place on a log axis
        return x, y

    def _draw(self, curves: dict, h: dict[str, np.ndarray]) -> None:
        for key, curve in curves.items():
            x, y = self._series(h, key)
            if (np.isfinite(x) & np.isfinite(y)).any():
                curve.setData(*decimate(x, y))
            else:  # nothing to draw: an all-NaN curve confuses the auto range
                curve.setData([], [])

    def _draw_heads(self, h: dict[str, np.ndarray]) -> None:
        for name, head in self.heads.items():
            xs, ys, brushes = [], [], []
            for key, brush in zip((f"train_{name}", f"val_{name}"), self._head_brushes, strict=True):
                x, y = self._series(h, key)
                ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
                if len(ok):
                    xs.append(x[ok[-1]])
                    ys.append(y[ok[-1]])
                    brushes.append(brush)
            head.setData(x=xs, y=ys, brush=brushes)

    def _show_latest(self) -> None:
        h = self._history
        if not len(h["epoch"]):
            self.latest_label.setText(f"<span style='color:#80868b'>{self.latest_text()}</span>")
            return
        last = {k: float(v[-1]) for k, v in h.items()}
        ep = self.latest_text().split("  ")[0]
        t = lambda s: f"<span style='color:{TRAIN_COLOR}'>{s}</span>"
        v = lambda s: f"<span style='color:{VAL_COLOR}'>{s}</span>"
        # Each group stays on one line (&nbsp; inside); a narrow dock wraps between groups.
        groups = (f"<b>{ep.replace(' ', '&nbsp;')}</b>",
                  f"loss&nbsp;{t(_fmt_loss(last['train_loss']))}&nbsp;/&nbsp;{v(_fmt_loss(last['val_loss']))}")
        if self.accuracy_shown():
            groups += (f"{self.score}&nbsp;{t(_fmt_acc(last['train_acc']))}&nbsp;/&nbsp;{v(_fmt_acc(last['val_acc']))}",)
        self.latest_label.setText(f"<span style='color:{_TEXT}'>{'&nbsp; '.join(groups)}</span>")

    # ---- handlers -----------------------------------------------------------------------------
    def _on_log_check_toggled(self, checked: bool) -> None:
        self.loss_plot.getAxis("left").setLogMode(False, checked)  # tick labels 10^v; the data is log10'd here
        self._draw(self.curves, self._history)
        self._draw_heads(self._history)
        if self._previous is not None:
            self._draw(self.prev_curves, self._previous)
        self.loss_plot.enableAutoRange(y=True)

    def _on_export_button_clicked(self) -> None:
        self.export_requested.emit()

