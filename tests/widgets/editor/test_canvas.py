"""The network canvas: shows a design, turns mouse/keyboard/drops into intents, draws live hooks.

Also covers widgets/editor/layout.auto_layout. Expected shapes and parameter counts are worked out by
hand here (not taken from the engine's report) so the card text is checked independently.
"""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDragMoveEvent, QDropEvent, QMouseEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from engine import datasets
from engine import layers as L
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec
from widgets.editor.canvas import NetworkCanvas, edge_refusal
from widgets.editor.canvas_items import ERROR_COLOR, NEGATIVE_COLOR, NODE_H, NODE_W, POSITIVE_COLOR, WARNING_COLOR
from widgets.editor.layout import auto_layout
from widgets.editor.palette import layer_mime

LEFT, NOMOD = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


def make_spec(layers, edges, dataset="xor") -> Spec:
    spec = Spec(dataset=DatasetSpec(dataset))
    spec.layers = [LayerSpec(i, k, dict(p)) for i, k, p in layers]
    spec.edges = [EdgeSpec(a, b) for a, b in edges]
    for lid, pos in auto_layout(spec).items():
        spec.layer(lid).pos = pos
    return spec


def xor_spec(units=8, extra=()):
    layers = [("input1", "Input", {}), ("dense1", "Dense", {"units": units}),
              ("act1", "Activation", {"function": "tanh"}), ("output1", "Output", {})] + list(extra)
    return make_spec(layers, [("input1", "dense1"), ("dense1", "act1"), ("act1", "output1")])


def report_for(spec):
    return L.infer(spec, datasets.describe(spec.dataset))


@pytest.fixture
def canvas(qtbot):
    c = NetworkCanvas()
    qtbot.addWidget(c)
    c.resize(1000, 800)
    c.show()
    qtbot.waitExposed(c)
    return c


def show(canvas, spec):
    canvas.set_design(spec, report_for(spec))
    canvas.reset_zoom()
    canvas.centerOn(*canvas_center_of(spec))
    QApplication.processEvents()
    return spec


def canvas_center_of(spec):
    xs = [lay.pos[0] for lay in spec.layers]
    ys = [lay.pos[1] for lay in spec.layers]
    return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2


def vp(canvas, x, y) -> QPoint:
    return canvas.mapFromScene(QPointF(x, y))


def port_point(canvas, lid, direction) -> QPoint:
    node = canvas.node_item(lid)
    port = node.out_port if direction == "out" else node.in_port
    return canvas.mapFromScene(port.scene_center())


def drag(canvas, a: QPoint, b: QPoint, steps=5, modifier=NOMOD):
    view = canvas.viewport()
    QTest.mousePress(view, LEFT, modifier, a)
    for i in range(1, steps + 1):
        QTest.mouseMove(view, a + (b - a) * (i / steps))
    QTest.mouseRelease(view, LEFT, modifier, b)


def collect(signal):
    got = []
    signal.connect(lambda *args: got.append(args))
    return got


def pixel(canvas, x, y) -> QColor:
    img = canvas.viewport().grab().toImage()
    p = vp(canvas, x, y)
    return img.pixelColor(p.x(), p.y())


def border_has(canvas, x, y, ref: QColor, tol=60, span=3) -> bool:
    """Whether some pixel within ``span`` px left/right of scene point (x, y) has colour ``ref``."""
    img = canvas.viewport().grab().toImage()
    p = vp(canvas, x, y)
    return any(close_to(img.pixelColor(p.x() + dx, p.y()), ref, tol) for dx in range(-span, span + 1))


def close_to(c: QColor, ref: QColor, tol=40) -> bool:
    return abs(c.red() - ref.red()) + abs(c.green() - ref.green()) + abs(c.blue() - ref.blue()) <= tol


# ---- showing a design -------------------------------------------------------------------------

