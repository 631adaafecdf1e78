"""The layer palette: lists every layer kind with help and formula, filters, and starts drags / activations."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt
from PySide6.QtGui import QDrag, QImage, QTextDocument
from PySide6.QtTest import QTest

from engine.layers import ACTIVATION_FORMULAS, ACTIVATIONS, GROUPS, REGISTRY
from widgets.editor.icons import GROUP_COLORS, layer_icon
from widgets.editor.palette import LAYER_MIME, LayerPalette, layer_mime, parse_layer_mime


def plain(rich: str) -> str:
    """The tooltip text as the user reads it (rich text rendered to plain text)."""
    doc = QTextDocument()
    doc.setHtml(rich)
    return doc.toPlainText()


@pytest.fixture
def palette(qtbot):
    p = LayerPalette()
    qtbot.addWidget(p)
    p.resize(280, 900)
    p.show()
    qtbot.waitExposed(p)
    return p


def by_label(palette, label):
    return next(it for it in palette.entries() if it.text(0) == label)


def test_every_registry_kind_is_listed_under_its_group_with_formula_tooltip(palette):
    kinds = {}
    for item in palette.entries():
        kind, params = palette.entry_kind(item)
        if not params:
            kinds[kind] = item
    assert set(kinds) == set(REGISTRY)
    for kind, item in kinds.items():
        assert item.parent().text(0) == REGISTRY[kind].group
        tip = plain(item.toolTip(0))
        assert REGISTRY[kind].help in tip
        if kind != "Activation":
            assert REGISTRY[kind].formula in tip
    headings = [palette.tree.topLevelItem(i) for i in range(palette.tree.topLevelItemCount())]
    assert [h.text(0) for h in headings] == list(GROUPS)
    assert all(h.isExpanded() for h in headings)


def test_activation_tooltips_give_each_function_formula(palette):
    generic = plain(by_label(palette, "Activation").toolTip(0))
    for fn, formula in ACTIVATION_FORMULAS.items():
        assert f"{fn}: {formula}" in generic
    relu = by_label(palette, "ReLU")
    assert palette.entry_kind(relu) == ("Activation", {"function": "relu"})
    tip = plain(relu.toolTip(0))
    assert "relu: f(x) = max(0, x)" in tip
    assert "sigmoid" not in tip  # only its own formula, not the whole list


def test_each_activation_function_has_its_own_entry(palette):
    preset = {palette.entry_kind(it)[1].get("function") for it in palette.entries()
              if palette.entry_kind(it)[0] == "Activation"}
    assert preset == set(ACTIVATIONS) | {None}


def test_filter_hides_non_matching_entries_and_empty_groups(palette):
    palette.filter_edit.setText("conv2")
    assert [it.text(0) for it in palette.visible_entries()] == ["Conv2d"]
    assert palette.tree.topLevelItem(GROUPS.index("Core")).isHidden()
    palette.filter_edit.setText("fully connected")  # the help text is searched too
    assert [it.text(0) for it in palette.visible_entries()] == ["Dense"]
    palette.filter_edit.setText("RELU")
    assert {it.text(0) for it in palette.visible_entries()} == {"ReLU", "Leaky ReLU"}
    palette.filter_edit.setText("merge")  # a group name shows the whole group
    assert {it.text(0) for it in palette.visible_entries()} == {"Add", "Concat"}
    palette.filter_edit.clear()
    assert len(palette.visible_entries()) == len(palette.entries())


def test_double_click_activates_kind_with_params(palette, qtbot):
    item = by_label(palette, "Tanh")
    palette.tree.scrollToItem(item)
    rect = palette.tree.visualItemRect(item)
    with qtbot.waitSignal(palette.kind_activated, timeout=1000) as blocker:
        # press/release then the double-click press, as a real double-click arrives
        QTest.mouseClick(palette.tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
        QTest.mouseDClick(palette.tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
    assert blocker.args == ["Activation", {"function": "tanh"}]


def test_group_heading_does_not_activate(palette, qtbot):
    got = []
    palette.kind_activated.connect(lambda k, p: got.append(k))
    heading = palette.tree.topLevelItem(0)
    pos = palette.tree.visualItemRect(heading).center() + QPoint(20, 0)
    QTest.mouseClick(palette.tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    QTest.mouseDClick(palette.tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                      palette.tree.visualItemRect(heading).center() + QPoint(20, 0))
    assert got == []


def test_drag_carries_layer_mime(palette, monkeypatch):
    captured = []
    # A real QDrag.exec() blocks offscreen; capture the mime data it would carry instead.
    monkeypatch.setattr(QDrag, "exec", lambda self, *a, **k: captured.append(parse_layer_mime(self.mimeData())))
    palette.tree.setCurrentItem(by_label(palette, "Leaky ReLU"))
    palette.tree.startDrag(Qt.DropAction.CopyAction)
    palette.tree.setCurrentItem(by_label(palette, "Dense"))
    palette.tree.startDrag(Qt.DropAction.CopyAction)
    assert captured == [("Activation", {"function": "leaky_relu"}), ("Dense", {})]


def test_mime_round_trip_and_malformed_data():
    assert parse_layer_mime(layer_mime("Conv2d", {"filters": 4})) == ("Conv2d", {"filters": 4})
    assert parse_layer_mime(layer_mime("Flatten", {})) == ("Flatten", {})
    assert parse_layer_mime(QMimeData()) is None
    for bad in (b"not json", b"[1, 2]", b'{"kind": 3}', b'{"kind": "Dense", "params": [1]}', b"\xff\xfe"):
        m = QMimeData()
        m.setData(LAYER_MIME, bad)
        assert parse_layer_mime(m) is None, bad


def _pixels(icon) -> bytes:
    img = icon.pixmap(32, 32).toImage().convertToFormat(QImage.Format.Format_ARGB32)
    return bytes(img.constBits())


def test_icons_are_distinct_per_kind_and_activation_function(qtbot):
    images = [_pixels(layer_icon(k)) for k in REGISTRY]
    images += [_pixels(layer_icon("Activation", {"function": fn})) for fn in ACTIVATIONS]
    assert all(any(b != 0 for b in img) for img in images)  # something is drawn
    assert len(set(images)) == len(images)
    assert len(set(GROUP_COLORS.values())) == len(GROUPS)
