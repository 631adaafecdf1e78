"""Graphics items of the network canvas: node cards, ports, edges, live thumbnails and weight lines.

Items only draw and report geometry; the NetworkCanvas (widgets/editor/canvas.py) owns the interaction
and the signals. Items tell their canvas about changes through a small host interface:
``_on_node_item_moved(node)``, ``_on_strip_unit_hovered(node_id, index)``,
``_on_strip_unit_clicked(node_id, index)``.
"""
from __future__ import annotations

import functools
import html
import math
import sys

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsLineItem, QStyleOptionGraphicsItem

from engine.costs import fmt_bytes, fmt_count
from engine.layers import REGISTRY, describe_params
from widgets import pyside_fix
from widgets.editor.icons import kind_color, paint_glyph
from widgets.paint.colormaps import map_argb
from widgets.paint.palette import SELECTION_COLOR, TF_BLUE, TF_ORANGE

pyside_fix.install()  # PySide6 6.12 on Python 3.11 loses a reference to None on every void call (each paint)

NODE_W, NODE_H, HEADER_H = 184.0, 68.0, 24.0
PORT_R = 5.0
Z_EDGE, Z_WEIGHTS, Z_NODE, Z_OVERLAY = 0.0, 1.0, 2.0, 10.0

SELECT_COLOR = SELECTION_COLOR  # the app-wide selection blue (widgets.paint)
ERROR_COLOR = QColor("#D93025")
WARNING_COLOR = QColor("#F29900")
EDGE_COLOR = QColor("#8C94A3")
TEXT_COLOR = QColor("#252A34")
MUTED_COLOR = QColor("#6B7280")
POSITIVE_COLOR = QColor(TF_ORANGE)  # orange: positive weights / activations (TensorFlow Playground colours)
NEGATIVE_COLOR = QColor(TF_BLUE)  # blue: negative

_FALLBACK_DESC = {
    "Input": "from the dataset", "Output": "per class or target", "Flatten": "to a flat vector",
    "GlobalAvgPool": "mean per channel", "LayerNorm": "per sample", "BatchNorm": "per channel",
    "Add": "element-wise sum", "Concat": "join features",
}


def guarded(method):
    """Decorate a Qt override so an exception in it is reported, not fatal.

    Qt calls overrides from C++; with PySide6 6.12 on Python 3.11 some exceptions escaping an override
    crash the process while being printed. sys.excepthook gets them instead (pytest-qt turns that into
    a test failure, the app can show it).
    """
    @functools.wraps(method)
    def wrapper(self, *args):
        try:
            return method(self, *args)
        except Exception:
            sys.excepthook(*sys.exc_info())
            return None
    return wrapper


def _font(px: float, bold: bool = False, mono: bool = False) -> QFont:
    f = QFont()  # the application font: the cards match the rest of the UI
    if mono:
        f.setFamilies(["DejaVu Sans Mono", "Menlo", "Consolas", "monospace"])
        f.setStyleHint(QFont.StyleHint.Monospace)
    f.setPixelSize(round(px))
    f.setBold(bold)
    return f


_TITLE_FONT = None  # created lazily: QFont needs a QGuiApplication


def _fonts():
    global _TITLE_FONT
    if _TITLE_FONT is None:
        _TITLE_FONT = {"title": _font(12.5, bold=True), "id": _font(11), "body": _font(12),
                       "mono": _font(12, mono=True), "small": _font(11)}
    return _TITLE_FONT


# ---- colour map for live thumbnails --------------------------------------------------------