def test_one_card_per_layer_with_shape_count_and_totals(canvas):
    spec = show(canvas, xor_spec(units=1000))
    # by hand: xor has 2 features and 2 classes; Dense 2->1000 has 2*1000+1000, Output 1000->2 has 1000*2+2
    expected = {"input1": ("2", 0), "dense1": ("1000", 3000), "act1": ("1000", 0), "output1": ("2", 2002)}
    for lid, (shape, count) in expected.items():
        node = canvas.node_item(lid)
        assert node is not None
        assert (node.shape_text, node.count) == (shape, count)
        assert (node.pos().x(), node.pos().y()) == spec.layer(lid).pos
    assert canvas.node_item("dense1").desc == "1000 units"
    assert canvas.node_item("act1").desc == "tanh"
    # multiply-accumulates per sample by hand: 2*1000 + 1000 (tanh, one per value) + 1000*2
    assert (canvas.node_item("dense1").macs, canvas.node_item("output1").macs) == (2000, 2000)
    assert "2.0k MACs" in canvas.node_item("dense1").cost_text()
    assert canvas.totals_text() == "4 layers · 5,002 parameters · 5.0k MACs/sample"
    assert {k for k in [("input1", "dense1"), ("dense1", "act1"), ("act1", "output1")] if canvas.edge_item(*k)} == {
        ("input1", "dense1"), ("dense1", "act1"), ("act1", "output1")}
    assert canvas.node_item("input1").in_port is None and canvas.node_item("output1").out_port is None


def test_error_node_is_red_with_message_and_clears_when_fixed(canvas):
    bad = xor_spec()
    bad.layer("dense1").params["units"] = 0
    rep = report_for(bad)
    canvas.set_design(bad, rep)
    canvas.reset_zoom()
    canvas.centerOn(*canvas_center_of(bad))
    node = canvas.node_item("dense1")
    message = rep.node_errors["dense1"]
    assert "units" in message
    assert node.outline_color() == ERROR_COLOR
    assert message in node.toolTip()
    x, y = bad.layer("dense1").pos
    edge_x, edge_y = x - NODE_W / 2 + 0.5, y + 12  # on the card's left border
    assert border_has(canvas, edge_x, edge_y, ERROR_COLOR)

    good = xor_spec()
    canvas.set_design(good, report_for(good))
    assert canvas.node_item("dense1") is node  # updated in place, not recreated
    assert node.outline_color() is None
    assert message not in node.toolTip()
    assert not border_has(canvas, edge_x, edge_y, ERROR_COLOR, tol=150)


def test_warning_outlined_amber(canvas):
    spec = show(canvas, xor_spec(extra=[("dense9", "Dense", {})]))
    spec.edges.append(EdgeSpec("input1", "dense9"))
    rep = report_for(spec)
    canvas.set_design(spec, rep)
    node = canvas.node_item("dense9")
    assert node.outline_color() == WARNING_COLOR
    assert "leads nowhere" in node.toolTip()


def test_set_design_keeps_selection_zoom_and_items(canvas):
    show(canvas, xor_spec())
    canvas.select_ids(["dense1"])
    canvas.zoom_in()
    zoom, centre = canvas.zoom(), canvas.scene_center()
    items = {lid: canvas.node_item(lid) for lid in ("input1", "dense1", "act1", "output1")}
    spec2 = xor_spec(extra=[("dense2", "Dense", {})])
    spec2.layer("dense2").pos = (400.0, 0.0)
    canvas.set_design(spec2, report_for(spec2))
    assert canvas.selected_ids() == ["dense1"]
    assert canvas.zoom() == pytest.approx(zoom)
    assert canvas.scene_center() == pytest.approx(centre, abs=1)
    assert all(canvas.node_item(lid) is item for lid, item in items.items())
    spec2.layers = [lay for lay in spec2.layers if lay.id != "act1"]
    spec2.edges = [e for e in spec2.edges if "act1" not in (e.src, e.dst)]
    canvas.set_design(spec2, report_for(spec2))
    assert canvas.node_item("act1") is None and canvas.edge_item("dense1", "act1") is None


def test_broken_designs_are_shown_without_crashing(canvas):
    spec = xor_spec()
    spec.layers.append(LayerSpec("weird1", "Transformer", {}, (300.0, 0.0)))
    spec.layers.append(LayerSpec("dense1", "Dense", {}, (600.0, 0.0)))  # duplicate id
    spec.layers.append(LayerSpec("lost", "Dense", {}, (float("nan"), 5.0)))
    spec.edges += [EdgeSpec("act1", "ghost"), EdgeSpec("act1", "act1"), EdgeSpec("input1", "dense1")]
    rep = report_for(spec)
    canvas.set_design(spec, rep)
    QApplication.processEvents()
    canvas.viewport().grab()  # paints every item
    weird = canvas.node_item("weird1")
    assert weird.outline_color() == ERROR_COLOR and "unknown kind" in weird.toolTip()
    assert canvas.node_item("lost").pos() == QPointF(0, 0)
    assert canvas.edge_item("act1", "ghost") is None and canvas.edge_item("act1", "act1") is None
    assert canvas.totals_text().startswith("7 layers")


