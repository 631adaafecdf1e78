"""ROC and precision-recall curves with their areas, one per class (one-vs-rest) or one for two classes."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from widgets.paint.palette import class_colors


def _plot(title: str, xlabel: str, ylabel: str) -> pg.PlotWidget:
    w = pg.PlotWidget(background="w", title=title)
    w.setMenuEnabled(False)
    w.hideButtons()
    w.setLabel("bottom", xlabel)
    w.setLabel("left", ylabel)
    w.setXRange(0, 1, padding=0.02)
    w.setYRange(0, 1, padding=0.02)
    w.setMouseEnabled(False, False)
    w.addLegend(offset=(-5, -5) if title.startswith("Precision") else (-5, 5), labelTextSize="8pt")
    return w


class RocView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        self.roc_plot = _plot("ROC", "false positive rate", "true positive rate")
        self.pr_plot = _plot("Precision-recall", "recall", "precision")
        row.addWidget(self.roc_plot)
        row.addWidget(self.pr_plot)
        lay.addLayout(row, 1)
        self.summary = QLabel("Train to see the ROC and precision-recall curves of the validation set")
        lay.addWidget(self.summary)
        self.aucs: list[float] = []
        self.aps: list[float] = []

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(520, 300)

    def set_curves(self, roc: dict, class_names: list[str]) -> None:
        """``roc``: engine.analysis.roc_pr's result. Curve items are reused; an unchanged result is not redrawn."""
        classes = [int(c) for c in roc["classes"]]
        key = (tuple(classes), tuple(class_names), tuple((float(c["auc"]), float(c["ap"]), len(c["fpr"]))
                                                         for c in roc["curves"]))
        if key == getattr(self, "_key", None):
            return
        self._key = key
        if len(getattr(self, "_items", [])) != len(classes) or getattr(self, "_names", None) != (classes, class_names):
            self._make_items(classes, class_names)
        self.aucs, self.aps = [], []
        for c, cur, (roc_item, pr_item) in zip(classes, roc["curves"], self._items, strict=True):
            name = class_names[c] if c < len(class_names) else str(c)
            self.aucs.append(float(cur["auc"]))
            self.aps.append(float(cur["ap"]))
            roc_item.setData(cur["fpr"], cur["tpr"], skipFiniteCheck=True)
            pr_item.setData(cur["recall"], cur["precision"], skipFiniteCheck=True)
            for plot, item, text in ((self.roc_plot, roc_item, f"{name}: AUC {cur['auc']:.3f}"),
                                     (self.pr_plot, pr_item, f"{name}: AP {cur['ap']:.3f}")):
                label = plot.getPlotItem().legend.getLabel(item)
                if label is not None and label.text != text:  # a legend relayout costs ~0.5 ms per label
                    label.setText(text)
        if len(classes) == 1:
            self.summary.setText(f"positive class {class_names[classes[0]] if classes[0] < len(class_names) else 1}: "
                                 f"ROC AUC {self.aucs[0]:.3f}, average precision {self.aps[0]:.3f}")
        else:
            self.summary.setText(f"one-vs-rest, macro mean: ROC AUC {roc['macro_auc']:.3f}, "
                                 f"average precision {roc['macro_ap']:.3f}")

    def _make_items(self, classes: list[int], class_names: list[str]) -> None:
        for p in (self.roc_plot, self.pr_plot):
            p.clear()
            p.getPlotItem().legend.clear()
        self.roc_plot.plot([0, 1], [0, 1], pen=pg.mkPen("#bbbbbb", style=pg.QtCore.Qt.PenStyle.DashLine))
        colors = class_colors(max(classes) + 1)
        self._items = []
        for c in classes:
            name = class_names[c] if c < len(class_names) else str(c)
            pen = pg.mkPen(tuple(int(v) for v in colors[c]), width=2)
            # PlotCurveItem, not PlotDataItem: a third of the cost per setData for a plain line
            pair = (pg.PlotCurveItem(pen=pen, name=name), pg.PlotCurveItem(pen=pen, name=name))
            for plot, item in zip((self.roc_plot, self.pr_plot), pair, strict=True):
                plot.addItem(item)
            self._items.append(pair)
        self._names = (classes, class_names)

    def clear(self) -> None:
        self._key, self._items, self._names = None, [], None
        for p in (self.roc_plot, self.pr_plot):
            p.clear()
            p.getPlotItem().legend.clear()
        self.aucs, self.aps = [], []
        self.summary.setText("Train to see the ROC and precision-recall curves of the validation set")

