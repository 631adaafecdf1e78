"""The layer palette: every layer kind grouped, searchable, draggable onto the canvas.

A drag carries ``application/x-neural-playground-layer`` JSON ``{"kind": ..., "params": {...}}``;
the canvas turns a drop of it into a ``node_dropped`` intent.
"""
from __future__ import annotations

import html
import json

from PySide6.QtCore import QByteArray, QMimeData, QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDrag, QFont, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from engine.layers import ACTIVATION_FORMULAS, ACTIVATIONS, GROUPS, REGISTRY, kinds_in_group
from widgets import pyside_fix
from widgets.editor.canvas_items import guarded
from widgets.editor.icons import ACTIVATION_NAMES, kind_color, layer_icon, paint_glyph

pyside_fix.install()  # PySide6 6.12 on Python 3.11 loses a reference to None on every void call

LAYER_MIME = "application/x-neural-playground-layer"
_ROLE_KIND = Qt.ItemDataRole.UserRole
_ROLE_PARAMS = Qt.ItemDataRole.UserRole + 1


def layer_mime(kind: str, params: dict | None = None) -> QMimeData:
    """Mime data describing one layer to create: JSON ``{"kind": kind, "params": params}``."""
    mime = QMimeData()
    payload = json.dumps({"kind": kind, "params": dict(params or {})}).encode("utf-8")
    mime.setData(LAYER_MIME, QByteArray(payload))
    mime.setText(kind)  # a drop into a text field shows something sensible
    return mime