def test_middle_drag_and_space_drag_pan_without_moving_nodes(canvas):
    spec = show(canvas, xor_spec())
    moved = collect(canvas.nodes_moved)
    x, y = spec.layer("dense1").pos
    start = vp(canvas, x, y + 10)
    view = canvas.viewport()
    QTest.mousePress(view, Qt.MouseButton.MiddleButton, NOMOD, start)
    QTest.mouseMove(view, start + QPoint(-60, -40))
    QTest.mouseRelease(view, Qt.MouseButton.MiddleButton, NOMOD, start + QPoint(-60, -40))
    assert vp(canvas, x, y + 10) == start + QPoint(-60, -40)  # the card follows the hand
    QTest.keyPress(canvas, Qt.Key.Key_Space)
    here = vp(canvas, x, y + 10)
    drag(canvas, here, here + QPoint(50, 20))
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    assert vp(canvas, x, y + 10) == here + QPoint(50, 20)
    assert moved == [] and canvas.node_item("dense1").pos() == QPointF(x, y)


# ---- drops --------------------------------------------------------------------------------------

def send_drop(canvas, mime, at: QPointF):
    view = canvas.viewport()
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(at, actions, mime, LEFT, NOMOD)
    QApplication.sendEvent(view, enter)
    move = QDragMoveEvent(at, actions, mime, LEFT, NOMOD)
    QApplication.sendEvent(view, move)
    drop = QDropEvent(at, actions, mime, LEFT, NOMOD)
    QApplication.sendEvent(view, drop)
    return enter, drop


def test_palette_drop_emits_node_dropped_at_scene_point(canvas):
    show(canvas, xor_spec())
    got = collect(canvas.node_dropped)
    at = QPointF(300, 200)
    enter, drop = send_drop(canvas, layer_mime("Activation", {"function": "relu"}), at)
    assert enter.isAccepted() and drop.isAccepted()
    expect = canvas.mapToScene(at.toPoint())
    assert len(got) == 1
    kind, params, x, y = got[0]
    assert (kind, params) == ("Activation", {"function": "relu"})
    assert (x, y) == pytest.approx((expect.x(), expect.y()), abs=1.5)


def test_drop_of_unknown_kind_is_refused_with_message(canvas):
    show(canvas, xor_spec())
    dropped, status = collect(canvas.node_dropped), collect(canvas.status_message)
    send_drop(canvas, layer_mime("Transformer", {}), QPointF(100, 100))
    assert dropped == [] and "Transformer" in status[0][0]


def test_json_file_drop_emits_path_and_other_files_are_refused(canvas, tmp_path):
    files = collect(canvas.file_dropped)
    mime = QMimeData()
    path = tmp_path / "net.JSON"
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "notes.txt")), QUrl.fromLocalFile(str(path))])
    send_drop(canvas, mime, QPointF(50, 50))
    assert files == [(str(path),)]
    other = QMimeData()
    other.setUrls([QUrl.fromLocalFile(str(tmp_path / "image.png"))])
    enter, _ = send_drop(canvas, other, QPointF(50, 50))
    assert not enter.isAccepted() and len(files) == 1


# ---- wiring ------------------------------------------------------------------------------------

def test_drag_from_output_port_to_input_port_requests_edge(canvas):
    show(canvas, xor_spec(extra=[("dense2", "Dense", {})]))
    canvas.node_item("dense2").setPos(350, 300)  # a free spot to the right
    got, status = collect(canvas.edge_requested), collect(canvas.status_message)
    drag(canvas, port_point(canvas, "dense1", "out"), port_point(canvas, "dense2", "in"))
    assert got == [("dense1", "dense2")] and status == []
    assert canvas._wire_item is None  # the rubber line is gone
    # The other way round: from an input port back to an output port.
    drag(canvas, port_point(canvas, "dense2", "in"), port_point(canvas, "input1", "out"))
    assert got[-1] == ("input1", "dense2")


