"""Health badges on the canvas cards: small pills over a card's top edge, each with a one-line hint.

The worker judges the layers (engine/health.py holds the thresholds); here a card only shows
the verdicts it gets as ``(code, label, hint)``. Pills are child items of the card, so they
move with it; ``set_badges`` reuses them and repaints only what changed.
"""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem

from widgets.editor.canvas_items import ERROR_COLOR, NODE_H, NODE_W, WARNING_COLOR, Z_OVERLAY

PILL_H = 15.0
GAP = 4.0
PORT_GAP = 12.0  # keep the input port at the top centre free
SEVERE = ("exploding", "dead_relu")  # red; the rest amber


def _font() -> QFont:
    f = QFont()
    f.setPixelSize(10)
    f.setBold(True)
    return f


class BadgeItem(QGraphicsItem):
    """One pill: a short label, the hint as tooltip."""

    def __init__(self, parent: QGraphicsItem, code: str, label: str, hint: str):
        super().__init__(parent)
        self.setZValue(Z_OVERLAY)
        self.setAcceptHoverEvents(True)
        self.set_badge(code, label, hint)

    def set_badge(self, code: str, label: str, hint: str) -> None:
        self.prepareGeometryChange()
        self.code, self.label, self.hint = code, label, hint
        self.width = QFontMetricsF(_font()).horizontalAdvance(label) + 12
        self.setToolTip(hint)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return QRectF(0, 0, self.width, PILL_H)

    def paint(self, p: QPainter, option, widget=None) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = ERROR_COLOR if self.code in SEVERE else WARNING_COLOR
        p.setPen(QPen(QColor("white"), 1.2))
        p.setBrush(color)
        p.drawRoundedRect(self.boundingRect().adjusted(0.5, 0.5, -0.5, -0.5), PILL_H / 2, PILL_H / 2)
        p.setFont(_font())
        p.setPen(QColor("white"))
        p.drawText(self.boundingRect(), Qt.AlignmentFlag.AlignCenter, self.label)


def badges_of(node) -> list[BadgeItem]:
    return list(getattr(node, "health_badges", []))


def set_badges(node: QGraphicsItem, badges: list) -> None:
    """Show ``badges`` [(code, label, hint), ...] on ``node`` (a canvas NodeItem); [] removes them."""
    items = badges_of(node)
    wanted = [tuple(b) for b in badges]
    if [(i.code, i.label, i.hint) for i in items] == wanted:
        return
    while len(items) > len(wanted):
        item = items.pop()
        item.setParentItem(None)
        if item.scene() is not None:
            item.scene().removeItem(item)
    for i, (code, label, hint) in enumerate(wanted):
        if i < len(items):
            items[i].set_badge(code, label, hint)
        else:
            items.append(BadgeItem(node, code, label, hint))
    # left to right over the top edge, stepping over the input port in the middle
    x, y = -NODE_W / 2 + 6, -NODE_H / 2 - PILL_H / 2 - 2
    for item in items:
        if x < PORT_GAP and x + item.width > -PORT_GAP:
            x = PORT_GAP
        item.setPos(x, y)
        x += item.width + GAP
    node.health_badges = items