def heat_images(arr: np.ndarray) -> list[QImage]:
    """One QImage per unit of ``arr`` (units, h, w) with values in [-1, 1] (or [0, 1]); NaN shows as 0."""
    a = np.nan_to_num(np.asarray(arr, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    px = np.ascontiguousarray(map_argb(a, "diverging", -1.0, 1.0))
    _, h, w = px.shape
    # .copy() detaches each image from the numpy buffer, which is freed when this returns.
    return [QImage(px[i].data, w, h, w * 4, QImage.Format.Format_ARGB32).copy() for i in range(px.shape[0])]


def as_unit_stack(arr) -> np.ndarray | None:
    """Coerce a thumbnail array to (units, h, w): (units,) -> (units, 1, 1), (h, w) -> (1, h, w)."""
    a = np.asarray(arr)
    if a.dtype.kind not in "fiub" or a.size == 0:
        return None
    if a.ndim == 1:
        return a.reshape(-1, 1, 1)
    if a.ndim == 2:
        return a[None]
    if a.ndim == 3:
        return a
    return None


# ---- ports ------------------------------------------------------------------------------

class PortItem(QGraphicsItem):
    """A connection point: ``direction`` "in" (top of the card) or "out" (bottom)."""

    def __init__(self, node: NodeItem, direction: str):
        super().__init__(node)
        self.node = node
        self.direction = direction
        self.hover = False
        self.mark: str | None = None  # "ok" / "bad" while a wire is dragged over it
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setZValue(1)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return QRectF(-10, -10, 20, 20)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addEllipse(QPointF(0, 0), 10, 10)  # larger than drawn: easy to grab
        return path

    def set_mark(self, mark: str | None) -> None:
        if mark != self.mark:
            self.mark = mark
            self.update()

    @guarded
    def paint(self, p: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = kind_color(self.node.kind)
        r = PORT_R + (2 if self.hover or self.mark else 0)
        fill = QColor("white")
        if self.mark == "ok":
            fill, color = QColor("#34A853"), QColor("#1E7E34")
        elif self.mark == "bad":
            fill, color = ERROR_COLOR, ERROR_COLOR.darker(130)
        elif self.hover:
            fill = color.lighter(170)
        p.setPen(QPen(color, 2))
        p.setBrush(fill)
        p.drawEllipse(QPointF(0, 0), r, r)

    @guarded
    def hoverEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.hover = True
        self.update()

    @guarded
    def hoverLeaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.hover = False
        self.update()

    def scene_center(self) -> QPointF:
        return self.mapToScene(QPointF(0, 0))


# ---- live thumbnails -----------------------------------------------------------------------

class ThumbStrip(QGraphicsItem):
    """A row (or small grid) of heatmap tiles under a node card, one per unit / channel."""

    MAX_TILES = 64

    def __init__(self, node: NodeItem):
        super().__init__(node)
        self.node = node
        self.images: list[QImage] = []
        self.n_units = 0
        self.cols, self.rows, self.tile, self.gap = 1, 1, 20.0, 2.0
        self.hovered = -1
        self.setAcceptHoverEvents(True)
        self.setPos(0, NODE_H / 2 + 5)

    def set_array(self, stack: np.ndarray) -> bool:
        """Show ``stack`` (units, h, w); returns True if the strip's geometry changed."""
        n = int(stack.shape[0])
        images = heat_images(stack[: self.MAX_TILES])
        changed = n != self.n_units
        if changed:
            self.prepareGeometryChange()
            self.n_units = n
            self._layout()
        self.images = images
        self.update()
        return changed

    def _layout(self) -> None:
        shown = min(self.n_units, self.MAX_TILES)
        avail = NODE_W - 8
        if shown <= 16:
            self.cols, self.rows = max(shown, 1), 1
            self.tile = max(9.0, min(20.0, (avail - (self.cols - 1) * self.gap) / self.cols))
        else:
            self.cols = 16
            self.rows = math.ceil(shown / 16)
            self.tile = (avail - 15 * self.gap) / 16

    def _grid_width(self) -> float:
        return self.cols * self.tile + (self.cols - 1) * self.gap

    def height(self) -> float:
        return self.rows * self.tile + (self.rows - 1) * self.gap + 6

    def tile_rect(self, i: int) -> QRectF:
        """Rect of tile ``i`` in strip coordinates."""
        r, c = divmod(i, self.cols)
        x0 = -self._grid_width() / 2
        return QRectF(x0 + c * (self.tile + self.gap), 3 + r * (self.tile + self.gap), self.tile, self.tile)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        w = self._grid_width() + 8
        return QRectF(-w / 2, 0, w, self.height())

    def index_at(self, pos: QPointF) -> int:
        for i in range(min(self.n_units, self.MAX_TILES)):
            if self.tile_rect(i).adjusted(-1, -1, 1, 1).contains(pos):
                return i
        return -1

    @guarded
    def paint(self, p: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor("#D5D9E0"), 1))
        p.setBrush(QColor(255, 255, 255, 235))
        p.drawRoundedRect(self.boundingRect().adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        frame = QPen(QColor("#C4C9D2"), 0)
        for i, img in enumerate(self.images):
            r = self.tile_rect(i)
            p.drawImage(r, img)
            p.setPen(frame)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(r)
        p.setPen(QPen(ERROR_COLOR, 2))
        for i in self.node.ablated:
            if i < len(self.images):
                r = self.tile_rect(i)
                p.drawLine(r.topLeft(), r.bottomRight())
                p.drawLine(r.topRight(), r.bottomLeft())
        if 0 <= self.hovered < len(self.images):
            p.setPen(QPen(TEXT_COLOR, 2))
            p.drawRect(self.tile_rect(self.hovered).adjusted(-1, -1, 1, 1))
        if self.n_units > self.MAX_TILES:
            p.setPen(MUTED_COLOR)
            p.setFont(_fonts()["small"])
            br = self.boundingRect()
            p.drawText(QRectF(br.right() + 4, br.bottom() - 14, 60, 14), Qt.AlignmentFlag.AlignLeft,
                       f"+{self.n_units - self.MAX_TILES}")

    def _set_hovered(self, i: int) -> None:
        if i != self.hovered:
            self.hovered = i
            self.update()
            self.setToolTip(f"{self.node.layer_id} unit {i}" if i >= 0 else "")
            self.node.host._on_strip_unit_hovered(self.node.layer_id, i)

    @guarded
    def hoverMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._set_hovered(self.index_at(event.pos()))

    @guarded
    def hoverLeaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._set_hovered(-1)

    @guarded
    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        i = self.index_at(event.pos())
        if event.button() == Qt.MouseButton.LeftButton and i >= 0:
            event.accept()  # a click on a tile inspects the unit; it does not start a node drag
            self.node.host._on_strip_unit_clicked(self.node.layer_id, i)
        else:
            event.ignore()


# ---- nodes -------------------------------------------------------------------------------

class NodeItem(QGraphicsItem):
    """A layer as a card: coloured header (icon, kind, id), key params, output shape, parameter count."""

    def __init__(self, host, layer_id: str, kind: str):
        super().__init__()
        self.host = host
        self.layer_id = layer_id
        self.kind = kind
        self.params: dict = {}
        self.desc = ""
        self.shape_text = "?"
        self.count: int | None = None
        self.error: str | None = None
        self.warning: str | None = None
        self.hover = False
        self.in_port: PortItem | None = None
        self.out_port: PortItem | None = None
        self.strip: ThumbStrip | None = None
        self.macs: int | None = None  # per sample (engine.costs)
        self.cost: dict | None = None  # measured once trained: time_share, act_bytes
        self.probe: np.ndarray | None = None  # the what-if probe's activation per unit
        self.ablated: set[int] = set()  # units / filters switched off
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setAcceptHoverEvents(True)
        self.setZValue(Z_NODE)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._sync_ports()

    # ---- state -----------------------------------------------------------------------
    def set_state(self, kind: str, params: dict, shape_text: str, count: int | None,
                  error: str | None, warning: str | None) -> None:
        """Update what the card shows; repaints only if something changed."""
        desc = describe_params(kind, params) if kind in REGISTRY else "unknown kind"
        state = (kind, desc, shape_text, count, error, warning)
        if state == (self.kind, self.desc, self.shape_text, self.count, self.error, self.warning):
            self.params = dict(params)
            return
        kind_changed = kind != self.kind
        self.kind, self.params, self.desc = kind, dict(params), desc
        self.shape_text, self.count, self.error, self.warning = shape_text, count, error, warning
        if kind_changed:
            self._sync_ports()
        self.setToolTip(self._tooltip())
        self.update()

    def set_cost(self, macs: int | None, cost: dict | None) -> None:
        if (macs, cost) != (self.macs, self.cost):
            self.macs, self.cost = macs, cost
            self.setToolTip(self._tooltip())
            self.update()

    def set_probe(self, values: np.ndarray | None, ablated: set[int]) -> None:
        """Light the card up with one probe input's activations (a cell per unit); mark switched-off units."""
        self.probe, self.ablated = values, set(ablated)
        self.update()
        if self.strip is not None:
            self.strip.update()

    def cost_text(self) -> str:
        if self.macs is None:
            return ""
        text = f"{fmt_count(self.macs)} MACs"
        if self.cost is not None:
            text += f" · {100 * self.cost['time_share']:.0f}%"
        return text

    def _tooltip(self) -> str:
        k = REGISTRY.get(self.kind)
        lines = [f"<b>{html.escape(self.kind)}</b> {html.escape(self.layer_id)}"]
        if k:
            lines.append(html.escape(k.help))
        lines.append(f"output {html.escape(self.shape_text)} &middot; {self._count_text()}")
        if self.macs is not None:
            cost = f"{self.macs:,} multiply-accumulates per sample"
            if self.cost is not None:
                cost += (f" &middot; {100 * self.cost['time_share']:.1f}% of forward time &middot; "
                         f"activations {fmt_bytes(self.cost['act_bytes'])} per sample")
            lines.append(cost)
        if self.error:
            lines.insert(0, f"<span style='color:{ERROR_COLOR.name()}'><b>Error:</b> {html.escape(self.error)}</span>")
        if self.warning:
            lines.insert(0, f"<span style='color:#B06F00'><b>Warning:</b> {html.escape(self.warning)}</span>")
        return "<br>".join(lines)

    def _count_text(self) -> str:
        if self.count is None:
            return "? params"
        return f"{self.count:,} param" + ("" if self.count == 1 else "s")

    def _sync_ports(self) -> None:
        k = REGISTRY.get(self.kind)
        want_in = self.kind != "Input" and (k is None or k.max_inputs > 0)
        want_out = self.kind != "Output"
        if want_in and self.in_port is None:
            self.in_port = PortItem(self, "in")
            self.in_port.setPos(0, -NODE_H / 2)
        elif not want_in and self.in_port is not None:
            self.in_port.setParentItem(None)
            if self.in_port.scene():
                self.in_port.scene().removeItem(self.in_port)
            self.in_port = None
        if want_out and self.out_port is None:
            self.out_port = PortItem(self, "out")
        elif not want_out and self.out_port is not None:
            self.out_port.setParentItem(None)
            if self.out_port.scene():
                self.out_port.scene().removeItem(self.out_port)
            self.out_port = None
        self._place_out_port()

    def _place_out_port(self) -> None:
        if self.out_port is not None:
            self.out_port.setPos(0, self.bottom_extent())

    def bottom_extent(self) -> float:
        """Local y of the lowest part of the node (the card, or the thumbnail strip under it)."""
        if self.strip is not None and self.strip.isVisible():
            return self.strip.pos().y() + self.strip.height() + 4
        return NODE_H / 2

    # ---- live thumbnails -------------------------------------------------------------------
    def set_thumbnails(self, stack: np.ndarray | None) -> None:
        if stack is None:
            if self.strip is not None and self.strip.isVisible():
                self.strip._set_hovered(-1)  # the app may be showing that unit: tell it the mouse left
                self.strip.hide()
                self._place_out_port()
                self.host._on_node_item_moved(self)
            return
        if self.strip is None:
            self.strip = ThumbStrip(self)
            self.strip.hide()
        was_visible = self.strip.isVisible()
        changed = self.strip.set_array(stack)
        if changed or not was_visible:
            self.strip.show()
            self._place_out_port()
            self.host._on_node_item_moved(self)

    def has_thumbnails(self) -> bool:
        return self.strip is not None and self.strip.isVisible()

    def unit_anchors(self, n: int, side: str) -> list[QPointF]:
        """Scene points where weight lines meet this node's ``n`` units: "out" below, "in" on top."""
        if side == "out" and self.has_thumbnails() and self.strip.n_units == n:
            pts = []
            for i in range(n):
                r = self.strip.tile_rect(min(i, ThumbStrip.MAX_TILES - 1))
                pts.append(self.strip.mapToScene(QPointF(r.center().x(), r.bottom() + 1)))
            return pts
        if side == "in" and self.has_thumbnails() and self.strip.n_units == n <= 16:
            xs = [self.strip.tile_rect(i).center().x() for i in range(n)]
        else:
            span = NODE_W - 24
            xs = [0.0] if n == 1 else [-span / 2 + span * i / (n - 1) for i in range(n)]
        y = -NODE_H / 2 if side == "in" else NODE_H / 2
        return [self.mapToScene(QPointF(x, y)) for x in xs]

    # ---- geometry / painting ------------------------------------------------------------------
    @staticmethod
    def card_rect() -> QRectF:
        return QRectF(-NODE_W / 2, -NODE_H / 2, NODE_W, NODE_H)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self.card_rect().adjusted(-7, -7, 7, 9)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self.card_rect(), 8, 8)
        return path

    def scene_card_rect(self) -> QRectF:
        return self.card_rect().translated(self.pos())

    def obstacle_box(self, margin: float = 6.0) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of the card and its thumbnails, grown by ``margin``, for edge routing."""
        x, y = self.pos().x(), self.pos().y()
        return (x - NODE_W / 2 - margin, y - NODE_H / 2 - margin, x + NODE_W / 2 + margin, y + self.bottom_extent() + margin)

    @guarded
    def paint(self, p: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        card = self.card_rect()
        color = kind_color(self.kind)
        fonts = _fonts()
        # Soft shadow: a few translucent offsets (cheaper than QGraphicsDropShadowEffect).
        p.setPen(Qt.PenStyle.NoPen)
        for i, alpha in ((3, 10), (2, 14), (1, 20)):
            p.setBrush(QColor(30, 40, 60, alpha))
            p.drawRoundedRect(card.adjusted(-i * 0.6, i * 0.6, i * 0.6, i * 1.1 + 0.5), 8 + i, 8 + i)
        if self.isSelected():
            halo = QColor(SELECT_COLOR)
            halo.setAlpha(45)
            p.setBrush(halo)
            p.drawRoundedRect(card.adjusted(-6, -6, 6, 6), 12, 12)
        # Card and header strip.
        p.setBrush(QColor("white"))
        p.drawRoundedRect(card, 8, 8)
        header = QPainterPath()
        header.addRoundedRect(card, 8, 8)
        clip = QPainterPath()
        clip.addRect(QRectF(card.left(), card.top(), card.width(), HEADER_H))
        p.setBrush(color)
        p.drawPath(header.intersected(clip))
        paint_glyph(p, QRectF(card.left() + 8, card.top() + 4, 16, 16), self.kind, QColor("white"), self.params)
        # Header text: kind on the left, id on the right.
        p.setFont(fonts["id"])
        fm_id = QFontMetricsF(fonts["id"])
        badge = 16 if (self.error or self.warning) else 0
        id_w = min(fm_id.horizontalAdvance(self.layer_id) + 2, card.width() * 0.45)
        id_rect = QRectF(card.right() - 8 - id_w - badge, card.top(), id_w, HEADER_H)
        p.setPen(QColor(255, 255, 255, 215))
        p.drawText(id_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                   fm_id.elidedText(self.layer_id, Qt.TextElideMode.ElideMiddle, id_w))
        p.setFont(fonts["title"])
        p.setPen(QColor("white"))
        title_rect = QRectF(card.left() + 30, card.top(), id_rect.left() - card.left() - 34, HEADER_H)
        p.drawText(title_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                   QFontMetricsF(fonts["title"]).elidedText(self.kind, Qt.TextElideMode.ElideRight, title_rect.width()))
        if badge:
            self._paint_badge(p, QPointF(card.right() - 14, card.top() + HEADER_H / 2))
        # Body: key params, then output shape and parameter count.
        body_l, body_r = card.left() + 10, card.right() - 10
        p.setFont(fonts["body"])
        desc = self.desc or _FALLBACK_DESC.get(self.kind, "")
        cost = self.cost_text()
        cost_w = QFontMetricsF(fonts["small"]).horizontalAdvance(cost) + 6 if cost else 0.0
        p.setPen(TEXT_COLOR if self.desc else MUTED_COLOR)
        p.drawText(QRectF(body_l, card.top() + HEADER_H + 3, body_r - body_l - cost_w, 18),
                   Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                   QFontMetricsF(fonts["body"]).elidedText(desc, Qt.TextElideMode.ElideRight, body_r - body_l - cost_w))
        if cost:
            p.setFont(fonts["small"])
            p.setPen(MUTED_COLOR)
            p.drawText(QRectF(body_l, card.top() + HEADER_H + 3, body_r - body_l, 18),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, cost)
        line2 = QRectF(body_l, card.top() + HEADER_H + 22, body_r - body_l, 18)
        p.setFont(fonts["mono"])
        p.setPen(ERROR_COLOR if self.error and self.shape_text == "?" else MUTED_COLOR)
        p.drawText(line2, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, f"→ {self.shape_text}")
        p.setFont(fonts["small"])
        p.setPen(MUTED_COLOR)
        p.drawText(line2, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, self._count_text())
        # Outline: error (red, thick) > warning (amber) > selected (blue) > hover / plain.
        p.setBrush(Qt.BrushStyle.NoBrush)
        if self.error:
            p.setPen(QPen(ERROR_COLOR, 3))
        elif self.warning:
            p.setPen(QPen(WARNING_COLOR, 2.5))
        elif self.isSelected():
            p.setPen(QPen(SELECT_COLOR, 2.5))
        elif self.hover:
            p.setPen(QPen(color.lighter(120), 1.5))
        else:
            p.setPen(QPen(QColor("#CDD2DA"), 1))
        p.drawRoundedRect(card, 8, 8)
        if self.isSelected() and (self.error or self.warning):
            p.setPen(QPen(SELECT_COLOR, 2))
            p.drawRoundedRect(card.adjusted(-4, -4, 4, 4), 11, 11)
        if self.probe is not None and len(self.probe):
            self._paint_probe(p, card)

    def _paint_probe(self, p: QPainter, card: QRectF) -> None:
        """One cell per unit along the card's foot, orange + / blue - (switched-off units crossed)."""
        vals = np.asarray(self.probe, np.float64)
        n = len(vals)
        lim = float(np.nanmax(np.abs(vals))) if n else 0.0
        argb = map_argb(np.clip(vals / (lim or 1.0), -1, 1), "diverging", -1.0, 1.0)
        x0, w = card.left() + 8, (card.width() - 16) / n
        y0 = card.bottom() - 7
        p.setPen(Qt.PenStyle.NoPen)
        for k in range(n):
            p.setBrush(QColor.fromRgba(int(argb[k])))
            p.drawRect(QRectF(x0 + k * w, y0, max(w - (0.5 if w > 2 else 0), 0.5), 5))
        p.setPen(QPen(ERROR_COLOR, 1.2))
        for k in self.ablated:
            if k < n:
                r = QRectF(x0 + k * w, y0, w, 5)
                p.drawLine(r.topLeft(), r.bottomRight())

    def _paint_badge(self, p: QPainter, c: QPointF) -> None:
        p.setPen(QPen(QColor("white"), 1.5))
        p.setBrush(ERROR_COLOR if self.error else WARNING_COLOR)
        p.drawEllipse(c, 6.5, 6.5)
        p.setPen(QPen(QColor("white"), 1.8))
        p.drawLine(QPointF(c.x(), c.y() - 3.2), QPointF(c.x(), c.y() + 0.8))
        p.drawPoint(QPointF(c.x(), c.y() + 3.2))

    def outline_color(self) -> QColor | None:
        """The state colour of the outline: red for an error, amber for a warning, else None."""
        return ERROR_COLOR if self.error else WARNING_COLOR if self.warning else None

    def itemChange(self, change, value):  # noqa: N802 - Qt override
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            self.host._on_node_item_moved(self)
        return super().itemChange(change, value)

    @guarded
    def hoverEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.hover = True
        self.update()

    @guarded
    def hoverLeaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.hover = False
        self.update()


# ---- edges -----------------------------------------------------------------------------

class EdgeItem(QGraphicsItem):
    """A connection drawn as a vertical S-curve with an arrow head; detours around cards in the way."""

    def __init__(self, src: NodeItem, dst: NodeItem):
        super().__init__()
        self.src, self.dst = src, dst
        self.path = QPainterPath()
        self.arrow = QPolygonF()
        self.hover = False
        self.dimmed = False  # while weight lines are drawn over it
        self._shape = QPainterPath()
        self._bounds = QRectF()
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self.setZValue(Z_EDGE)

    @property
    def key(self) -> tuple[str, str]:
        return self.src.layer_id, self.dst.layer_id

    def update_path(self, obstacles: list[Box] | None = None) -> None:
        """Recompute the curve from the source's output port to the destination's input port."""
        a = self.src.out_port.scene_center() if self.src.out_port else self.src.mapToScene(0, NODE_H / 2)
        b = self.dst.in_port.scene_center() if self.dst.in_port else self.dst.mapToScene(0, -NODE_H / 2)
        a = QPointF(a.x(), a.y() + PORT_R)
        tip = QPointF(b.x(), b.y() - PORT_R - 1)
        path = curve_path(a, tip, obstacles or [])
        self.prepareGeometryChange()
        self.path = path
        angle = math.radians(path.angleAtPercent(1.0))
        d = QPointF(math.cos(angle), -math.sin(angle))  # Qt angles are counter-clockwise, y down
        n = QPointF(-d.y(), d.x())
        size = 8.0
        base = tip - d * size
        self.arrow = QPolygonF([tip, base + n * (size * 0.5), base - n * (size * 0.5)])
        stroker = QPainterPathStroker()
        stroker.setWidth(12)
        self._shape = stroker.createStroke(path)
        self._shape.addPolygon(self.arrow)
        self._bounds = self._shape.boundingRect().adjusted(-3, -3, 3, 3)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self._bounds

    def shape(self) -> QPainterPath:
        return self._shape

    @guarded
    def paint(self, p: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.isSelected():
            color, width = SELECT_COLOR, 2.8
        elif self.hover:
            color, width = EDGE_COLOR.darker(140), 2.4
        else:
            color, width = EDGE_COLOR, 1.8
        if self.dimmed and not self.isSelected():
            color = QColor(color)
            color.setAlpha(70)
        pen = QPen(color, width)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(self.path)
        p.setPen(QPen(color, 1))
        p.setBrush(color)
        p.drawPolygon(self.arrow)

    @guarded
    def hoverEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.hover = True
        self.update()

    @guarded
    def hoverLeaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.hover = False
        self.update()


Box = tuple[float, float, float, float]  # left, top, right, bottom in scene coordinates


def curve_path(a: QPointF, b: QPointF, obstacles: list[Box]) -> QPainterPath:
    """A top-to-bottom S-curve from a to b; if it would cross an obstacle it runs down a side lane.

    Obstacles are plain float boxes (already including a margin): this runs for every edge on
    every edit, so it avoids creating Qt objects per test.
    """
    dy = b.y() - a.y()
    bend = max(36.0, abs(dy) * 0.45) if dy >= 0 else max(80.0, -dy * 0.5)
    path = QPainterPath(a)
    path.cubicTo(QPointF(a.x(), a.y() + bend), QPointF(b.x(), b.y() - bend), b)
    if dy < 70 or not obstacles:
        return path
    hits = _hits(path, obstacles)
    if not hits:
        return path
    for _ in range(4):  # widen the lane until it is clear (a few rounds suffice in practice)
        right = max(h[2] for h in hits) + 20
        left = min(h[0] for h in hits) - 20
        mid = (a.x() + b.x()) / 2
        lane = right if abs(right - mid) <= abs(left - mid) else left
        lane_path = _lane_path(a, b, lane)
        more = [h for h in _hits(lane_path, obstacles) if h not in hits]
        if not more:
            return lane_path
        hits += more
    return lane_path


def _lane_path(a: QPointF, b: QPointF, lane: float) -> QPainterPath:
    y1, y2 = a.y() + 34, b.y() - 34
    path = QPainterPath(a)
    path.cubicTo(QPointF(a.x(), a.y() + 20), QPointF(lane, y1 - 16), QPointF(lane, y1))
    path.lineTo(QPointF(lane, y2))
    path.cubicTo(QPointF(lane, y2 + 16), QPointF(b.x(), b.y() - 20), b)
    return path


def _hits(path: QPainterPath, obstacles: list[Box]) -> list[Box]:
    """The obstacles that some of 23 points along ``path`` fall into."""
    pts = []
    for t in range(1, 24):
        p = path.pointAtPercent(t / 24)
        pts.append((p.x(), p.y()))
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    out = []
    for box in obstacles:
        left, top, right, bottom = box
        if right < x0 or left > x1 or bottom < y0 or top > y1:
            continue
        if any(left <= x <= right and top <= y <= bottom for x, y in pts):
            out.append(box)
    return out


# ---- weight lines ------------------------------------------------------------------------

class WeightLines:
    """Thin lines between the units of two nodes, one per weight: width ~ |w|, orange + / blue -."""

    def __init__(self, scene, src: NodeItem, dst: NodeItem):
        self.scene, self.src, self.dst = scene, src, dst
        self.lines: list[QGraphicsLineItem] = []
        self.shape: tuple[int, int] = (0, 0)

    def set_weights(self, w: np.ndarray) -> None:
        n_out, n_in = w.shape
        if (n_out, n_in) != self.shape:
            self.remove()
            self.shape = (n_out, n_in)
            for _ in range(n_out * n_in):
                line = QGraphicsLineItem()
                line.setZValue(Z_WEIGHTS)
                line.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # clicks go to the edge / nodes below
                self.scene.addItem(line)
                self.lines.append(line)
            self.update_geometry()
        a = np.nan_to_num(np.abs(w.astype(np.float64)), nan=0.0, posinf=0.0)
        top = float(a.max()) if a.size else 0.0
        norm = a / top if top > 0 else a
        for k, line in enumerate(self.lines):
            j, i = divmod(k, n_in)
            m = float(norm[j, i])
            color = QColor(POSITIVE_COLOR if w[j, i] >= 0 else NEGATIVE_COLOR)
            color.setAlphaF(0.25 + 0.75 * m)
            pen = QPen(color, 0.4 + 3.6 * m)
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            line.setPen(pen)

    def update_geometry(self) -> None:
        n_out, n_in = self.shape
        if not self.lines:
            return
        starts = self.src.unit_anchors(n_in, "out")
        ends = self.dst.unit_anchors(n_out, "in")
        for k, line in enumerate(self.lines):
            j, i = divmod(k, n_in)
            line.setLine(QLineF(starts[i], ends[j]))

    def remove(self) -> None:
        for line in self.lines:
            if line.scene() is not None:
                line.scene().removeItem(line)
        self.lines = []
        self.shape = (0, 0)