def test_wire_dropped_on_empty_space_does_nothing(canvas):
    show(canvas, xor_spec())
    got, status = collect(canvas.edge_requested), collect(canvas.status_message)
    a = port_point(canvas, "dense1", "out")
    drag(canvas, a, a + QPoint(400, 0))
    assert got == [] and status == []


def test_cycle_and_second_input_are_refused_with_reason(canvas):
    spec = make_spec(
        [("input1", "Input", {}), ("dense1", "Dense", {}), ("add1", "Add", {}), ("act1", "Activation", {}),
         ("output1", "Output", {})],
        [("input1", "dense1"), ("dense1", "add1"), ("add1", "act1"), ("act1", "output1")])
    show(canvas, spec)
    got, status = collect(canvas.edge_requested), collect(canvas.status_message)
    drag(canvas, port_point(canvas, "act1", "out"), port_point(canvas, "add1", "in"))  # add1 takes 8, but a loop
    assert got == [] and "cycle" in status[-1][0]
    drag(canvas, port_point(canvas, "input1", "out"), port_point(canvas, "act1", "in"))
    assert got == [] and status[-1] == ("Activation act1 takes one input - join branches with Add or Concat first",)
    drag(canvas, port_point(canvas, "input1", "out"), port_point(canvas, "dense1", "in"))
    assert got == [] and "already connected" in status[-1][0]
    x, y = spec.layer("input1").pos
    drag(canvas, port_point(canvas, "act1", "out"), vp(canvas, x, y))  # onto the Input card
    assert got == [] and "Input input1 takes no inputs" in status[-1][0]
    drag(canvas, port_point(canvas, "input1", "out"), port_point(canvas, "add1", "in"))  # a real second input
    assert got == [("input1", "add1")]


def test_edge_refusal_reasons():
    spec = xor_spec(extra=[("dense2", "Dense", {})])
    assert edge_refusal(spec, "act1", "dense2") is None
    assert edge_refusal(spec, "dense1", "dense1") == "Cannot connect dense1 to itself"
    assert "would make a cycle" in edge_refusal(spec, "act1", "dense1")
    assert edge_refusal(spec, "output1", "input1").startswith("Input input1 takes no inputs")
    assert edge_refusal(spec, "output1", "dense2").startswith("Output output1 is the end of the network")
    assert edge_refusal(spec, "dense2", "act1") == "Activation act1 takes one input - join branches with Add or Concat first"
    assert edge_refusal(spec, "dense1", "act1") == "dense1 is already connected to act1"
    assert "no longer exists" in edge_refusal(spec, "ghost", "dense2")
    spec.layers.append(LayerSpec("add1", "Add"))
    for i in range(8):
        spec.layers.append(LayerSpec(f"d{i}", "Dense"))
        spec.edges.append(EdgeSpec(f"d{i}", "add1"))
    assert edge_refusal(spec, "dense2", "add1") == "Add add1 takes at most 8 inputs"


# ---- selection, keys, moving ---------------------------------------------------------------------

def test_delete_key_emits_selected_nodes_then_edges(canvas):
    show(canvas, xor_spec())
    nodes, edges = collect(canvas.delete_requested), collect(canvas.edges_delete_requested)
    QTest.keyClick(canvas, Qt.Key.Key_Delete)
    assert nodes == [] and edges == []  # nothing selected, nothing asked
    canvas.select_ids(["act1", "dense1"])
    QTest.keyClick(canvas, Qt.Key.Key_Delete)
    assert nodes == [(["dense1", "act1"],)]  # design order
    canvas.select_ids([])
    canvas.edge_item("input1", "dense1").setSelected(True)
    QTest.keyClick(canvas, Qt.Key.Key_Backspace)
    assert edges == [([("input1", "dense1")],)] and len(nodes) == 1


def test_click_on_an_edge_selects_it(canvas):
    spec = show(canvas, xor_spec())
    edge = canvas.edge_item("dense1", "act1")
    mid = edge.path.pointAtPercent(0.5)
    QTest.mouseClick(canvas.viewport(), LEFT, NOMOD, canvas.mapFromScene(mid))
    assert edge.isSelected() and canvas.selected_ids() == []
    assert spec.layer("dense1") is not None


