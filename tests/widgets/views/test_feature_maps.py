"""FeatureMapsView: one tile per channel per layer, exact arrays, sample browsing and drawing."""
import re

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor

from widgets.views.feature_maps import MAX_CHANNELS, FeatureMapsView

VIRIDIS_LOW, VIRIDIS_HIGH = QColor(68, 1, 84), QColor(253, 231, 37)  # matplotlib's viridis end points


def _maps(seed=0):
    rng = np.random.default_rng(seed)
    return {"conv1": rng.normal(0, 1, (8, 28, 28)).astype(np.float32),
            "pool1": np.abs(rng.normal(0, 1, (8, 14, 14))).astype(np.float32),
            "conv2": rng.normal(0, 1, (16, 14, 14)).astype(np.float32)}


ORDER = ["input1", "conv1", "pool1", "conv2", "flatten1", "output1"]
KINDS = {"conv1": "Conv2d", "pool1": "MaxPool2d", "conv2": "Conv2d"}


def _samples(n=12, c=1, h=28, w=28):
    rng = np.random.default_rng(3)
    return rng.normal(0, 1, (n, c, h, w)).astype(np.float32), rng.integers(0, 10, n), [str(i) for i in range(10)]


@pytest.fixture
def view(qtbot):
    v = FeatureMapsView()
    qtbot.addWidget(v)
    v.resize(1000, 760)
    v.show()
    qtbot.waitExposed(v)
    return v


