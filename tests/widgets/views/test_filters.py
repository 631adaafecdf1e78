"""FiltersView shows exactly the conv weights, on a colour scale symmetric around 0."""
import numpy as np
import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QHelpEvent
from PySide6.QtWidgets import QToolTip

from widgets.paint.palette import TF_BLUE, TF_ORANGE, TF_WHITE
from widgets.views.filters import FiltersView


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    return {"conv1": rng.normal(0, 0.3, (8, 1, 3, 3)).astype(np.float32),
            "conv2": rng.normal(0, 0.1, (16, 8, 3, 3)).astype(np.float32)}


@pytest.fixture
def view(qtbot):
    v = FiltersView()
    qtbot.addWidget(v)
    v.resize(600, 460)
    v.show()
    qtbot.waitExposed(v)
    return v


def choose(qtbot, combo, data):
    """Pick the entry with ``data`` the way a user does with the keyboard (emits activated)."""
    for _ in range(combo.count() + 1):
        if combo.currentData() == data or combo.currentText() == data:
            return
        key = Qt.Key.Key_Down if combo.currentIndex() < max(combo.findData(data), combo.findText(data)) else Qt.Key.Key_Up
        qtbot.keyClick(combo, key)
    raise AssertionError(f"could not choose {data!r}")


def pixel(widget, x, y) -> QColor:
    return widget.grab().toImage().pixelColor(x, y)


def test_first_layer_shows_every_kernel_exactly(view):
    w = _weights()
    view.set_filters(w)
    assert view.current_layer() == "conv1"
    np.testing.assert_array_equal(view.displayed_array(), w["conv1"])
    assert view.grid.count() == 8


def test_first_rgb_layer_one_tile_per_filter_and_channel(view, qtbot):
    w = np.random.default_rng(1).normal(0, 1, (4, 3, 5, 5)).astype(np.float32)
    view.set_filters({"conv1": w})
    np.testing.assert_array_equal(view.displayed_array(), w)
    assert view.grid.count() == 12  # rows per filter: its R, G, B kernels side by side
    rects = [view.grid.tile_rect(i) for i in range(6)]
    assert rects[0].y() == rects[1].y() == rects[2].y()  # a filter's channels stay on one row
    inner_gap = rects[1].x() - rects[0].right()
    if rects[3].y() == rects[2].y():
        assert rects[3].x() - rects[2].right() > inner_gap  # and filters are set apart
    else:
        assert rects[3].y() > rects[2].y()
    choose(qtbot, view.channel_combo, "rgb")
    assert view.grid.count() == 4
    assert not view.colorbar.isVisible()  # colour tiles have no single scale


def test_deeper_layer_mean_and_single_channel(view, qtbot):
    w = _weights()
    view.set_filters(w)
    view.select_layer("conv2")
    # deeper layers default to the mean over input channels, one tile per filter
    expected_mean = sum(w["conv2"][:, c] for c in range(8)) / 8
    np.testing.assert_allclose(view.displayed_array(), expected_mean, rtol=1e-6, atol=1e-7)
    assert view.grid.count() == 16
    choose(qtbot, view.channel_combo, "ch3")
    np.testing.assert_array_equal(view.displayed_array(), w["conv2"][:, 3])
    choose(qtbot, view.channel_combo, "all")
    np.testing.assert_array_equal(view.displayed_array(), w["conv2"])
    assert view.grid.count() == 128
    # the choice is remembered per layer
    view.select_layer("conv1")
    view.select_layer("conv2")
    assert view.channel_mode() == "all"