def parse_layer_mime(mime: QMimeData | None) -> tuple[str, dict] | None:
    """(kind, params) from palette mime data, or None if it is missing or malformed."""
    if mime is None or not mime.hasFormat(LAYER_MIME):
        return None
    try:
        data = json.loads(bytes(mime.data(LAYER_MIME).data()).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return None
    params = data.get("params", {})
    if not isinstance(params, dict):
        return None
    return data["kind"], params


def layer_tooltip(kind: str, params: dict | None = None) -> str:
    """Rich-text tooltip: the kind, its one-sentence help and its formula(s)."""
    k = REGISTRY[kind]
    fn = (params or {}).get("function")
    if kind == "Activation" and fn in ACTIVATION_FORMULAS:
        title = f"{ACTIVATION_NAMES.get(fn, fn)} (Activation)"
        formulas = [f"{fn}: {ACTIVATION_FORMULAS[fn]}"]
    elif kind == "Activation":
        title = kind
        formulas = [f"{name}: {formula}" for name, formula in ACTIVATION_FORMULAS.items()]
    else:
        title = kind
        formulas = [k.formula]
    lines = "<br>".join(html.escape(f) for f in formulas)
    hint = "Drag onto the canvas, or double-click to append after the selected layer."
    return (f"<b>{html.escape(title)}</b><br>{html.escape(k.help)}"
            f"<p style='font-family:monospace; margin-top:4px'>{lines}</p>"
            f"<span style='color:#777'>{hint}</span>")


def palette_entries() -> list[tuple[str, list[tuple[str, str, dict]]]]:
    """(group, [(label, kind, params)]) in palette order; Activation also lists each function."""
    out = []
    for group in GROUPS:
        entries = [(k.kind, k.kind, {}) for k in kinds_in_group(group)]
        if group == "Activation":
            entries += [(ACTIVATION_NAMES.get(fn, fn), "Activation", {"function": fn}) for fn in ACTIVATIONS]
        out.append((group, entries))
    return out


class _LayerTree(QTreeWidget):
    """Tree whose drags carry layer mime data and show a small card under the cursor."""

    @guarded
    def startDrag(self, supported_actions) -> None:  # noqa: N802 - Qt override
        item = self.currentItem()
        kind = item.data(0, _ROLE_KIND) if item else None
        if not kind:
            return
        params = item.data(0, _ROLE_PARAMS) or {}
        drag = QDrag(self)
        drag.setMimeData(layer_mime(kind, params))
        pm = _drag_pixmap(item.text(0), kind, params, self.devicePixelRatioF())
        drag.setPixmap(pm)
        drag.setHotSpot(QPoint(int(pm.width() / pm.devicePixelRatio() / 2), 12))
        drag.exec(Qt.DropAction.CopyAction)


def _drag_pixmap(label: str, kind: str, params: dict, dpr: float) -> QPixmap:
    w, h = 150, 30
    pm = QPixmap(int(w * dpr), int(h * dpr))
    pm.setDevicePixelRatio(dpr)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    color = kind_color(kind)
    p.setPen(QPen(color, 1.5))
    p.setBrush(QColor(255, 255, 255, 235))
    p.drawRoundedRect(QRectF(1, 1, w - 2, h - 2), 6, 6)
    paint_glyph(p, QRectF(8, 6, 18, 18), kind, color, params)
    font = QFont()
    font.setBold(True)
    p.setFont(font)
    p.setPen(QColor("#222"))
    p.drawText(QRectF(32, 0, w - 36, h), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, label)
    p.end()
    return pm


class LayerPalette(QWidget):
    """Every layer kind in engine.layers.REGISTRY, grouped, with a filter box on top."""

    kind_activated = Signal(str, dict)  # (kind, params): double-click / Enter on an entry

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter layers…")
        self.filter_edit.setClearButtonEnabled(True)
        self.tree = _LayerTree(self)
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setIndentation(12)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAnimated(True)
        self.tree.setIconSize(QSize(20, 20))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)
        lay.addWidget(self.filter_edit)
        lay.addWidget(self.tree)
        self._populate()
        self.filter_edit.textChanged.connect(self._on_filter_text_changed)
        self.tree.itemDoubleClicked.connect(self._on_tree_item_double_clicked)

    def _populate(self) -> None:
        bold = QFont(self.tree.font())
        bold.setBold(True)
        for group, entries in palette_entries():
            top = QTreeWidgetItem([group])
            top.setFont(0, bold)
            top.setSizeHint(0, QSize(0, 26))
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)  # a heading: not draggable, not selectable
            top.setForeground(0, kind_color(entries[0][1]) if entries else QColor("#555"))
            self.tree.addTopLevelItem(top)
            for label, kind, params in entries:
                item = QTreeWidgetItem([label])
                item.setIcon(0, layer_icon(kind, params))
                item.setData(0, _ROLE_KIND, kind)
                item.setData(0, _ROLE_PARAMS, params)
                item.setToolTip(0, layer_tooltip(kind, params))
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
                item.setSizeHint(0, QSize(0, 26))
                top.addChild(item)
            top.setExpanded(True)

    # ---- queries (used by tests and the app) ---------------------------------------------
    def entries(self) -> list[QTreeWidgetItem]:
        """All layer entries (not the group headings), in display order."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            out += [top.child(j) for j in range(top.childCount())]
        return out

    def visible_entries(self) -> list[QTreeWidgetItem]:
        return [it for it in self.entries() if not it.isHidden() and not it.parent().isHidden()]

    @staticmethod
    def entry_kind(item: QTreeWidgetItem) -> tuple[str, dict] | None:
        kind = item.data(0, _ROLE_KIND)
        return (kind, dict(item.data(0, _ROLE_PARAMS) or {})) if kind else None

    # ---- handlers -----------------------------------------------------------------------
    def _on_filter_text_changed(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            group_hit = needle in top.text(0).lower()
            any_shown = False
            for j in range(top.childCount()):
                item = top.child(j)
                kind = item.data(0, _ROLE_KIND)
                fn = (item.data(0, _ROLE_PARAMS) or {}).get("function", "")
                hay = " ".join((item.text(0), kind, fn, REGISTRY[kind].help)).lower()
                show = not needle or group_hit or needle in hay
                item.setHidden(not show)
                any_shown |= show
            top.setHidden(not any_shown)
            if any_shown:
                top.setExpanded(True)

    def _on_tree_item_double_clicked(self, item: QTreeWidgetItem, column: int) -> None:
        hit = self.entry_kind(item)
        if hit:
            self.kind_activated.emit(hit[0], hit[1])

    @guarded
    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.tree.currentItem():
            self._on_tree_item_double_clicked(self.tree.currentItem(), 0)
            return
        if event.key() == Qt.Key.Key_Escape and self.filter_edit.text():
            self.filter_edit.clear()
            return
        super().keyPressEvent(event)