def test_click_ctrl_click_and_rubber_band_selection(canvas):
    spec = show(canvas, xor_spec())
    changes = collect(canvas.selection_changed)
    centre = {lid: vp(canvas, *spec.layer(lid).pos) for lid in ("input1", "dense1", "act1", "output1")}
    QTest.mouseClick(canvas.viewport(), LEFT, NOMOD, centre["dense1"])
    assert canvas.selected_ids() == ["dense1"] and changes[-1] == (["dense1"],)
    ctrl = Qt.KeyboardModifier.ControlModifier
    QTest.mouseClick(canvas.viewport(), LEFT, ctrl, centre["act1"])
    assert canvas.selected_ids() == ["dense1", "act1"]
    QTest.mouseClick(canvas.viewport(), LEFT, ctrl, centre["dense1"])
    assert canvas.selected_ids() == ["act1"]
    # rubber band from empty space left of the cards down past input1 and dense1 (not act1 / output1)
    x1, _ = spec.layer("input1").pos
    _, y2 = spec.layer("dense1").pos
    a = vp(canvas, x1 - NODE_W, spec.layer("input1").pos[1] - NODE_H)
    b = vp(canvas, x1 + 10, y2 + 10)
    drag(canvas, a, b, steps=8)
    assert canvas.selected_ids() == ["input1", "dense1"]
    assert changes[-1] == (["input1", "dense1"],)


def test_moving_a_node_emits_one_nodes_moved_on_release(canvas):
    spec = show(canvas, xor_spec())
    moved = collect(canvas.nodes_moved)
    x, y = spec.layer("dense1").pos
    a = vp(canvas, x, y + 10)
    drag(canvas, a, a + QPoint(90, 30), steps=6)
    assert len(moved) == 1
    (positions,) = moved[0]
    assert list(positions) == ["dense1"]
    assert positions["dense1"] == pytest.approx((x + 90 / canvas.zoom(), y + 30 / canvas.zoom()), abs=1.5)
    QTest.mouseClick(canvas.viewport(), LEFT, NOMOD, vp(canvas, *positions["dense1"]))  # a click moves nothing
    assert len(moved) == 1


def test_moving_two_selected_nodes_reports_both(canvas):
    spec = show(canvas, xor_spec())
    moved = collect(canvas.nodes_moved)
    canvas.select_ids(["dense1", "act1"])
    x, y = spec.layer("act1").pos
    a = vp(canvas, x, y + 10)
    drag(canvas, a, a + QPoint(-50, 0))
    assert len(moved) == 1 and set(moved[0][0]) == {"dense1", "act1"}


def test_wheel_zooms_around_the_cursor_and_f_fits(canvas):
    spec = show(canvas, xor_spec())
    at = QPoint(700, 200)
    before = canvas.mapToScene(at)
    zoom = canvas.zoom()
    wheel = QWheelEvent(QPointF(at), QPointF(canvas.viewport().mapToGlobal(at)), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, NOMOD, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), wheel)
    assert canvas.zoom() > zoom * 1.3
    after = canvas.mapToScene(at)
    assert (after.x(), after.y()) == pytest.approx((before.x(), before.y()), abs=2)
    canvas.centerOn(5000, 5000)
    QTest.keyClick(canvas, Qt.Key.Key_F)
    view_rect = canvas.viewport().rect()
    for lay in spec.layers:
        assert view_rect.contains(vp(canvas, *lay.pos))
    assert canvas.zoom() <= 1.0
    cx, cy = canvas.scene_center()
    c = canvas.mapToScene(view_rect.center())
    assert (cx, cy) == pytest.approx((c.x(), c.y()), abs=1)


