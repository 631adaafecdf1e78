"""The network canvas: a Spec shown as a top-to-bottom node graph.

The canvas is a view. It never edits the Spec: every user action becomes a signal (an intent)
that the app turns into an undoable edit, after which the app calls ``set_design`` again.
Node positions are the card centres in scene coordinates and equal ``LayerSpec.pos``.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QKeySequence, QPainter, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsScene, QGraphicsView, QMenu, QWidget

from engine.costs import design_macs, fmt_bytes, fmt_count
from engine.layers import REGISTRY, Report, fmt_shape, would_cycle
from engine.spec import Spec
from widgets.editor.canvas_items import (
    ERROR_COLOR,
    MUTED_COLOR,
    NODE_H,
    NODE_W,
    SELECT_COLOR,
    Z_OVERLAY,
    EdgeItem,
    NodeItem,
    PortItem,
    ThumbStrip,
    WeightLines,
    as_unit_stack,
    curve_path,
    guarded,
)
from widgets.editor.health_badges import badges_of, set_badges
from widgets.editor.icons import kind_color
from widgets.editor.palette import LAYER_MIME, parse_layer_mime

MIN_ZOOM, MAX_ZOOM = 0.15, 3.0
FIT_MIN_ZOOM = 0.5  # below this a card's text is unreadable: "fit" stops here and the user scrolls
MAX_WEIGHT_LINES = 1024  # above this an edge's weights are not drawn (unreadable and slow)
_SCENE_HALF = 20000.0
_COMMAND_MODIFIERS = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier


def edge_refusal(spec: Spec, src: str, dst: str) -> str | None:
    """Why an edge src -> dst cannot be added (a message for the status bar), or None if it can."""
    s, d = spec.layer(src), spec.layer(dst)
    if s is None or d is None:
        return f"Cannot connect {src} to {dst}: the layer no longer exists"
    if src == dst:
        return f"Cannot connect {src} to itself"
    if d.kind == "Input":
        return f"Input {dst} takes no inputs - the data enters there from the dataset"
    if s.kind == "Output":
        return f"Output {src} is the end of the network - it has no outgoing connections"
    if any(e.src == src and e.dst == dst for e in spec.edges):
        return f"{src} is already connected to {dst}"
    if would_cycle(spec, src, dst):
        return f"Connecting {src} to {dst} would make a cycle ({dst} already leads to {src})"
    k = REGISTRY.get(d.kind)
    n_in = len(spec.inputs_of(dst))
    if k is not None and n_in >= k.max_inputs:
        if k.max_inputs == 1:
            return f"{d.kind} {dst} takes one input - join branches with Add or Concat first"
        return f"{d.kind} {dst} takes at most {k.max_inputs} inputs"
    return None


def _finite_point(pos) -> QPointF:
    """LayerSpec.pos as a QPointF; anything unusable (NaN, wrong length, text) becomes the origin."""
    try:
        x, y = float(pos[0]), float(pos[1])
    except (TypeError, ValueError, IndexError):
        return QPointF(0, 0)
    return QPointF(x, y) if math.isfinite(x) and math.isfinite(y) else QPointF(0, 0)


class NetworkCanvas(QGraphicsView):
    """Node-graph view of a design (flow top to bottom) that emits the user's editing intents."""

    node_dropped = Signal(str, dict, float, float)  # kind, params, scene x, scene y (the card centre)
    file_dropped = Signal(str)  # path of a dropped .json design or .nprun run file
    edge_requested = Signal(str, str)  # src id, dst id (already checked: no cycle, free input)
    edges_delete_requested = Signal(list)  # [(src, dst)]
    delete_requested = Signal(list)  # [layer id]
    nodes_moved = Signal(dict)  # {layer id: (x, y)} once per drag, on release
    selection_changed = Signal(list)  # [layer id]
    status_message = Signal(str)  # why an action was refused
    copy_requested = Signal()
    paste_requested = Signal()
    node_activated = Signal(str)  # double-click on a card
    unit_hovered = Signal(str, int)  # node id, unit index; -1 when the mouse leaves the tiles
    unit_clicked = Signal(str, int)
    ablation_requested = Signal(dict)  # {"layer", "unit"} or {"src", "dst", "i", "j"}, with "on" (bool); {"clear": True}

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._scene = QGraphicsScene(self)
        self._scene.setSceneRect(-_SCENE_HALF, -_SCENE_HALF, 2 * _SCENE_HALF, 2 * _SCENE_HALF)
        self.setScene(self._scene)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        # The totals overlay is painted in viewport coordinates: scrolling must repaint it, not shift it.
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)  # the dot grid is drawn once per zoom
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)  # _zoom_by keeps its own anchor
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setMinimumSize(200, 150)

        self._spec = Spec()
        self._report = Report()
        self._nodes: dict[str, NodeItem] = {}
        self._edges: dict[tuple[str, str], EdgeItem] = {}
        self._weights: dict[tuple[str, str], WeightLines] = {}
        self._building = False
        self._quiet = False
        self._last_selection: list[str] = []
        self._press_positions: dict[str, QPointF] = {}
        self._wire: dict | None = None  # the edge being dragged from a port
        self._wire_item: QGraphicsPathItem | None = None
        self._marked_port: PortItem | None = None
        self._pan_from: QPointF | None = None
        self._space_down = False
        self._ghost: tuple[str, QPointF] | None = None
        self._fit_pending = True
        self._routed_for: tuple = ()
        self.context_actions: list = []  # the window's actions offered by the context menu (copy, paste, ...)
        self.ablated: set[tuple] = set()  # ("unit", layer, i) / ("link", src, dst, i, j) switched off
        self.ablation_text = ""  # e.g. "accuracy -3.1 %", shown in the footer
        self._macs: dict[str, int] = {}
        self._costs: dict[str, dict] = {}
        self._probe: dict[str, np.ndarray] = {}
        self._scene.selectionChanged.connect(self._on_scene_selection_changed)
        self.centerOn(0, 0)

    # ---- the design ---------------------------------------------------------------------
    def set_design(self, spec: Spec, report: Report) -> None:
        """Show ``spec`` with the shapes, counts and problems of ``report``; items are reused by id."""
        self._spec, self._report = spec, report
        self._macs = design_macs(spec, report)
        warnings: dict[str, str] = {}
        for prob in report.problems:
            if prob.severity == "warning":
                warnings.setdefault(prob.where, prob.message)
        self._building = True
        self._quiet = True
        try:
            seen: set[str] = set()
            for lay in spec.layers:
                if lay.id in seen:
                    continue  # a duplicated id is reported by infer(); show the first
                seen.add(lay.id)
                node = self._nodes.get(lay.id)
                if node is None:
                    node = NodeItem(self, lay.id, lay.kind)
                    self._scene.addItem(node)
                    self._nodes[lay.id] = node
                shape = report.shapes.get(lay.id)
                node.set_state(lay.kind, lay.params, fmt_shape(shape) if shape is not None else "?",
                               report.counts.get(lay.id), report.node_errors.get(lay.id), warnings.get(lay.id))
                node.set_cost(self._macs.get(lay.id), self._costs.get(lay.id))
                pos = _finite_point(lay.pos)
                if node.pos() != pos:
                    node.setPos(pos)
            for lid in [i for i in self._nodes if i not in seen]:
                self._remove_node(lid)
            wanted = []
            for e in spec.edges:
                key = (e.src, e.dst)
                if e.src in self._nodes and e.dst in self._nodes and e.src != e.dst and key not in wanted:
                    wanted.append(key)
            for key in [k for k in self._edges if k not in wanted]:
                self._scene.removeItem(self._edges.pop(key))
            for key in wanted:
                edge = self._edges.get(key)
                if edge is None:
                    edge = self._edges[key] = EdgeItem(self._nodes[key[0]], self._nodes[key[1]])
                    self._scene.addItem(edge)
                shape = report.shapes.get(key[0])
                tip = f"{key[0]} → {key[1]}" + (f"  ({fmt_shape(shape)})" if shape is not None else "")
                if edge.toolTip() != tip:
                    edge.setToolTip(tip)
            for key in [k for k in self._weights if k not in self._edges]:
                self._weights.pop(key).remove()
            self._route_all_edges()
            for wl in self._weights.values():
                wl.update_geometry()
            self._grow_scene_rect()
        finally:
            self._building = False
            self._quiet = False
        if self._fit_pending and self._nodes and self.isVisible():
            # The first design shown is framed; a first layer dropped on an empty canvas stays put.
            self._fit_pending = False
            if len(self._nodes) > 1:
                self.fit_to_view()
        self._emit_selection_if_changed()
        self.viewport().update()

    def _remove_node(self, lid: str) -> None:
        node = self._nodes.pop(lid)
        for key in [k for k in self._edges if lid in k]:
            self._scene.removeItem(self._edges.pop(key))
        for key in [k for k in self._weights if lid in k]:
            self._weights.pop(key).remove()
        self._scene.removeItem(node)

    def _obstacles(self) -> list[tuple[str, tuple[float, float, float, float]]]:
        return [(lid, n.obstacle_box()) for lid, n in self._nodes.items()]

    def _route(self, edge: EdgeItem, obstacles) -> None:
        edge.update_path([box for lid, box in obstacles if lid not in edge.key])

    def _route_all_edges(self, force: bool = False) -> None:
        """Re-route every edge, unless no card moved or changed size and no edge came or went since last time."""
        obstacles = self._obstacles()
        key = (tuple(obstacles), tuple(self._edges))
        if key == self._routed_for and not force:
            return
        self._routed_for = key
        for edge in self._edges.values():
            self._route(edge, obstacles)

    def _grow_scene_rect(self) -> None:
        bounds = self._scene.itemsBoundingRect().adjusted(-2000, -2000, 2000, 2000)
        rect = self._scene.sceneRect()
        if not rect.contains(bounds):
            self._scene.setSceneRect(rect.united(bounds))

    # ---- item host callbacks --------------------------------------------------------------
    def _on_node_item_moved(self, node: NodeItem) -> None:
        if self._building:
            return
        obstacles = self._obstacles()
        for key, edge in self._edges.items():
            if node.layer_id in key:
                self._route(edge, obstacles)
        for key, wl in self._weights.items():
            if node.layer_id in key:
                wl.update_geometry()

    def _on_strip_unit_hovered(self, node_id: str, index: int) -> None:
        self.unit_hovered.emit(node_id, index)

    def _on_strip_unit_clicked(self, node_id: str, index: int) -> None:
        self.unit_clicked.emit(node_id, index)

    # ---- selection ---------------------------------------------------------------------
    def selected_ids(self) -> list[str]:
        """Ids of the selected layers, in design order."""
        return [lid for lid, n in self._nodes.items() if n.isSelected()]

    def selected_edges(self) -> list[tuple[str, str]]:
        return [key for key, e in self._edges.items() if e.isSelected()]

    def select_ids(self, ids) -> None:
        """Select exactly these layers (unknown ids are ignored) and scroll the first into view."""
        want = set(ids)
        self._quiet = True
        try:
            self._scene.clearSelection()
            for lid in want:
                if lid in self._nodes:
                    self._nodes[lid].setSelected(True)
        finally:
            self._quiet = False
        first = next((self._nodes[i] for i in ids if i in self._nodes), None)
        if first is not None:
            self.ensureVisible(first.sceneBoundingRect(), 40, 40)
        self._emit_selection_if_changed()

    def _on_scene_selection_changed(self) -> None:
        if not self._quiet:
            self._emit_selection_if_changed()

    def _emit_selection_if_changed(self) -> None:
        ids = self.selected_ids()
        if ids != self._last_selection:
            self._last_selection = ids
            self.selection_changed.emit(ids)

    # ---- view helpers --------------------------------------------------------------------
    def node_item(self, layer_id: str) -> NodeItem | None:
        return self._nodes.get(layer_id)

    def edge_item(self, src: str, dst: str) -> EdgeItem | None:
        return self._edges.get((src, dst))

    def zoom(self) -> float:
        return self.transform().m11()

    def scene_center(self) -> tuple[float, float]:
        """Scene coordinates of the visible centre (where pasted layers go)."""
        c = self.mapToScene(self.viewport().rect().center())
        return (c.x(), c.y())

    def _zoom_by(self, factor: float, around: QPointF | None = None) -> None:
        """Scale by ``factor`` keeping the scene point under viewport point ``around`` (default: centre) fixed."""
        factor = max(MIN_ZOOM / self.zoom(), min(MAX_ZOOM / self.zoom(), factor))
        if abs(factor - 1.0) < 1e-6:
            return
        at = around if around is not None else QPointF(self.viewport().rect().center())
        fixed = self.mapToScene(at.toPoint())
        self.scale(factor, factor)
        drift = QPointF(self.mapFromScene(fixed)) - at.toPoint()
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + round(drift.x()))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + round(drift.y()))

    def zoom_in(self) -> None:
        self._zoom_by(1.25)

    def zoom_out(self) -> None:
        self._zoom_by(1 / 1.25)

    def reset_zoom(self) -> None:
        """Back to 100 % around the visible centre."""
        self._zoom_by(1.0 / self.zoom())

    def fit_to_view(self) -> None:
        """Show every layer; never magnify beyond 100 % (small designs stay at natural size).

        Never shrink below ``FIT_MIN_ZOOM`` either: a design too big for that shows its start
        (top left, where the Input is) and the rest is a scroll away - Auto-layout (Ctrl+L)
        wraps a long chain into columns that do fit."""
        if not self._nodes:
            self.resetTransform()
            self.centerOn(0, 0)
            return
        rect = QRectF()
        for n in self._nodes.values():
            rect = rect.united(n.sceneBoundingRect())
            if n.has_thumbnails():
                rect = rect.united(n.strip.sceneBoundingRect())
        for e in self._edges.values():  # a wrapped chain's edges loop below and above its columns
            rect = rect.united(e.sceneBoundingRect())
        rect = rect.adjusted(-40, -40, 40, 60)
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom() > 1.0:
            self.resetTransform()
        elif self.zoom() < FIT_MIN_ZOOM:
            self.resetTransform()
            self.scale(FIT_MIN_ZOOM, FIT_MIN_ZOOM)
        vw = self.viewport().width() / self.zoom()
        vh = self.viewport().height() / self.zoom()
        cx = rect.center().x() if rect.width() <= vw else rect.left() + vw / 2
        cy = rect.center().y() if rect.height() <= vh else rect.top() + vh / 2
        self.centerOn(cx, cy)

    @guarded
    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._fit_pending and self._nodes:
            self._fit_pending = False
            self.fit_to_view()

    # ---- live training hooks ------------------------------------------------------------
    def set_node_thumbnails(self, thumbs: dict[str, np.ndarray]) -> None:
        """Per layer id an array (units, h, w) in [-1, 1] or [0, 1] shown as tiles under the card.

        Replaces the previous set: layers not in ``thumbs`` lose their tiles. Items are reused.
        """
        for lid, node in self._nodes.items():
            stack = as_unit_stack(thumbs[lid]) if lid in thumbs else None
            node.set_thumbnails(stack)
        for wl in self._weights.values():
            wl.update_geometry()
        self._route_all_edges()  # a strip that appeared may stand in the way of an edge (cached if not)

    def set_edge_weights(self, weights: dict[tuple[str, str], np.ndarray]) -> None:
        """Per edge (src, dst) a weight matrix W (out, in) drawn as lines between the two nodes' units.

        Replaces the previous set. Matrices with more than MAX_WEIGHT_LINES entries are not drawn.
        """
        keep = set()
        for key, w in weights.items():
            key = tuple(key)
            a = np.asarray(w)
            if key not in self._edges or a.ndim != 2 or a.dtype.kind not in "fiu" or not 0 < a.size <= MAX_WEIGHT_LINES:
                continue
            wl = self._weights.get(key)
            if wl is None:
                wl = self._weights[key] = WeightLines(self._scene, self._nodes[key[0]], self._nodes[key[1]])
            wl.set_weights(a)
            keep.add(key)
        for key in [k for k in self._weights if k not in keep]:
            self._weights.pop(key).remove()
        for key, edge in self._edges.items():
            dim = key in keep
            if edge.dimmed != dim:
                edge.dimmed = dim
                edge.update()

    def clear_live(self) -> None:
        """Remove all thumbnails, weight lines and health badges."""
        self.set_edge_weights({})
        self.set_health({})
        for node in self._nodes.values():
            node.set_thumbnails(None)

    def set_health(self, badges: dict[str, list]) -> None:
        """Per layer id its health badges [(code, label, hint), ...] (engine/health.py); others lose theirs."""
        for lid, node in self._nodes.items():
            set_badges(node, badges.get(lid, []))

    def health_badges(self, layer_id: str) -> list:
        node = self._nodes.get(layer_id)
        return badges_of(node) if node is not None else []

    # ---- analysis on the cards: probe, ablation, cost ------------------------------------------
    def set_probe_values(self, values: dict[str, np.ndarray]) -> None:
        """Light every card up with the what-if probe's activations ({layer id: values}); {} clears."""
        self._probe = dict(values)
        self._sync_live_marks()

    def set_ablations(self, keys, text: str = "") -> None:
        self.ablated = {tuple(k) for k in keys}
        self.ablation_text = text if self.ablated else ""
        self._sync_live_marks()
        self.viewport().update()

    def _sync_live_marks(self) -> None:
        for lid, node in self._nodes.items():
            units = {k[2] for k in self.ablated if k[0] == "unit" and k[1] == lid}
            node.set_probe(self._probe.get(lid), units)

    def set_layer_costs(self, costs: dict[str, dict]) -> None:
        """Measured per layer: {"time_share", "act_bytes"}; {} forgets them (a new run)."""
        self._costs = dict(costs)
        for lid, node in self._nodes.items():
            node.set_cost(self._macs.get(lid), self._costs.get(lid))
        self.viewport().update()

    def layer_macs(self) -> dict[str, int]:
        return dict(self._macs)

    def _ablation_target_at(self, scene_pos: QPointF) -> dict | None:
        """The unit tile or weight line under ``scene_pos`` as an ablation target."""
        for item in self._scene.items(scene_pos):
            if isinstance(item, ThumbStrip):
                i = item.index_at(item.mapFromScene(scene_pos))
                if i >= 0:
                    return {"layer": item.node.layer_id, "unit": i}
        best, best_d = None, 4.0 / max(self.zoom(), 1e-3)
        for (src, dst), wl in self._weights.items():
            n_in = wl.shape[1]
            for k, line in enumerate(wl.lines):
                ln = line.line()
                a, b = np.array([ln.x1(), ln.y1()]), np.array([ln.x2(), ln.y2()])
                pt = np.array([scene_pos.x(), scene_pos.y()])
                t = float(np.clip(np.dot(pt - a, b - a) / max(np.dot(b - a, b - a), 1e-9), 0, 1))
                d = float(np.linalg.norm(a + t * (b - a) - pt))
                if d < best_d:
                    j, i = divmod(k, n_in)
                    best, best_d = {"src": src, "dst": dst, "i": i, "j": j}, d
        return best

    @staticmethod
    def _key(target: dict) -> tuple:
        if "src" in target:
            return ("link", target["src"], target["dst"], target["i"], target["j"])
        return ("unit", target["layer"], target["unit"])

    def _ablation_action(self, menu, target: dict, text: str) -> None:
        off = self._key(target) in self.ablated
        act = menu.addAction(("Switch on again: " if off else "Switch off ") + text)
        act.triggered.connect(lambda _c=False, t=dict(target, on=off): self.ablation_requested.emit(t))

    def context_menu(self, scene_pos: QPointF) -> QMenu:
        """The canvas's right-click menu at ``scene_pos`` (ablation while a model exists, then the edit actions)."""
        menu = QMenu(self)
        node = self._node_at(scene_pos)
        if node is not None and not node.isSelected():
            self.select_ids([node.layer_id])
        target = self._ablation_target_at(scene_pos) if self._probe or self._weights or self._live() else None
        if target is not None:
            text = (f"connection {target['src']}[{target['i']}] → {target['dst']}[{target['j']}]" if "src" in target
                    else f"unit {target['unit']} of {target['layer']}")
            self._ablation_action(menu, target, text)
        elif node is not None and self._live() and node.kind in ("Dense", "Conv2d", "Activation", "BatchNorm"):
            shape = self._report.shapes.get(node.layer_id)
            if shape:
                word = "filter" if len(shape) == 3 else "unit"
                sub = menu.addMenu(f"Switch off a {word} of {node.layer_id}")
                for i in range(min(int(shape[0]), 64)):
                    self._ablation_action(sub, {"layer": node.layer_id, "unit": i}, f"{word} {i}")
        if self.ablated:
            act = menu.addAction(f"Switch everything on again ({len(self.ablated)} off)")
            act.triggered.connect(lambda _c=False: self.ablation_requested.emit({"clear": True}))
        if not menu.isEmpty():
            menu.addSeparator()
        for act in self.context_actions:
            menu.addSeparator() if act is None else menu.addAction(act)
        return menu

    def _live(self) -> bool:
        return bool(self._costs) or any(n.has_thumbnails() for n in self._nodes.values()) or self.live_model

    live_model = False  # set by the app while a trained model exists (ablation needs one)

    def contextMenuEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.context_menu(self.mapToScene(event.pos())).exec(event.globalPos())

    def weight_line_items(self, src: str, dst: str) -> list:
        wl = self._weights.get((src, dst))
        return list(wl.lines) if wl else []

    # ---- wiring (drag from a port) ---------------------------------------------------------
    def _node_at(self, scene_pos: QPointF) -> NodeItem | None:
        for item in self._scene.items(scene_pos):
            if isinstance(item, PortItem):
                return item.node
            if isinstance(item, NodeItem):
                return item
            if isinstance(item, ThumbStrip):
                return item.node
        return None

    def _wire_ends(self, other: NodeItem) -> tuple[str, str]:
        fixed = self._wire["node"]
        if self._wire["from"] == "out":
            return fixed.layer_id, other.layer_id
        return other.layer_id, fixed.layer_id

    def _start_wire(self, port: PortItem) -> None:
        self._wire = {"node": port.node, "from": port.direction, "anchor": port.scene_center()}
        item = QGraphicsPathItem()
        pen = QPen(SELECT_COLOR, 2, Qt.PenStyle.DashLine)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        item.setPen(pen)
        item.setZValue(Z_OVERLAY)
        self._scene.addItem(item)
        self._wire_item = item

    def _update_wire(self, scene_pos: QPointF) -> None:
        a = self._wire["anchor"]
        start, end = (a, scene_pos) if self._wire["from"] == "out" else (scene_pos, a)
        self._wire_item.setPath(curve_path(start, end, []))
        target = self._node_at(scene_pos)
        port = None
        if target is not None and target is not self._wire["node"]:
            port = target.in_port if self._wire["from"] == "out" else target.out_port
        if port is not self._marked_port and self._marked_port is not None:
            self._marked_port.set_mark(None)
        self._marked_port = port
        if port is not None:
            src, dst = self._wire_ends(target)
            port.set_mark("bad" if edge_refusal(self._spec, src, dst) else "ok")

    def _finish_wire(self, scene_pos: QPointF) -> None:
        target = self._node_at(scene_pos)
        fixed = self._wire["node"]
        ends = self._wire_ends(target) if target is not None else None
        self._cancel_wire()
        if target is None or target is fixed:
            return
        src, dst = ends
        reason = edge_refusal(self._spec, src, dst)
        if reason:
            self.status_message.emit(reason)
        else:
            self.edge_requested.emit(src, dst)

    def _cancel_wire(self) -> None:
        if self._wire_item is not None:
            self._scene.removeItem(self._wire_item)
        if self._marked_port is not None:
            self._marked_port.set_mark(None)
        self._wire = self._wire_item = self._marked_port = None

    # ---- mouse ----------------------------------------------------------------------------
    @guarded
    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        pos = event.position()
        if event.button() == Qt.MouseButton.MiddleButton or (
                event.button() == Qt.MouseButton.LeftButton and self._space_down):
            self._pan_from = pos
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton:
            item = self.itemAt(pos.toPoint())
            if isinstance(item, PortItem):
                self._start_wire(item)
                self._update_wire(self.mapToScene(pos.toPoint()))
                event.accept()
                return
        super().mousePressEvent(event)
        self._press_positions = {lid: QPointF(n.pos()) for lid, n in self._nodes.items() if n.isSelected()}

    @guarded
    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        pos = event.position()
        if self._pan_from is not None:
            d = pos - self._pan_from
            self._pan_from = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(d.y()))
            event.accept()
            return
        if self._wire is not None:
            self._update_wire(self.mapToScene(pos.toPoint()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    @guarded
    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self._space_down else Qt.CursorShape.ArrowCursor)
            event.accept()
            return
        if self._wire is not None and event.button() == Qt.MouseButton.LeftButton:
            self._finish_wire(self.mapToScene(event.position().toPoint()))
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and self._press_positions:
            moved = {}
            for lid, before in self._press_positions.items():
                node = self._nodes.get(lid)
                if node is not None and (node.pos() - before).manhattanLength() > 0.5:
                    moved[lid] = (round(node.pos().x(), 2), round(node.pos().y(), 2))
            self._press_positions = {}
            if moved:
                self._route_all_edges()  # a moved card may now stand in the way of other edges
                self._grow_scene_rect()
                self.nodes_moved.emit(moved)

    @guarded
    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt override
        node = self._node_at(self.mapToScene(event.position().toPoint()))
        if node is not None and event.button() == Qt.MouseButton.LeftButton:
            self.node_activated.emit(node.layer_id)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    @guarded
    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt override
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta:
            self._zoom_by(1.0015 ** delta, event.position())
        event.accept()

    # ---- keyboard -------------------------------------------------------------------------
    @guarded
    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        key = event.key()
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            nodes, edges = self.selected_ids(), self.selected_edges()
            if nodes:
                self.delete_requested.emit(nodes)
            rest = [e for e in edges if e[0] not in nodes and e[1] not in nodes]
            if rest:
                self.edges_delete_requested.emit(rest)
            event.accept()
            return
        if key == Qt.Key.Key_Escape:
            if self._wire is not None:
                self._cancel_wire()
            else:
                self._scene.clearSelection()
            event.accept()
            return
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.setDragMode(QGraphicsView.DragMode.NoDrag)
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_requested.emit()
        elif event.matches(QKeySequence.StandardKey.Paste):
            self.paste_requested.emit()
        elif event.matches(QKeySequence.StandardKey.SelectAll):
            self.select_ids(list(self._nodes))
        elif event.modifiers() & _COMMAND_MODIFIERS:
            super().keyPressEvent(event)
            return
        elif key == Qt.Key.Key_F:
            self.fit_to_view()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_in()
        elif key == Qt.Key.Key_Minus:
            self.zoom_out()
        elif key == Qt.Key.Key_1:
            self.reset_zoom()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    @guarded
    def keyReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
            self.viewport().setCursor(Qt.CursorShape.ArrowCursor)
            event.accept()
            return
        super().keyReleaseEvent(event)

    @guarded
    def focusOutEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._space_down:  # the key release goes elsewhere; do not stay in pan mode
            self._space_down = False
            self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
            self.viewport().setCursor(Qt.CursorShape.ArrowCursor)
        super().focusOutEvent(event)

    # ---- drops ---------------------------------------------------------------------------
    @staticmethod
    def _json_path(mime) -> str | None:
        for url in mime.urls() if mime.hasUrls() else []:
            if url.isLocalFile() and url.toLocalFile().lower().endswith((".json", ".nprun")):  # a design or a run
                return url.toLocalFile()
        return None

    @guarded
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        mime = event.mimeData()
        if mime.hasFormat(LAYER_MIME) or self._json_path(mime):
            event.acceptProposedAction()
            self._update_ghost(event)
        else:
            event.ignore()

    @guarded
    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        # Not passed to QGraphicsView: the scene would refuse the drop because no item accepts it.
        mime = event.mimeData()
        if mime.hasFormat(LAYER_MIME) or self._json_path(mime):
            event.acceptProposedAction()
            self._update_ghost(event)
        else:
            event.ignore()

    @guarded
    def dragLeaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._ghost = None
        self.viewport().update()
        event.accept()

    @guarded
    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._ghost = None
        self.viewport().update()
        mime = event.mimeData()
        parsed = parse_layer_mime(mime)
        if parsed is not None:
            kind, params = parsed
            if kind not in REGISTRY:
                self.status_message.emit(f"Unknown layer kind {kind!r} - drag one from the palette")
                event.ignore()
                return
            p = self.mapToScene(event.position().toPoint())
            event.acceptProposedAction()
            self.node_dropped.emit(kind, dict(params), float(p.x()), float(p.y()))
            return
        path = self._json_path(mime)
        if path:
            event.acceptProposedAction()
            self.file_dropped.emit(path)
            return
        event.ignore()

    def _update_ghost(self, event) -> None:
        parsed = parse_layer_mime(event.mimeData())
        self._ghost = (parsed[0], self.mapToScene(event.position().toPoint())) if parsed else None
        self.viewport().update()

    # ---- painting ---------------------------------------------------------------------------
    @guarded
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 - Qt override
        painter.fillRect(rect, QColor("#F3F4F7"))
        step = 24.0
        while step * self.zoom() < 12:  # keep dots at least 12 px apart on screen
            step *= 2
        left, top = int(rect.left() // step), int(rect.top() // step)
        right, bottom = int(rect.right() // step) + 1, int(rect.bottom() // step) + 1
        if (right - left) * (bottom - top) > 40000:
            return
        pts = [QPointF(i * step, j * step) for i in range(left, right + 1) for j in range(top, bottom + 1)]
        # Square 2 px cosmetic dots without antialiasing: ten times cheaper than round ones, same look.
        pen = QPen(QColor("#C9CED6"), 2)
        pen.setCosmetic(True)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(pen)
        painter.drawPoints(pts)

    @guarded
    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 - Qt override
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        vp = self.viewport().rect()
        if self._ghost is not None:
            self._paint_ghost(painter)
        if not self._nodes:
            f = QFont()
            f.setPixelSize(15)
            painter.setFont(f)
            painter.setPen(MUTED_COLOR)
            painter.drawText(QRectF(vp), Qt.AlignmentFlag.AlignCenter,
                             "Drag layers here from the palette\nor open an example design")
        self._paint_totals(painter, vp)
        painter.restore()

    def totals_text(self) -> str:
        n = len(self._spec.layers)
        total = self._report.total_params
        text = f"{n} layer{'' if n == 1 else 's'} · {total:,} parameter{'' if total == 1 else 's'}"
        if self._macs:
            text += f" · {fmt_count(sum(self._macs.values()))} MACs/sample"
        if self._costs:
            mem = sum(c["act_bytes"] for c in self._costs.values())
            text += f" · activations {fmt_bytes(mem)}/sample"
        if self.ablation_text:
            text += f" · {len(self.ablated)} off: {self.ablation_text}"
        return text

    def _paint_totals(self, painter: QPainter, vp) -> None:
        text = self.totals_text()
        n_err = len(self._report.node_errors) + sum(
            1 for p in self._report.problems if p.severity == "error" and p.where not in self._report.node_errors)
        extra = f"  ·  {n_err} error{'' if n_err == 1 else 's'}" if n_err else ""
        f = QFont()
        f.setPixelSize(12)
        painter.setFont(f)
        fm = QFontMetricsF(f)
        w = fm.horizontalAdvance(text) + fm.horizontalAdvance(extra) + 24
        box = QRectF(vp.right() - w - 12, vp.bottom() - 36, w, 26)
        painter.setPen(QPen(QColor("#D5D9E0"), 1))
        painter.setBrush(QColor(255, 255, 255, 235))
        painter.drawRoundedRect(box, 13, 13)
        painter.setPen(QColor("#333A45"))
        tr = box.adjusted(12, 0, -12, 0)
        painter.drawText(tr, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        if extra:
            painter.setPen(ERROR_COLOR)
            painter.drawText(tr, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, extra.strip(" "))

    def _paint_ghost(self, painter: QPainter) -> None:
        kind, scene_pos = self._ghost
        c = self.mapFromScene(scene_pos)
        z = self.zoom()
        r = QRectF(c.x() - NODE_W * z / 2, c.y() - NODE_H * z / 2, NODE_W * z, NODE_H * z)
        color = kind_color(kind)
        fill = QColor(color)
        fill.setAlpha(30)
        painter.setBrush(fill)
        painter.setPen(QPen(color, 1.5, Qt.PenStyle.DashLine))
        painter.drawRoundedRect(r, 8 * z, 8 * z)
        painter.setPen(color)
        painter.drawText(r, Qt.AlignmentFlag.AlignCenter, kind)
