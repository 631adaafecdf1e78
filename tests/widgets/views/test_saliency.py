"""SaliencyView: options a user picks reach the app; results render input, map and overlay."""
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from widgets.paint.palette import TF_WHITE
from widgets.views.saliency import SaliencyView

NAMES = [str(i) for i in range(10)]
INFERNO_LOW, INFERNO_HIGH = QColor(0, 0, 4), QColor(252, 255, 164)  # matplotlib's inferno end points


@pytest.fixture
def view(qtbot):
    v = SaliencyView()
    qtbot.addWidget(v)
    v.resize(900, 420)
    v.set_classes(NAMES)
    v.set_conv_layers(["conv1", "conv2"])
    v.show()
    qtbot.waitExposed(v)
    return v


def choose(qtbot, combo, data):
    """Pick the entry with ``data`` with the keyboard, as a user would (emits activated)."""
    target = combo.findData(data)
    assert target >= 0, f"{data!r} not in the combo"
    for _ in range(combo.count() + 1):
        if combo.currentIndex() == target:
            return
        qtbot.keyClick(combo, Qt.Key.Key_Down if combo.currentIndex() < target else Qt.Key.Key_Up)
    raise AssertionError(f"could not choose {data!r}")


def _digit():
    img = np.zeros((28, 28), np.float32)
    img[6:22, 12:16] = 1.0
    return img[None]


def test_options_changed_carries_method_target_and_layer(view, qtbot):
    got = []
    view.options_changed.connect(got.append)
    assert view.options() == {"method": "gradient", "target": None, "layer": None}
    assert not view.layer_combo.isVisible()  # the layer only matters for Grad-CAM

    choose(qtbot, view.method_combo, "gradcam")
    assert got[-1] == {"method": "gradcam", "target": None, "layer": "conv2"}  # last conv by default
    assert view.layer_combo.isVisible()
    choose(qtbot, view.layer_combo, "conv1")
    assert got[-1] == {"method": "gradcam", "target": None, "layer": "conv1"}
    choose(qtbot, view.target_combo, 3)
    assert got[-1] == {"method": "gradcam", "target": 3, "layer": "conv1"}
    choose(qtbot, view.method_combo, "integrated_gradients")
    assert got[-1] == {"method": "integrated_gradients", "target": 3, "layer": None}
    assert not view.layer_combo.isVisible()
    choose(qtbot, view.target_combo, None)
    assert got[-1]["target"] is None


def test_programmatic_setters_do_not_emit(view, qtbot):
    got = []
    view.options_changed.connect(got.append)
    view.set_options("gradcam", 4, "conv1")
    view.set_classes(NAMES[:5])
    view.set_conv_layers(["conv1", "conv2", "conv3"])
    assert got == []
    assert view.options() == {"method": "gradcam", "target": 4, "layer": "conv1"}
    view.set_conv_layers(["conv7"])  # the chosen layer is gone: fall back to the last conv
    assert view.options()["layer"] == "conv7"


def test_set_result_renders_and_changes_with_the_attribution(view, qtbot):
    img = _digit()
    proba = np.full(10, 0.02 / 9)
    proba[7] = 0.98
    yy, xx = np.mgrid[0:28, 0:28]
    a1 = np.exp(-((xx - 8) ** 2 + (yy - 8) ** 2) / 30).astype(np.float32)
    a2 = np.exp(-((xx - 20) ** 2 + (yy - 20) ** 2) / 30).astype(np.float32)

    view.set_result(img, a1, "gradcam", predicted=7, target=7, class_names=NAMES, proba=proba)
    first = view.grab().toImage()
    assert view.title() == "Grad-CAM for class 7 (predicted 7, 98%)"
    colours = {first.pixel(x, y) for x in range(0, first.width(), 7) for y in range(0, first.height(), 7)}
    assert len(colours) > 20  # not blank
    view.set_result(img, a2, "gradcam", predicted=7, target=7, class_names=NAMES, proba=proba)
    second = view.grab().toImage()
    assert first != second
    np.testing.assert_array_equal(view.displayed_attribution(), a2)

    # the attribution panel: 0 -> the dark end, the peak (1) -> the bright end of the heat map
    shown = view.map_view.grab().toImage()
    r = view.map_view.image_rect()
    s = r.width() / 28
    assert shown.pixelColor(int(r.x() + 20.5 * s), int(r.y() + 20.5 * s)) == INFERNO_HIGH
    assert shown.pixelColor(int(r.x() + 0.5 * s), int(r.y() + 27.5 * s)) == INFERNO_LOW


def test_signed_attribution_uses_a_diverging_scale(view, qtbot):
    img = _digit()
    ig = np.zeros((28, 28), np.float32)
    ig[10, 10], ig[20, 20] = 0.8, -0.4
    view.set_result(img, ig, "integrated_gradients", predicted=1, target=None, class_names=NAMES,
                    proba=np.eye(10)[1] * 0.9 + 0.01)
    assert view.title().startswith("Integrated Gradients for class 1 (predicted 1, 91%")
    assert view.colorbar.range() == pytest.approx((-0.8, 0.8))
    shown = view.map_view.grab().toImage()
    r = view.map_view.image_rect()
    s = r.width() / 28
    assert shown.pixelColor(int(r.x() + 3.5 * s), int(r.y() + 3.5 * s)) == QColor(TF_WHITE)  # 0 is neutral
    # the overlay follows the opacity slider
    before = view.overlay_view.grab().toImage()
    view.alpha_slider.setValue(0)
    after = view.overlay_view.grab().toImage()
    assert before != after


def test_target_other_than_prediction_is_named(view):
    proba = np.full(10, 0.01)
    proba[8], proba[3] = 0.87, 0.04
    view.set_result(_digit(), np.ones((28, 28), np.float32), "gradient", predicted=8, target=3, class_names=NAMES,
                    proba=proba)
    assert view.title() == "Gradient (vanilla) for class 3 (predicted 8, 87%; class 3: 4%)"


def test_rgb_input_and_bad_shapes(view):
    rgb = np.random.default_rng(0).normal(0, 1, (3, 32, 32)).astype(np.float32)
    view.set_result(rgb, np.random.default_rng(1).random((32, 32)).astype(np.float32), "smoothgrad", 0, None, NAMES)
    assert view.input_view.image().width() == 32
    view.set_result(rgb, np.zeros((28, 28), np.float32), "gradient", 0, None, NAMES)
    assert view.placeholder.isVisible() and "28x28" in view.placeholder.text()
    view.set_result(np.zeros(4, np.float32), np.zeros(4, np.float32), "gradient", 0, None, NAMES)
    assert view.placeholder.isVisible() and "image" in view.placeholder.text()
    assert view.displayed_attribution() is None
