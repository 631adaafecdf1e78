"""Decision boundary, neuron map and the shared colour maps: what a user sees on the input plane."""
import time

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from widgets.paint.colormaps import neuron_rgba
from widgets.paint.palette import class_colors, hex_to_rgb
from widgets.views.boundary import BoundaryView, NeuronMapView

EXT = (-2.0, 2.0, -2.0, 2.0)


def grid(res=100, ext=EXT):
    xs = np.linspace(ext[0], ext[1], res)
    ys = np.linspace(ext[2], ext[3], res)
    return np.meshgrid(xs, ys)  # gx[i, j] = xs[j], gy[i, j] = ys[i], as engine.probes lays grids out


def logistic_probs(wx, wy, res=100):
    gx, gy = grid(res)
    p1 = 1 / (1 + np.exp(-(wx * gx + wy * gy)))
    return np.stack([1 - p1, p1], axis=-1).astype(np.float32)


def spiral_points(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.random(n)) * 3 * np.pi
    y = rng.integers(0, 2, n)
    ang = t + y * np.pi
    xy = np.stack([t * np.cos(ang), t * np.sin(ang)], 1) / (3 * np.pi) * 1.8
    return xy, y


@pytest.fixture
def view(qtbot):
    v = BoundaryView()
    v.resize(520, 600)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    return v


def screen_color(view, x, y):
    """The colour on screen at plane point (x, y), from a real render of the plot."""
    vb = view.plot.getPlotItem().getViewBox()
    pt = view.plot.mapFromScene(vb.mapViewToScene(QPointF(x, y)))
    img = view.plot.grab().toImage()
    dpr = img.devicePixelRatio()
    c = img.pixelColor(int(pt.x() * dpr), int(pt.y() * dpr))
    return np.array([c.red(), c.green(), c.blue()])


def is_orange(rgb):
    r, g, b = (int(v) for v in rgb)
    return r > 200 and r > g > b + 40


def is_blue(rgb):
    r, g, b = (int(v) for v in rgb)
    return b > 150 and b > g > r + 30


def test_colours_on_screen_blue_for_class_0_orange_for_class_1_and_rows_follow_y(view):
    # p(class 1) = 1 in the upper half, 0 in the lower half: tests colours and orientation at once
    gx, gy = grid()
    p1 = (gy > 0).astype(np.float32)
    view.set_boundary(np.stack([1 - p1, p1], -1), EXT)
    assert is_orange(screen_color(view, 0.0, 1.5))
    assert is_blue(screen_color(view, 0.0, -1.5))
    # and columns follow x
    p1 = (gx > 0).astype(np.float32)
    view.set_boundary(np.stack([1 - p1, p1], -1), EXT)
    assert is_orange(screen_color(view, 1.5, 0.0)) and is_blue(screen_color(view, -1.5, 0.0))


def test_half_probability_is_white(view):
    view.set_boundary(np.full((100, 100, 2), 0.5, np.float32), EXT)
    rgb = view.image_rgba()[50, 50, :3].astype(int)
    assert rgb.min() >= 240 and rgb.max() - rgb.min() <= 4


def test_a_new_grid_changes_the_picture(view):
    view.set_boundary(logistic_probs(3, 0), EXT)
    first = view.image_item.image.copy()
    shot1 = view.plot.grab().toImage()
    view.set_boundary(logistic_probs(0, -3), EXT)
    assert view.image_item.image is not None and not np.array_equal(first, view.image_item.image)
    assert shot1 != view.plot.grab().toImage()
    # the displayed picture sits exactly on the extent: pixel centres on the grid points
    rect = view.image_item.mapRectToParent(view.image_item.boundingRect())
    d = 4.0 / 99
    assert rect.left() == pytest.approx(-2 - d / 2) and rect.right() == pytest.approx(2 + d / 2)
    assert view.plot.getPlotItem().getViewBox().viewRange()[0] == pytest.approx([-2, 2])