def test_updates_follow_new_weights(view, qtbot):
    w = _weights()
    w["conv1"][0, 0, 0, 0] = 0.5  # well away from 0 (white), so its colour has a clear side
    view.set_filters(w)
    qtbot.wait(10)
    r = view.grid.tile_rect(0)
    centre = (r.x() + r.width() // 6, r.y() + r.height() // 6)  # kernel 0, weight (0, 0)
    before = pixel(view.grid, *centre)
    w2 = {k: -v for k, v in w.items()}  # the same colour scale, every weight on the other side of 0
    view.set_filters(w2)
    qtbot.wait(10)
    np.testing.assert_array_equal(view.displayed_array(), w2["conv1"])
    after = pixel(view.grid, *centre)
    assert after != before, "the tiles are repainted with the new weights"

    def dist(a: QColor, b: QColor) -> int:
        return sum((x - y) ** 2 for x, y in zip(a.getRgb()[:3], b.getRgb()[:3], strict=True))

    towards_orange = dist(after, QColor(TF_ORANGE)) < dist(after, QColor(TF_BLUE))
    assert towards_orange == bool(w2["conv1"][0, 0, 0, 0] > 0)


def test_colour_scale_is_symmetric_and_zero_is_neutral(view, qtbot):
    kernel = np.array([[-0.5, 0.0, 0.25], [0.1, -0.1, 0.5], [0.0, 0.0, 0.0]], np.float32)
    w = np.stack([kernel, -kernel * 0.5])[:, None]  # (2, 1, 3, 3), max |w| = 0.5
    view.set_filters({"conv1": w})
    assert view.color_range() == (-0.5, 0.5)
    qtbot.wait(10)
    r = view.grid.tile_rect(0)
    s = r.width() // 3

    def at(row, col):
        return pixel(view.grid, r.x() + col * s + s // 2, r.y() + row * s + s // 2).name()

    assert at(0, 1) == QColor(TF_WHITE).name()  # weight 0 -> neutral
    assert at(0, 0) == QColor(TF_BLUE).name()  # -max -> the negative end
    assert at(1, 2) == QColor(TF_ORANGE).name()  # +max -> the positive end
    # +0.25 and the 2nd filter's -0.25 sit equally far from white, on opposite sides
    pos, neg = QColor(at(0, 2)), QColor(pixel(view.grid, view.grid.tile_rect(1).x() + 2 * s + s // 2,
                                                     view.grid.tile_rect(1).y() + s // 2).name())
    white = QColor(TF_WHITE)
    assert pos != white and neg != white and pos != neg


def test_layer_combo_emits_and_select_layer_follows_canvas(view, qtbot):
    view.set_filters(_weights())
    with qtbot.waitSignal(view.layer_selected, timeout=1000) as sig:
        choose(qtbot, view.layer_combo, "conv2")
    assert sig.args == ["conv2"]
    np.testing.assert_equal(view.displayed_array().shape, (16, 3, 3))

    got = []
    view.layer_selected.connect(got.append)
    view.select_layer("conv1")
    assert view.layer_combo.currentText() == "conv1"
    assert view.displayed_array().shape == (8, 1, 3, 3)
    view.select_layer("dense1")  # not a conv layer: ignored
    assert view.layer_combo.currentText() == "conv1"
    assert got == []  # the canvas drove it: no echo back


def test_tile_tooltip_names_filter_channel_and_range(view, qtbot):
    w = _weights()
    view.set_filters(w)
    view.select_layer("conv2")
    choose(qtbot, view.channel_combo, "all")
    i = 2 * 8 + 5  # filter 2, channel 5
    pos = view.grid.tile_rect(i).center()
    QToolTip.hideText()
    ev = QHelpEvent(QEvent.Type.ToolTip, pos, view.grid.mapToGlobal(pos))
    view.grid.event(ev)
    text = QToolTip.text()
    k = w["conv2"][2, 5]
    assert "filter 2, channel 5" in text
    assert f"{k.min():.3g}" in text and f"{k.max():.3g}" in text


def test_bad_and_empty_input_never_crash(view):
    view.set_filters({})
    assert view.displayed_array() is None
    assert view.placeholder.isVisible()
    view.set_filters({"conv1": np.zeros((3, 3)), "conv2": _weights()["conv2"]})
    assert view.layers() == ["conv2"]
    assert "conv1" in view.info_label.text()  # the skipped layer is named
    nan = _weights()["conv1"].copy()
    nan[0, 0, 0, 0] = np.nan
    view.set_filters({"conv1": nan})
    view.grab()  # renders NaN as grey instead of raising
    assert np.isnan(view.displayed_array()[0, 0, 0, 0])
    zeros = np.zeros((4, 1, 3, 3), np.float32)
    view.set_filters({"conv1": zeros})
    r = view.grid.tile_rect(0)
    assert pixel(view.grid, r.center().x(), r.center().y()).name() == QColor(TF_WHITE).name()


def test_many_filters_are_capped_not_frozen(view):
    w = np.random.default_rng(0).normal(0, 1, (64, 32, 3, 3)).astype(np.float32)
    view.set_filters({"conv9": w})
    view.set_channel_mode("all")
    assert view.grid.count() <= 1024
    assert "first" in view.info_label.text()