def _plain(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_one_tile_per_channel_per_layer_and_exact_arrays(view):
    maps = _maps()
    view.set_feature_maps(maps, ORDER, KINDS)
    assert list(view.displayed_maps()) == ["conv1", "pool1", "conv2"]  # network order
    for lid, a in maps.items():
        np.testing.assert_array_equal(view.displayed_maps()[lid], a)
        assert view.section(lid).grid.count() == a.shape[0]
    titles = {k: _plain(v) for k, v in view.section_titles().items()}
    assert titles["conv1"] == "conv1 - Conv2d - 8x28x28"
    assert titles["pool1"] == "pool1 - MaxPool2d - 8x14x14"
    # a second snapshot with the same layers updates in place
    maps2 = _maps(seed=9)
    sec = view.section("conv2")
    view.set_feature_maps(maps2, ORDER, KINDS)
    assert view.section("conv2") is sec
    np.testing.assert_array_equal(view.displayed_maps()["conv2"], maps2["conv2"])


def test_each_map_is_stretched_min_to_max(view, qtbot):
    ramp = np.tile(np.linspace(-3.0, 5.0, 14, dtype=np.float32), (14, 1))  # columns go low -> high
    maps = {"conv1": np.stack([ramp, ramp * 0.01])}
    view.set_feature_maps(maps, ["conv1"], {"conv1": "Conv2d"})
    grid = view.section("conv1").grid
    img = grid.grab().toImage()
    for i in range(2):  # the faint channel gets the full colour range too (per-map scale)
        r = grid.tile_rect(i)
        s = r.width() // 14
        assert img.pixelColor(r.x() + s // 2, r.y() + s // 2) == VIRIDIS_LOW
        assert img.pixelColor(r.right() - s // 2, r.y() + s // 2) == VIRIDIS_HIGH
    # per layer: the faint channel is now one flat middle colour, the strong one keeps its range
    qtbot.keyClick(view.scale_combo, Qt.Key.Key_Down)  # "colour range per layer", as a user picks it
    assert view.scale_combo.currentData() == "layer"
    img = grid.grab().toImage()
    r = grid.tile_rect(1)
    s = r.width() // 14
    left, right = img.pixelColor(r.x() + s // 2, r.y() + s // 2), img.pixelColor(r.right() - s // 2, r.y() + s // 2)
    assert left != VIRIDIS_LOW and right != VIRIDIS_HIGH


def test_browsing_emits_the_index(view, qtbot):
    images, labels, names = _samples()
    view.set_samples(images, labels, names)
    with qtbot.waitSignal(view.sample_changed, timeout=1000) as sig:
        qtbot.mouseClick(view.next_button, Qt.MouseButton.LeftButton)
    assert sig.args == [1]
    assert view.label_label.text() == f"label {labels[1]}"
    thumb = view.thumbs.tile_rect(4).center()
    with qtbot.waitSignal(view.sample_changed, timeout=1000) as sig:
        qtbot.mouseClick(view.thumbs, Qt.MouseButton.LeftButton, pos=thumb)
    assert sig.args == [view._thumb_start + 4]
    with qtbot.waitSignal(view.sample_changed, timeout=1000) as sig:
        view.set_current_index(7)
    assert sig.args == [7]
    assert view.current_sample() == 7
    # the input on top is the chosen sample
    shown = view.input_section.grid.tiles()[0]
    assert shown.shape == (28, 28)


def test_drawing_emits_an_image_of_the_input_size(view, qtbot):
    view.set_input_shape((1, 28, 28))
    with qtbot.waitSignal(view.sample_changed, timeout=1000) as sig:
        qtbot.mouseClick(view.draw_button, Qt.MouseButton.LeftButton)
    assert sig.args[0].shape == (1, 28, 28) and not sig.args[0].any()  # empty pad to start with
    pad = view.draw_pad
    r = pad._pad_rect()

    def at(fx, fy):  # a point at a fraction of the pad
        return QPoint(r.x() + int(fx * r.width()), r.y() + int(fy * r.height()))

    got = []
    view.sample_changed.connect(got.append)
    qtbot.mousePress(pad, Qt.MouseButton.LeftButton, pos=at(0.2, 0.5))
    for f in np.linspace(0.2, 0.8, 8):
        qtbot.mouseMove(pad, at(f, 0.5))
    qtbot.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=at(0.8, 0.5))
    assert got, "drawing emitted nothing"
    img = got[-1]
    assert isinstance(img, np.ndarray) and img.shape == (1, 28, 28) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert img[0, 14, 8:20].min() > 0.5  # ink along the horizontal stroke
    assert img[0, :5].max() == 0 and img[0, -5:].max() == 0  # nothing far above or below it
    np.testing.assert_array_equal(view.current_sample(), img)
    with qtbot.waitSignal(view.sample_changed, timeout=1000) as sig:
        qtbot.mouseClick(view.clear_button, Qt.MouseButton.LeftButton)
    assert not sig.args[0].any()


def test_drawing_for_rgb_input_repeats_the_ink_on_every_channel(view, qtbot):
    view.set_input_shape((3, 32, 32))
    view.set_drawing_mode(True)
    pad = view.draw_pad
    r = pad._pad_rect()
    got = []
    view.sample_changed.connect(got.append)
    qtbot.mousePress(pad, Qt.MouseButton.LeftButton, pos=r.center())
    qtbot.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=r.center())
    img = got[-1]
    assert img.shape == (3, 32, 32) and img.max() > 0.5
    np.testing.assert_array_equal(img[0], img[2])


def test_select_layer_highlights_and_clicks_select(view, qtbot):
    view.set_feature_maps(_maps(), ORDER, KINDS)
    got = []
    view.layer_selected.connect(got.append)
    view.select_layer("conv2")
    assert view.selected_layer() == "conv2" and got == []
    view.select_layer("dense1")  # not an image layer
    assert view.selected_layer() is None
    grid = view.section("pool1").grid
    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=grid.tile_rect(2).center())
    assert got == ["pool1"] and view.selected_layer() == "pool1"


def test_prediction_bars(view):
    images, labels, names = _samples()
    view.set_samples(images, labels, names)
    proba = np.array([0.01, 0.02, 0.9, 0.07] + [0.0] * 6)
    view.set_prediction(proba, names)
    rows = view.prediction.rows()
    assert len(rows) == 10
    assert [r[0] for r in rows if r[2]] == ["2"]
    assert rows[2][1] == pytest.approx(0.9)


def test_many_channels_are_capped_and_bad_maps_skipped(view):
    big = np.random.default_rng(0).normal(0, 1, (100, 4, 4)).astype(np.float32)
    view.set_feature_maps({"conv1": big, "broken": np.zeros(5), "conv2": np.full((2, 3, 3), np.nan, np.float32)},
                          ["conv1", "broken", "conv2"], {"conv1": "Conv2d"})
    assert view.section("conv1").grid.count() == MAX_CHANNELS
    np.testing.assert_array_equal(view.displayed_maps()["conv1"], big[:MAX_CHANNELS])
    assert "broken" not in view.displayed_maps()
    assert "broken" in view.summary_label.text()
    view.grab()  # NaN maps render (grey) without raising
    view.set_feature_maps({}, [], {})
    assert view.placeholder.isVisible()
