"""The painting vocabulary: one colour pipeline, one colour bar, one selection colour."""
import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from widgets.paint.colorbar import ColorBar
from widgets.paint.colormaps import LUT_SIZE, NAMES, blend_classes, colormap, lut, map_argb, map_rgb, to_rgba
from widgets.paint.palette import NAN_RGB, SELECTION_COLOR, TF_BLUE, TF_ORANGE, TF_WHITE, class_colors, hex_to_rgb


def test_diverging_ends_and_exact_white_middle():
    table = lut("diverging")
    rgba = to_rgba(np.array([0.0, 0.5, 1.0, np.nan, -3.0, 7.0]), "diverging", 0.0, 1.0)
    assert tuple(rgba[0, :3]) == hex_to_rgb(TF_BLUE) and tuple(rgba[2, :3]) == hex_to_rgb(TF_ORANGE)
    assert tuple(rgba[1, :3]) == tuple(table[LUT_SIZE // 2, :3]) == hex_to_rgb(TF_WHITE)  # exactly the white entry
    assert rgba[3, 3] == 0  # NaN is transparent
    assert tuple(rgba[4]) == tuple(rgba[0]) and tuple(rgba[5]) == tuple(rgba[2])  # clipped


def test_every_output_form_comes_from_the_same_table():
    v = np.linspace(-2, 2, 41, dtype=np.float32).reshape(1, -1)
    for name in ("diverging", "plane", "inferno", "blues"):
        argb = map_argb(v, name, -2, 2)
        rgb = map_rgb(v, name, -2, 2)
        rgba = to_rgba(v, name, -2, 2)
        unpacked = np.stack([(argb >> 16) & 255, (argb >> 8) & 255, argb & 255], axis=-1)
        np.testing.assert_array_equal(unpacked, rgb)
        np.testing.assert_array_equal(rgba[..., :3], rgb)
    assert tuple(map_rgb(np.array([np.nan]), "diverging", 0, 1)[0]) == NAN_RGB  # images: NaN is grey


def test_maps_are_pyqtgraph_colormaps_and_sequential_ones_run_dark_to_bright():
    import pyqtgraph as pg

    for name in NAMES:
        assert isinstance(colormap(name), pg.ColorMap)
        assert lut(name).shape == (LUT_SIZE, 4) and lut(name).dtype == np.uint8
    inferno = lut("inferno")
    assert inferno[0, :3].sum() < 60 and inferno[-1, :3].sum() > 600
    with pytest.raises(ValueError, match="unknown colour map"):
        lut("no-such-map")


def test_plane_is_the_diverging_map_faded_towards_white():
    plane, div = lut("plane").astype(int), lut("diverging").astype(int)
    assert (plane[:, :3] >= div[:, :3] - 1).all()  # paler everywhere
    assert plane[0, 2] > plane[0, 0]  # still blue at the low end


def test_blend_classes_matches_a_hand_computation():
    colors = class_colors(3)
    p = np.array([[0.7, 0.2, 0.1]], np.float32)
    got = blend_classes(p, colors, opacity=0.5)[0, :3].astype(float)
    hue = 0.7 * colors[0] + 0.2 * colors[1] + 0.1 * colors[2]
    strength = (0.7 - 1 / 3) / (2 / 3) * 0.5
    np.testing.assert_allclose(got, hue * strength + 255 * (1 - strength), atol=1)


def test_one_selection_colour_on_canvas_and_in_the_views():
    from widgets.editor import canvas_items
    from widgets.views import image_grid

    assert canvas_items.SELECT_COLOR == SELECTION_COLOR
    assert not hasattr(image_grid, "ACCENT")


def test_colour_bar_paints_its_map_and_says_its_range(qtbot):
    bar = ColorBar(cmap="diverging", label="weight")
    qtbot.addWidget(bar)
    bar.resize(300, bar.height())
    bar.set_range(-0.5, 0.5)
    assert bar.text() == "-0.5 … 0 … 0.5"
    img = QImage(bar.size(), QImage.Format.Format_ARGB32)
    img.fill(QColor("black"))
    bar.render(img)
    strip = bar.strip_rect()
    y = strip.center().y()
    left, mid, right = (img.pixelColor(x, y) for x in (strip.left() + 3, strip.center().x(), strip.right() - 3))
    assert left.blue() > left.red() and right.red() > right.blue() and min(mid.red(), mid.green(), mid.blue()) > 225
    bar.set_range(None, None)
    assert bar.text() == ""
    with pytest.raises(ValueError):
        bar.set_range(0, 1, cmap="nope")