def test_many_classes_mix_class_colours_and_fade_when_unsure(view):
    res = 100
    p = np.full((res, res, 3), 1 / 3, np.float32)
    p[:, :10] = [0, 0, 1]  # certain of class 2 at the left edge
    view.set_boundary(p, EXT)
    img = view.image_rgba()
    green = np.array(hex_to_rgb("#2ca02c"))
    left = img[50, 5, :3].astype(int)
    assert np.argmax(left) == 1 and np.abs(left - green).sum() < np.abs(left - 255).sum()  # green, faded toward white
    assert img[50, 80, :3].min() == 255  # a uniform prediction is white
    assert view.key.names == ["class 0", "class 1", "class 2"]
    view.set_points(np.zeros((4, 2)), np.array([0, 1, 0, 1]))  # no names, no class 2 among the points
    assert view.key.names == ["class 0", "class 1", "class 2"]
    view.set_points(np.zeros((4, 2)), np.array([0, 1, 0, 1]), class_names=["setosa", "versicolor", "virginica"])
    assert view.key.names == ["setosa", "versicolor", "virginica"]


def test_discretize_paints_the_argmax_class(view):
    gx, _ = grid()
    p1 = np.where(gx > 0, 0.6, 0.45).astype(np.float32)
    view.set_boundary(np.stack([1 - p1, p1], -1), EXT)
    soft = view.image_rgba().copy()
    view.discretize_check.setChecked(True)
    hard = view.image_rgba()
    assert is_orange(hard[50, 90, :3]) and is_blue(hard[50, 10, :3])
    assert not is_orange(soft[50, 90, :3])  # p = 0.6 alone is only a pale tint
    view.discretize_check.setChecked(False)
    np.testing.assert_array_equal(view.image_rgba(), soft)


def test_training_points_are_filled_and_validation_points_hollow(view):
    tr_xy, tr_y = spiral_points(400)
    va_xy, va_y = spiral_points(100, seed=1)
    view.set_points(tr_xy, tr_y, va_xy, va_y, ["blue things", "orange things"])
    for c in (0, 1):
        tr = view.train_items[c].points()
        va = view.val_items[c].points()
        assert len(tr) == (tr_y == c).sum() and len(va) == (va_y == c).sum()
        expected = tuple(class_colors(2)[c])
        assert all(p.brush().color().alpha() == 255 for p in tr)
        assert tuple(tr[0].brush().color().getRgb()[:3]) == expected
        assert all(p.brush().color().alpha() == 0 for p in va)  # hollow: the plane shows through
        assert tuple(va[0].pen().color().getRgb()[:3]) == expected
    outline = view.val_outline_item.points()[0].pen().color()
    assert outline.lightness() < 80 and len(view.val_outline_item.points()) == 100
    assert view.key.names == ["blue things", "orange things"]
    view.show_validation_check.setChecked(False)
    assert not view.val_items[0].isVisible() and not view.val_outline_item.isVisible()
    assert view.train_items[0].isVisible()


def test_bad_points_and_grids_are_clear_errors(view):
    with pytest.raises(ValueError, match=r"training points must be \(N, 2\)"):
        view.set_points(np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match="5 points but 4 labels"):
        view.set_points(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match=r"\(res, res, classes\)"):
        view.set_boundary(np.zeros(10), EXT)
    with pytest.raises(ValueError, match="xmax > xmin"):
        view.set_boundary(np.zeros((10, 10, 2)), (1, -1, 0, 1))


def test_projection_chooser_emits_feature_pairs_and_pca(qtbot, view):
    names = ["sepal length", "sepal width", "petal length", "petal width"]
    view.set_feature_names(names)
    assert view.projection_row.isVisibleTo(view)
    assert view.projection() == "pca"
    seen = []
    view.projection_changed.connect(seen.append)
    view.plane_combo.setCurrentIndex(0)  # "Two features"
    assert seen[-1] == (0, 1)
    assert view.plot.getPlotItem().getAxis("bottom").labelText == "sepal length"
    view.x_combo.setCurrentIndex(2)
    assert seen[-1] == (2, 1)
    assert view.plot.getPlotItem().getAxis("bottom").labelText == "petal length"
    view.y_combo.setCurrentIndex(2)  # the feature already on x: the axes swap instead of collapsing
    assert seen[-1] == (1, 2)
    view.plane_combo.setCurrentIndex(1)
    assert seen[-1] == "pca" and not view.x_combo.isEnabled()
    assert view.plot.getPlotItem().getAxis("left").labelText == "PC2"
    view.set_axis_labels("PC1 (73% of variance)", "PC2 (23% of variance)")
    assert view.plot.getPlotItem().getAxis("bottom").labelText == "PC1 (73% of variance)"
    n = len(seen)
    view.set_projection((3, 0))  # programmatic: no signal
    assert len(seen) == n and view.projection() == (3, 0) and view.x_combo.currentIndex() == 3