def test_copy_paste_keys_emit_requests(canvas):
    show(canvas, xor_spec())
    copies, pastes = collect(canvas.copy_requested), collect(canvas.paste_requested)
    QTest.keyClick(canvas, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(canvas, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert len(copies) == 1 and len(pastes) == 1


# ---- live hooks --------------------------------------------------------------------------------------

def test_thumbnails_draw_tiles_in_sign_colours_and_report_hover_and_click(canvas):
    show(canvas, xor_spec())
    acts = np.zeros((8, 1, 1))
    acts[0], acts[1] = 1.0, -1.0
    canvas.set_node_thumbnails({"dense1": acts})
    strip = canvas.node_item("dense1").strip
    assert strip.isVisible() and strip.n_units == 8
    centre = [strip.mapToScene(strip.tile_rect(i).center()) for i in range(3)]
    assert close_to(pixel(canvas, centre[0].x(), centre[0].y()), POSITIVE_COLOR)
    assert close_to(pixel(canvas, centre[1].x(), centre[1].y()), NEGATIVE_COLOR)
    assert close_to(pixel(canvas, centre[2].x(), centre[2].y()), QColor("white"))
    canvas.set_node_thumbnails({"dense1": -acts})  # same shape: same item, new colours
    assert canvas.node_item("dense1").strip is strip
    assert close_to(pixel(canvas, centre[0].x(), centre[0].y()), NEGATIVE_COLOR)

    hovered, clicked = collect(canvas.unit_hovered), collect(canvas.unit_clicked)
    view = canvas.viewport()
    for target in (canvas.mapFromScene(centre[1]), canvas.mapFromScene(QPointF(centre[1].x() + 300, centre[1].y()))):
        ev = QMouseEvent(QEvent.Type.MouseMove, QPointF(target), QPointF(view.mapToGlobal(target)),
                         Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, NOMOD)
        QApplication.sendEvent(view, ev)
    assert hovered == [("dense1", 1), ("dense1", -1)]
    QTest.mouseClick(view, LEFT, NOMOD, canvas.mapFromScene(centre[2]))
    assert clicked == [("dense1", 2)]
    assert canvas.selected_ids() == []  # a tile click inspects the unit, it does not select the card

    canvas.set_node_thumbnails({})
    assert not strip.isVisible()


def test_edge_weights_draw_one_line_per_weight_width_by_magnitude(canvas):
    show(canvas, xor_spec(units=3))
    w = np.array([[0.1, -2.0], [1.0, 0.5], [-0.25, 3.0]])  # (out=3, in=2)
    canvas.set_edge_weights({("input1", "dense1"): w})
    lines = canvas.weight_line_items("input1", "dense1")
    assert len(lines) == w.size
    widths = [ln.pen().widthF() for ln in lines]
    flat = np.abs(w).ravel()
    assert list(np.argsort(widths, kind="stable")) == list(np.argsort(flat, kind="stable"))
    signs = [ln.pen().color().red() > ln.pen().color().blue() for ln in lines]  # orange vs blue
    assert signs == list(w.ravel() >= 0)
    # lines start at the input's bottom and end at the layer's top
    assert all(ln.line().p1().y() < ln.line().p2().y() for ln in lines)

    canvas.set_edge_weights({("input1", "dense1"): -w})  # same shape: the items are reused
    assert canvas.weight_line_items("input1", "dense1") == lines
    assert [ln.pen().color().red() > ln.pen().color().blue() for ln in lines] == list(-w.ravel() >= 0)
    # a moved node drags its weight lines along
    before = lines[0].line().p2()
    canvas.node_item("dense1").moveBy(40, 0)
    assert lines[0].line().p2().x() == pytest.approx(before.x() + 40)

    canvas.clear_live()
    assert canvas.weight_line_items("input1", "dense1") == []
    assert all(ln.scene() is None for ln in lines)


def test_live_hooks_ignore_bad_input(canvas):
    show(canvas, xor_spec())
    canvas.set_node_thumbnails({"ghost": np.ones((2, 2, 2)), "dense1": np.full((4, 3, 3), np.nan),
                                "act1": np.zeros((2, 2, 2, 2)), "output1": np.array(["a"])})
    assert canvas.node_item("dense1").has_thumbnails()
    assert not canvas.node_item("act1").has_thumbnails() and not canvas.node_item("output1").has_thumbnails()
    canvas.set_edge_weights({("dense1", "output1"): np.ones((2, 8)),  # no such edge
                             ("input1", "dense1"): np.ones(16),  # not a matrix
                             ("act1", "output1"): np.ones((2000, 2))})  # too many lines to draw
    assert canvas.weight_line_items("input1", "dense1") == []
    assert canvas.weight_line_items("act1", "output1") == []


# ---- auto layout --------------------------------------------------------------------------------------

def _residual_spec():
    return make_spec(
        [("input1", "Input", {}), ("dense1", "Dense", {}), ("dense2", "Dense", {}), ("act1", "Activation", {}),
         ("add1", "Add", {}), ("left", "Dense", {}), ("right", "Dense", {}), ("cat", "Concat", {}), ("output1", "Output", {})],
        [("input1", "dense1"), ("dense1", "dense2"), ("dense2", "act1"), ("act1", "add1"), ("dense1", "add1"),
         ("add1", "left"), ("add1", "right"), ("left", "cat"), ("right", "cat"), ("cat", "output1")])


def test_auto_layout_rows_follow_edges_and_branches_sit_side_by_side():
    spec = _residual_spec()
    pos = auto_layout(spec)
    assert set(pos) == {lay.id for lay in spec.layers}
    assert len(set(pos.values())) == len(pos)
    for e in spec.edges:
        assert pos[e.src][1] < pos[e.dst][1], e  # every edge points down
    assert pos["left"][1] == pos["right"][1] and abs(pos["left"][0] - pos["right"][0]) >= NODE_W
    # the main path of the residual block is one straight column; the skip edge goes round it
    assert pos["dense1"][0] == pos["dense2"][0] == pos["act1"][0] == pos["add1"][0]
    # no two cards overlap
    ids = list(pos)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            dx, dy = abs(pos[a][0] - pos[b][0]), abs(pos[a][1] - pos[b][1])
            assert dx >= NODE_W or dy >= NODE_H, (a, b)
    assert auto_layout(spec) == pos  # deterministic


def test_auto_layout_handles_empty_cycles_and_strays():
    assert auto_layout(Spec()) == {}
    spec = make_spec([("input1", "Input", {}), ("a", "Dense", {}), ("b", "Dense", {}), ("stray", "Flatten", {})],
                     [("input1", "a"), ("a", "b"), ("b", "a"), ("ghost", "a")])
    pos = auto_layout(spec)
    assert set(pos) == {"input1", "a", "b", "stray"}
    assert len(set(pos.values())) == 4
    assert pos["a"][1] > pos["input1"][1] and pos["b"][1] > pos["input1"][1]


def _cnn_chain(n_blocks: int = 3) -> Spec:
    layers = [("input1", "Input", {})]
    for b in range(1, n_blocks + 1):
        layers += [(f"conv{b}", "Conv2d", {"filters": 8}), (f"act{b}", "Activation", {}), (f"pool{b}", "MaxPool2d", {})]
    layers += [("flatten1", "Flatten", {}), ("output1", "Output", {})]
    return make_spec(layers, list(zip([lay[0] for lay in layers], [lay[0] for lay in layers[1:]], strict=False)), "digits")


def test_auto_layout_wraps_a_long_chain_into_columns_read_left_to_right():
    spec = _cnn_chain()  # 12 layers
    ids = [lay.id for lay in spec.layers]
    assert len({x for x, _ in auto_layout(spec).values()}) == 1  # no view shape given: one column, as before
    pos = auto_layout(spec, view=(720, 480))
    xs = sorted({x for x, _ in pos.values()})
    assert 2 <= len(xs) <= 4  # a few short columns
    for a, b in zip(ids, ids[1:], strict=False):
        (ax, ay), (bx, by) = pos[a], pos[b]
        assert (ax == bx and by > ay) or (bx > ax and by < ay)  # down a column, or on to the top of the next
    assert len(set(pos.values())) == len(ids)  # no two cards on one spot
    assert min(x for x, _ in pos.values()) == pytest.approx(-max(x for x, _ in pos.values()))  # centred on x = 0
    assert auto_layout(spec, view=(720, 480)) == pos  # deterministic
    tall = auto_layout(spec, view=(400, 1300))  # a narrow, tall view: fewer, longer columns
    assert len({x for x, _ in tall.values()}) < len(xs)
    assert len({x for x, _ in auto_layout(spec, view=(1000, 2000)).values()}) == 1  # fits comfortably: one column
    short = make_spec([("input1", "Input", {}), ("dense1", "Dense", {}), ("output1", "Output", {})],
                      [("input1", "dense1"), ("dense1", "output1")])
    assert len({x for x, _ in auto_layout(short, view=(900, 400)).values()}) == 1


def test_fit_keeps_cards_legible_and_shows_the_start_of_a_design_too_long_to_fit(canvas):
    from widgets.editor.canvas import FIT_MIN_ZOOM

    spec = _cnn_chain(6)
    for i, lay in enumerate(spec.layers):
        lay.pos = (0.0, 156.0 * i)  # one very long column
    show(canvas, spec)
    canvas.fit_to_view()
    assert canvas.zoom() == pytest.approx(FIT_MIN_ZOOM)
    assert canvas.viewport().rect().contains(vp(canvas, *spec.layer("input1").pos))  # the start is in view
