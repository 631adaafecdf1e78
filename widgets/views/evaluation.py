"""The Evaluation view: how the network does on the validation set, class by class.

A confusion matrix (rows: true class, columns: predicted class) with the count in every cell,
coloured by the fraction of its row (so a rare class's mistakes are as visible as a common
one's): blue on the diagonal (correct), orange off it (mistakes; the orange scale runs up to the
largest off-diagonal fraction, since mistakes are usually a few % of a row). Each row ends with that class's
accuracy (recall) as a bar. Below, the misclassified samples, most confident mistakes first;
clicking one emits ``sample_selected`` so the app can open it in Feature maps / Saliency.
Clicking a matrix cell shows only that cell's mistakes (click it again, or "show all", to undo).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QToolTip, QVBoxLayout, QWidget

from widgets.paint.colormaps import lut
from widgets.paint.images import images_to_argb, qimage, rgb_to_argb
from widgets.paint.palette import SELECTION_COLOR
from widgets.views.image_grid import TileGrid

MAX_MISCLASSIFIED = 64
TOP_TITLE, LEFT_TITLE = "Predicted", "True"  # short: they must fit over a small matrix in a small dock
ZERO_CELL = QColor("#F3F4F6")


def _rgb(table: np.ndarray, t: float) -> QColor:
    i = int(round(min(max(t, 0.0), 1.0) * (len(table) - 1)))
    r, g, b = (int(v) for v in table[i][:3])
    return QColor(r, g, b)


def _same_misclassified(a: dict | None, b: dict) -> bool:
    if a is None or a["images"].shape != b["images"].shape or (a["conf"] is None) != (b["conf"] is None):
        return False
    if a["conf"] is not None and not np.array_equal(a["conf"], b["conf"], equal_nan=True):
        return False
    return (np.array_equal(a["true"], b["true"]) and np.array_equal(a["pred"], b["pred"])
            and np.array_equal(a["images"], b["images"], equal_nan=True))


class ConfusionMatrixWidget(QWidget):
    """The painted matrix with axis titles, class labels and per-class accuracy bars on the right."""

    cell_clicked = Signal(int, int)  # (true class, predicted class)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._m = np.zeros((0, 0), np.int64)
        self._acc = np.zeros(0)
        self._names: list[str] = []
        self._hover: tuple[int, int] | None = None
        self._marked: tuple[int, int] | None = None
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._small = QFont(self.font())
        self._small.setPointSizeF(max(6.5, self.font().pointSizeF() * 0.85))
        self._label_w = 20
        self._title_font = QFont(self._small)
        self._title_font.setBold(True)
        self.painted_titles: dict[str, QRect] = {}  # axis title -> where its text was drawn (widget coords)
        self.painted_cells: dict[tuple[int, int], str] = {}  # what the last paint wrote, for tests
        self.painted_accuracy: dict[int, str] = {}

    def set_data(self, matrix: np.ndarray, per_class_accuracy: np.ndarray, class_names: list[str]) -> None:
        self._m = matrix
        self._acc = per_class_accuracy
        self._names = class_names
        fm = QFontMetrics(self._small)
        self._label_w = min(110, max((fm.horizontalAdvance(n) for n in class_names), default=10) + 10)
        if self._marked and max(self._marked) >= len(matrix):
            self._marked = None
        self.updateGeometry()
        self.update()

    def set_marked(self, cell: tuple[int, int] | None) -> None:
        self._marked = cell
        self.update()

    # ---- geometry -----------------------------------------------------------------------
    def _geometry(self) -> tuple[int, int, int, int, int]:
        """(x0, y0, cell, label_w, bar_w) for the current size."""
        k = max(1, len(self._m))
        fm = QFontMetrics(self._small)
        label_w = self._label_w
        title_h = QFontMetrics(self._title_font).height() + 4  # the rotated left title's column, too
        bar_w = 92
        avail_w = self.width() - (title_h + label_w) - bar_w - 16
        avail_h = self.height() - (title_h + fm.height() + 6) - 6
        cell = int(max(8, min(56, min(avail_w, avail_h) // k)))
        spare = max(0, avail_w - cell * k)
        x0 = title_h + label_w + spare // 2
        y0 = title_h + fm.height() + 6
        return x0, y0, cell, label_w, bar_w

    def cell_rect(self, t: int, p: int) -> QRect:
        x0, y0, cell, _, _ = self._geometry()
        return QRect(x0 + p * cell, y0 + t * cell, cell, cell)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        k = len(self._m)
        x0, y0, cell, _, _ = self._geometry()
        c, r = (pos.x() - x0) // cell, (pos.y() - y0) // cell
        if k and 0 <= r < k and 0 <= c < k and pos.x() >= x0 and pos.y() >= y0:
            return int(r), int(c)
        return None

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        k = max(2, len(self._m))
        cell = 40 if k <= 10 else max(12, 400 // k)
        return QSize(150 + k * cell + 100, 60 + k * cell)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        k = max(2, len(self._m))
        return QSize(150 + k * 10 + 100, 50 + k * 10)

    # ---- painting -----------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        k = len(self._m)
        if not k:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        x0, y0, cell, label_w, bar_w = self._geometry()
        fm = QFontMetrics(self._small)
        fg = self.palette().color(self.foregroundRole())
        muted = QColor(fg)
        muted.setAlpha(150)
        m = self._m
        row_sum = m.sum(axis=1)
        frac = np.where(row_sum[:, None] > 0, m / np.maximum(row_sum[:, None], 1), 0.0)
        # Mistakes are a few % of a row: stretch the orange scale to the worst confusion so that
        # 14 mistakes look worse than 1 (the diagonal keeps the plain row fraction).
        off = frac * (1 - np.eye(k))
        off_top = float(off.max()) if off.size and off.max() > 0 else 1.0
        blues, oranges = lut("blues")[:, :3], lut("oranges")[:, :3]
        diag = np.eye(k, dtype=bool)
        shade = np.where(diag, frac, frac / off_top)
        # Start a little into the map so a single mistake is visible against an empty cell.
        idx = np.rint((0.12 + 0.83 * shade) * (len(blues) - 1)).astype(np.intp)
        rgb = np.where(diag[..., None], blues[idx], oranges[idx]).astype(np.float32) / 255.0
        rgb[m == 0] = np.asarray(ZERO_CELL.getRgb()[:3], np.float32) / 255.0
        p.drawImage(QRect(x0, y0, k * cell, k * cell), qimage(rgb_to_argb(rgb)))  # all cells, one call

        self.painted_cells, self.painted_accuracy = {}, {}
        if cell >= 16:
            bold = QFont(self._small)
            bold.setBold(True)
            dark = shade > 0.55
            # One font/pen change per group of cells, not per cell.
            for is_diag, is_dark in ((False, False), (False, True), (True, False), (True, True)):
                cells = np.argwhere((m != 0) & (diag == is_diag) & (dark == is_dark))
                if not len(cells):
                    continue
                p.setFont(bold if is_diag else self._small)
                p.setPen(QColor("white") if is_dark else QColor("#222"))
                for t, q in cells:
                    n = int(m[t, q])
                    text = str(n)
                    if len(text) >= 4 and fm.horizontalAdvance(text) > cell - 2:
                        text = f"{n / 1000:.0f}k"
                    p.drawText(QRect(x0 + q * cell, y0 + t * cell, cell, cell), Qt.AlignmentFlag.AlignCenter, text)
                    self.painted_cells[(int(t), int(q))] = text
        # Cell borders in one pass; the marked and hovered cells on top.
        p.setPen(QPen(QColor(255, 255, 255), 1))
        for i in range(k + 1):
            p.drawLine(x0 + i * cell, y0, x0 + i * cell, y0 + k * cell)
            p.drawLine(x0, y0 + i * cell, x0 + k * cell, y0 + i * cell)
        for cellpos, color in ((self._hover, QColor(0, 0, 0, 110)), (self._marked, SELECTION_COLOR)):
            if cellpos is not None:
                p.setPen(QPen(color, 2))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRect(QRectF(self.cell_rect(*cellpos)).adjusted(1, 1, -1, -1))

        # Class labels: true down the left, predicted across the top.
        p.setFont(self._small)
        p.setPen(fg)
        step = max(1, int(np.ceil(fm.height() / max(cell, 1))))  # skip labels that would overlap
        for i in range(0, k, step):
            name = self._names[i] if i < len(self._names) else str(i)
            p.drawText(QRect(x0 - label_w, y0 + i * cell, label_w - 6, cell), Qt.AlignmentFlag.AlignRight
                       | Qt.AlignmentFlag.AlignVCenter, fm.elidedText(name, Qt.TextElideMode.ElideRight, label_w - 6))
        wstep = max(1, int(np.ceil((fm.horizontalAdvance("00") + 4) / max(cell, 1))))
        for i in range(0, k, wstep if k > 10 else 1):
            name = self._names[i] if i < len(self._names) else str(i)
            p.drawText(QRect(x0 + i * cell - 20, y0 - fm.height() - 3, cell + 40, fm.height()), Qt.AlignmentFlag.AlignHCenter
                       | Qt.AlignmentFlag.AlignBottom, fm.elidedText(name, Qt.TextElideMode.ElideRight, max(cell + 8, 12)))
        self._paint_axis_titles(p, x0, y0, k * cell, label_w, muted)

        # Per-class accuracy bars, one per row.
        bx = x0 + k * cell + 12
        p.setFont(self._small)
        p.setPen(muted)
        p.drawText(QRect(bx, y0 - fm.height() - 3, bar_w, fm.height()), Qt.AlignmentFlag.AlignLeft
                   | Qt.AlignmentFlag.AlignBottom, "accuracy")
        pct_w = fm.horizontalAdvance("100%") + 4
        track_w = max(10, bar_w - pct_w - 4)
        bar_h = max(3, min(cell - 6, 12))
        for t in range(k):
            acc = float(self._acc[t]) if t < len(self._acc) else float("nan")
            cy = y0 + t * cell + cell // 2
            track = QRect(bx, cy - bar_h // 2, track_w, bar_h)
            p.fillRect(track, QColor(0, 0, 0, 16))
            if np.isfinite(acc):
                p.fillRect(QRect(track.x(), track.y(), int(round(track_w * min(max(acc, 0.0), 1.0))), bar_h),
                           _rgb(blues, 0.35 + 0.6 * acc) if acc >= 0.5 else _rgb(oranges, 0.7))
            if cell >= fm.height() - 2 or t % step == 0:
                p.setPen(fg)
                text = f"{100 * acc:.0f}%" if np.isfinite(acc) else "n/a"
                p.drawText(QRect(track.right() + 4, cy - fm.height() // 2, pct_w, fm.height()),
                           Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
                self.painted_accuracy[t] = text
        p.end()

    def _paint_axis_titles(self, p: QPainter, x0: int, y0: int, span: int, label_w: int, color: QColor) -> None:
        """'Predicted' over the columns and 'True' (rotated) left of the rows, each centred on the matrix
        but sized by its own text and kept inside the widget, so a small matrix never cuts them."""
        tf = QFontMetrics(self._title_font)
        p.setFont(self._title_font)
        p.setPen(color)
        th = tf.height()
        tw = tf.horizontalAdvance(TOP_TITLE) + 4
        x = int(min(max(0, x0 + span / 2 - tw / 2), max(0, self.width() - tw)))
        top = QRect(x, 0, tw, th)
        p.drawText(top, Qt.AlignmentFlag.AlignCenter, TOP_TITLE)
        lw = tf.horizontalAdvance(LEFT_TITLE) + 4
        cx = max(0, x0 - label_w - th - 2)
        cy = int(min(max(lw / 2, y0 + span / 2), max(lw / 2, self.height() - lw / 2)))
        p.save()
        p.translate(cx, cy + lw / 2)  # rotated -90: the text runs bottom to top, its top edge at x = cx
        p.rotate(-90)
        p.drawText(QRect(0, 0, lw, th), Qt.AlignmentFlag.AlignCenter, LEFT_TITLE)
        p.restore()
        self.painted_titles = {TOP_TITLE: top, LEFT_TITLE: QRect(cx, int(cy - lw / 2), th, lw)}

    # ---- interaction --------------------------------------------------------------------
    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            hit = self.cell_at(event.pos())
            if hit is None:
                QToolTip.hideText()
                event.ignore()
                return True
            t, q = hit
            n = int(self._m[t, q])
            total = int(self._m[t].sum())
            share = f" ({100 * n / total:.1f}% of true {self._name(t)})" if total else ""
            what = "correct" if t == q else "mistaken"
            QToolTip.showText(event.globalPos(), f"true {self._name(t)}, predicted {self._name(q)}: "
                                                 f"{n} sample{'s' if n != 1 else ''} {what}{share}"
                                                 + ("\nclick to list only these mistakes" if t != q and n else ""), self)
            return True
        return super().event(event)

    def _name(self, i: int) -> str:
        return self._names[i] if i < len(self._names) else str(i)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        hit = self.cell_at(event.position().toPoint())
        if hit != self._hover:
            self._hover = hit
            self.update()

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._hover = None
        self.update()

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        hit = self.cell_at(event.position().toPoint())
        if hit is not None and event.button() == Qt.MouseButton.LeftButton:
            self.cell_clicked.emit(*hit)


class EvaluationView(QWidget):
    """Confusion matrix, per-class accuracy and the misclassified samples of the validation set."""

    sample_selected = Signal(int)  # position in the arrays given to set_misclassified

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._matrix: np.ndarray | None = None
        self._names: list[str] = []
        self._mis: dict | None = None
        self._shown_positions: list[int] = []
        self._filter: tuple[int, int] | None = None

        self.accuracy_label = QLabel(self)
        font = self.accuracy_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.accuracy_label.setFont(font)
        self.accuracy_label.setWordWrap(True)
        self.matrix_widget = ConfusionMatrixWidget(self)
        self.mis_title = QLabel(self)
        self.mis_title.setTextFormat(Qt.TextFormat.RichText)
        self.mis_title.setWordWrap(True)
        self.mis_title.setToolTip("Click a sample to inspect it; click a matrix cell to list only its mistakes")
        self.mis_title.linkActivated.connect(self._on_mis_title_link_activated)
        self.mis_grid = TileGrid(self, tile_px=56, gap=6, max_scale=8)
        self.mis_grid.setCursor(Qt.CursorShape.PointingHandCursor)
        self.placeholder = QLabel("Train a classifier to see its confusion matrix on the validation set.", self)
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color: #777;")

        mis_body = QWidget()
        mb = QVBoxLayout(mis_body)
        mb.setContentsMargins(2, 2, 2, 2)
        mb.addWidget(self.mis_grid)
        mb.addStretch(1)
        self.mis_scroll = QScrollArea(self)
        self.mis_scroll.setWidgetResizable(True)
        self.mis_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.mis_scroll.setWidget(mis_body)
        self.mis_scroll.setMinimumHeight(80)  # a row of tiles; the matrix needs the height more

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(6)
        head = QHBoxLayout()
        head.addWidget(self.accuracy_label, 1)
        lay.addLayout(head)
        lay.addWidget(self.matrix_widget, 3)
        lay.addWidget(self.mis_title)
        lay.addWidget(self.mis_scroll, 2)
        lay.addWidget(self.placeholder, 1)

        self.matrix_widget.cell_clicked.connect(self._on_matrix_widget_cell_clicked)
        self.mis_grid.tile_clicked.connect(self._on_mis_grid_tile_clicked)
        self._set_empty(True)

    # ---- public API ---------------------------------------------------------------------
    def set_confusion(self, matrix: np.ndarray, per_class_accuracy: np.ndarray | None = None,
                      accuracy: float | None = None, class_names: list[str] | None = None) -> None:
        """The confusion matrix (k, k) of counts [true, predicted], per-class accuracy (k,) and overall accuracy."""
        m = np.asarray(matrix)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            self._set_empty(True, f"The confusion matrix must be square (k x k), got shape {m.shape}.")
            return
        m = np.nan_to_num(m.astype(np.float64)).round().astype(np.int64)
        k = len(m)
        support = m.sum(axis=1)
        if per_class_accuracy is None or len(np.atleast_1d(per_class_accuracy)) != k:
            with np.errstate(invalid="ignore", divide="ignore"):
                per_class_accuracy = np.where(support > 0, np.diag(m) / np.maximum(support, 1), np.nan)
        total = int(m.sum())
        if accuracy is None:
            accuracy = float(np.trace(m) / total) if total else float("nan")
        names = [str(c) for c in (class_names or [])] + [str(i) for i in range(len(class_names or []), k)]
        if self._matrix is not None and np.array_equal(m, self._matrix) and names == self._names:
            return  # the same evaluation again (snapshots repeat it between recomputes): nothing to redraw
        self._matrix = m
        self._names = names
        self.matrix_widget.set_data(m, np.asarray(per_class_accuracy, dtype=np.float64).reshape(-1), self._names)
        correct = int(np.trace(m))
        acc_text = f"{100 * accuracy:.1f}%" if accuracy is not None and np.isfinite(accuracy) else "n/a"
        self.accuracy_label.setText(f"Validation accuracy <b>{acc_text}</b> <span style='color:#666'>"
                                    f"({correct:,} of {total:,} correct)</span>")
        self._set_empty(False)

    def set_misclassified(self, images: np.ndarray | None, true: np.ndarray | None = None, pred: np.ndarray | None = None,
                          class_names: list[str] | None = None, confidence: np.ndarray | None = None) -> None:
        """Misclassified samples (M, C, H, W) with their true and predicted classes (and optional confidence (M,))."""
        if class_names is not None:
            self._names = [str(c) for c in class_names]
        if images is None or len(images) == 0:
            self._mis = None
        else:
            imgs = np.asarray(images, dtype=np.float32)
            if imgs.ndim == 3:
                imgs = imgs[:, None]
            m = len(imgs)
            t = np.asarray(true if true is not None else np.full(m, -1)).reshape(-1)
            q = np.asarray(pred if pred is not None else np.full(m, -1)).reshape(-1)
            c = None if confidence is None else np.asarray(confidence, dtype=np.float64).reshape(-1)
            if imgs.ndim != 4 or len(t) != m or len(q) != m or (c is not None and len(c) != m):
                self._mis = None
                self.mis_title.setText(f"<span style='color:#B33'>misclassified samples ignored: images {imgs.shape}, "
                                       f"true {t.shape}, pred {q.shape} must have one entry per image</span>")
                self.mis_grid.clear()
                return
            new = {"images": imgs, "true": t.astype(np.int64), "pred": q.astype(np.int64), "conf": c}
            if _same_misclassified(self._mis, new):
                return  # unchanged (snapshots repeat it between recomputes): keep the tiles and the selection
            self._mis = new
        self._draw_misclassified()

    def displayed_confusion(self) -> np.ndarray | None:
        """The (k, k) count matrix shown."""
        return None if self._matrix is None else self._matrix.copy()

    def cell_text(self, true: int, pred: int) -> str:
        """The text the last paint wrote in a cell ('' for an empty or unpainted one)."""
        return self.matrix_widget.painted_cells.get((true, pred), "")

    def misclassified_captions(self) -> list[str]:
        return [self._caption(p) for p in self._shown_positions]

    def shown_positions(self) -> list[int]:
        """Positions (into set_misclassified's arrays) of the tiles shown, in order."""
        return list(self._shown_positions)

    def set_filter(self, cell: tuple[int, int] | None) -> None:
        """List only the mistakes true -> pred of ``cell`` (None: all)."""
        self._filter = cell
        self.matrix_widget.set_marked(cell)
        self._draw_misclassified()

    # ---- drawing ------------------------------------------------------------------------
    def _set_empty(self, empty: bool, message: str | None = None) -> None:
        if message:
            self.placeholder.setText(message)
        self.placeholder.setVisible(empty)
        for w in (self.accuracy_label, self.matrix_widget, self.mis_title, self.mis_scroll):
            w.setVisible(not empty)

    def _name(self, i: int) -> str:
        return self._names[i] if 0 <= i < len(self._names) else str(i)

    def _caption(self, pos: int) -> str:
        mis = self._mis
        text = f"true {self._name(int(mis['true'][pos]))} \u2192 pred {self._name(int(mis['pred'][pos]))}"
        if mis["conf"] is not None and np.isfinite(mis["conf"][pos]):
            text += f" ({100 * mis['conf'][pos]:.0f}%)"
        return text

    def _draw_misclassified(self) -> None:
        mis = self._mis
        if mis is None:
            self._shown_positions = []
            self.mis_grid.clear()
            self.mis_title.setText("<b>Misclassified</b> <span style='color:#666'>- none</span>")
            return
        positions = np.arange(len(mis["images"]))
        if self._filter is not None:
            t, q = self._filter
            positions = positions[(mis["true"] == t) & (mis["pred"] == q)]
        total = len(positions)
        positions = positions[:MAX_MISCLASSIFIED]
        self._shown_positions = [int(p) for p in positions]
        if len(positions):
            tiles = images_to_argb(mis["images"][positions])
            self.mis_grid.set_tiles(tiles, captions=[self._caption(p) for p in self._shown_positions],
                                    tooltip=lambda i: self._caption(self._shown_positions[i]) + "\nclick to inspect this sample")
        else:
            self.mis_grid.clear()
        order = " (most confident first)" if mis["conf"] is not None else ""
        shown = f"showing {len(positions)} of {total}" if total > len(positions) else f"{total}"
        if self._filter is not None:
            t, q = self._filter
            in_matrix = int(self._matrix[t, q]) if self._matrix is not None and max(t, q) < len(self._matrix) else total
            if in_matrix > total:
                shown = f"{shown} listed of {in_matrix} (only the most confident mistakes are sent)"
            self.mis_title.setText(f"<b>Misclassified</b> <span style='color:#666'>- true {self._name(t)} \u2192 predicted "
                                   f"{self._name(q)}: {shown}</span> &nbsp;<a href='all'>show all</a>")
        else:
            self.mis_title.setText(f"<b>Misclassified</b> <span style='color:#666'>- {shown}{order}</span>")

    # ---- handlers -----------------------------------------------------------------------
    def _on_matrix_widget_cell_clicked(self, t: int, q: int) -> None:
        if t == q or self._filter == (t, q):
            self.set_filter(None)
        else:
            self.set_filter((t, q))

    def _on_mis_grid_tile_clicked(self, i: int) -> None:
        if 0 <= i < len(self._shown_positions):
            self.mis_grid.set_selected(i)
            self.sample_selected.emit(self._shown_positions[i])

    def _on_mis_title_link_activated(self, link: str) -> None:
        self.set_filter(None)