def test_projection_chooser_hidden_for_2d_data(view):
    view.set_feature_names(["x1", "x2"])
    assert not view.projection_row.isVisibleTo(view)
    assert view.projection() == (0, 1)
    view.set_projection_enabled(True)
    assert view.projection_row.isVisibleTo(view)


def test_clear_forgets_the_picture(view):
    view.set_boundary(logistic_probs(1, 1), EXT)
    view.set_points(*spiral_points(50), *spiral_points(10, 1))
    view.clear()
    assert view.image_rgba() is None and view.image_item.image is None
    assert len(view.train_items[0].points()) == 0
    # the same points again are drawn again (not skipped as unchanged)
    view.set_points(*spiral_points(50), *spiral_points(10, 1))
    assert len(view.train_items[0].points()) + len(view.train_items[1].points()) == 50


def test_update_timing_is_printed(view, capsys):
    probs = [logistic_probs(w, 1 - w) for w in (0.5, 1.0, 1.5)]
    pts = [(*spiral_points(400, s), *spiral_points(100, s + 10)) for s in range(3)]
    view.set_boundary(probs[0], EXT)
    view.set_points(*pts[0])
    first = view.image_rgba().copy()
    times, images = [], []
    for i in range(1, 10):
        t = time.perf_counter()
        view.set_boundary(probs[i % 3], EXT)
        view.set_points(*pts[i % 3])
        times.append(time.perf_counter() - t)
        images.append(view.image_rgba().copy())
    # the timed updates really redraw: each boundary gives its own picture, and the same one each time round
    assert not np.array_equal(images[0], first) and not np.array_equal(images[1], images[0])
    np.testing.assert_array_equal(images[-1], first)  # i = 9 shows probs[0] again
    np.testing.assert_array_equal(images[3], images[0])
    assert len(view.train_items[0].points()) + len(view.train_items[1].points()) == 400
    with capsys.disabled():
        print(f"\nBoundaryView set_boundary(100x100x2) + set_points(400 + 100 new points): "
              f"median {1e3 * np.median(times):.2f} ms (max {1e3 * max(times):.2f} ms)")


# ---- neuron map ----------------------------------------------------------------------------

def test_neuron_map_is_symmetric_around_zero(qtbot):
    nm = NeuronMapView()
    qtbot.addWidget(nm)
    gx, gy = grid(40)
    values = 3.0 * gx  # -6 .. 6, unbounded: normalised by max |v|
    nm.set_map(values, EXT, "dense1 · unit 2")
    img = nm.image_rgba()
    assert is_blue(img[20, 0, :3]) and is_orange(img[20, -1, :3])
    assert nm.limit == pytest.approx(6.0)
    assert nm.title_label.text() == "dense1 · unit 2"
    assert "6" in nm.key.text()
    middle = img[20, 19:21, :3].astype(int)  # columns either side of x = 0
    assert (middle.min(axis=1) > 200).all()  # near white at zero
    nm.set_map(values, EXT, "tanh unit", limit=60.0)  # a bounded range makes small outputs look small
    assert nm.image_rgba()[20, -1, :3].min() > 200
    np.testing.assert_array_equal(neuron_rgba(values, 60.0), nm.image_rgba())  # the canvas thumbnails' helper agrees
    nm.clear()
    assert nm.image_rgba() is None


def test_neuron_map_without_a_map_explains_itself_instead_of_an_empty_plot(qtbot):
    nm = NeuronMapView()
    qtbot.addWidget(nm)
    nm.resize(300, 340)
    nm.show()
    qtbot.waitExposed(nm)
    assert not nm.has_map()
    assert nm.placeholder.isVisible() and not nm.plot_box.isVisible() and not nm.key.isVisible()
    assert "Dense layer" in nm.placeholder.text() and "2-D data" in nm.placeholder.text()
    gx, _ = grid(20)
    nm.set_map(gx, EXT, "dense1 · unit 0")
    assert nm.has_map() and nm.plot_box.isVisible() and not nm.placeholder.isVisible()
    nm.clear()
    assert nm.placeholder.isVisible() and not nm.plot_box.isVisible()
