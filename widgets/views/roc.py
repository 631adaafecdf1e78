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
        """``roc``: engine.analysis.roc_pr's result."""
        for p in (self.roc_plot, self.pr_plot):
            p.clear()
            p.getPlotItem().legend.clear()
        self.roc_plot.plot([0, 1], [0, 1], pen=pg.mkPen("#bbbbbb", style=pg.QtCore.Qt.PenStyle.DashLine))
        classes = [int(c) for c in roc["classes"]]
        colors = class_colors(max(classes) + 1)
        self.aucs, self.aps = [], []
        for c, cur in zip(classes, roc["curves"], strict=True):
            name = class_names[c] if c < len(class_names) else str(c)
            pen = pg.mkPen(tuple(int(v) for v in colors[c]), width=2)
            self.aucs.append(float(cur["auc"]))
            self.aps.append(float(cur["ap"]))
            self.roc_plot.plot(cur["fpr"], cur["tpr"], pen=pen, name=f"{name}: AUC {cur['auc']:.3f}")
            self.pr_plot.plot(cur["recall"], cur["precision"], pen=pen, name=f"{name}: AP {cur['ap']:.3f}")
        if len(classes) == 1:
            self.summary.setText(f"positive class {class_names[classes[0]] if classes[0] < len(class_names) else 1}: "
                                 f"ROC AUC {self.aucs[0]:.3f}, average precision {self.aps[0]:.3f}")
        else:
            self.summary.setText(f"one-vs-rest, macro mean: ROC AUC {roc['macro_auc']:.3f}, "
                                 f"average precision {roc['macro_ap']:.3f}")

    def clear(self) -> None:
        for p in (self.roc_plot, self.pr_plot):
            p.clear()
        self.aucs, self.aps = [], []
        self.summary.setText("Train to see the ROC and precision-recall curves of the validation set")

