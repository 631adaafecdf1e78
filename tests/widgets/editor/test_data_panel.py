"""Data panel: dataset kinds and typed editors from the schema, intents, and the three previews."""
import numpy as np
import pytest
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QSpinBox

from engine import datasets
from widgets.editor.data_panel import CLASS_COLORS, DataPanel, PathEdit, image_grid


@pytest.fixture
def panel(qtbot):
    w = DataPanel()
    qtbot.addWidget(w)
    w.set_dataset("xor", {})
    w.resize(360, 500)
    w.show()
    return w


def test_lists_every_dataset_kind(panel):
    kinds = [panel.kind_combo.itemText(i) for i in range(panel.kind_combo.count())]
    assert kinds == datasets.all_kinds()


def test_editors_are_typed_from_the_schema_with_ranges(panel):
    schema = {p.name: p for p in datasets.DATASET_PARAMS["xor"]}
    assert set(panel.editors) == set(schema)
    assert isinstance(panel.editors["n_points"], QSpinBox)
    assert (panel.editors["n_points"].minimum(), panel.editors["n_points"].maximum()) == (20, 100000)
    assert isinstance(panel.editors["noise"], QDoubleSpinBox)
    assert panel.editors["noise"].value() == schema["noise"].default
    panel.set_dataset("csv", {"path": "/tmp/x.csv"})
    assert isinstance(panel.editors["path"], PathEdit) and panel.editors["path"].value() == "/tmp/x.csv"
    assert panel.editors["path"].button.text() == "..."


def test_set_dataset_emits_nothing(panel, qtbot):
    with qtbot.assertNotEmitted(panel.dataset_changed):
        panel.set_dataset("spiral", {"classes": 3, "noise": 0.3})
        panel.set_dataset("iris", {})
    assert panel.kind_combo.currentText() == "iris"


def test_edits_emit_the_whole_parameter_set(panel, qtbot):
    with qtbot.waitSignal(panel.dataset_changed) as sig:
        panel.editors["noise"].setValue(0.3)
    kind, params = sig.args
    assert kind == "xor" and params["noise"] == pytest.approx(0.3)
    assert set(params) == {p.name for p in datasets.DATASET_PARAMS["xor"]}
    assert datasets.resolve_params(datasets.DatasetSpec(kind, params))  # values the engine accepts


def test_switching_kind_keeps_shared_settings(panel, qtbot):
    panel.editors["seed"].setValue(7)
    with qtbot.waitSignal(panel.dataset_changed) as sig:
        panel.kind_combo.setCurrentText("gaussians")
    kind, params = sig.args
    assert kind == "gaussians" and params["seed"] == 7 and params["classes"] == 2
    assert "classes" in panel.editors


def test_csv_file_chooser(panel, qtbot, tmp_path):
    panel.kind_combo.setCurrentText("csv")
    chooser = panel.editors["path"]
    chooser.ask_path = lambda: str(tmp_path / "data.csv")
    with qtbot.waitSignal(panel.dataset_changed) as sig:
        chooser.button.click()
    assert sig.args[1]["path"] == str(tmp_path / "data.csv")


def test_scatter_preview_colours_points_by_class(panel):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    y = np.arange(50) % 3
    panel.show_points(x, y, ["a", "b", "c"], "50 samples")
    assert panel.preview.currentWidget() is panel.plot
    data = panel.scatter.data
    assert len(data) == 50
    np.testing.assert_allclose(data["x"], x[:, 0])
    colours = [panel.scatter.points()[i].brush().color().name() for i in range(6)]
    assert colours == [CLASS_COLORS[i % 3] for i in range(6)]
    assert "a" in panel.legend_label.text() and panel.summary_label.text() == "50 samples"


def test_big_sets_are_subsampled(panel):
    x = np.zeros((20000, 2))
    panel.show_points(x, np.zeros(20000, int), ["a"])
    assert len(panel.scatter.data) < 5000


def test_image_grid_preview(panel):
    imgs = np.zeros((10, 1, 8, 8))
    imgs[3, 0, 2, 2] = 1.0
    panel.show_images(imgs, np.arange(10), [str(i) for i in range(10)], "digits")
    assert panel.preview.currentWidget() is panel.image_view
    grid = panel.image_item.image
    assert grid.shape == (4 * 9 + 1, 3 * 9 + 1)  # 4 columns x 3 rows of 8x8 tiles, 1 px gaps ([x, y])
    # tile 3 is row 0, column 3; its ink pixel (2, 2) is the darkest value in the grid
    assert grid[1 + 3 * 9 + 2, 1 + 2] == grid.min() == 0.0


def test_rgb_image_grid_keeps_colour():
    imgs = np.zeros((4, 3, 5, 5))
    imgs[0, 0] = 1.0  # a red first image
    grid = image_grid(imgs)
    assert grid.shape == (2 * 6 + 1, 2 * 6 + 1, 3)
    assert tuple(grid[1, 1]) == (1.0, 0.0, 0.0)


def test_message_replaces_the_preview(panel):
    panel.show_message("data.csv line 3: 'x' is not a number")
    assert panel.preview.currentWidget() is panel.message_label
    assert "not a number" in panel.message()


def test_image_kinds_get_their_editors(qtbot):
    images = datasets.images
    w = DataPanel()
    qtbot.addWidget(w)
    kind = next(iter(images.IMAGE_PARAMS))
    w.set_dataset(kind, {})
    assert set(w.editors) == {p.name for p in images.IMAGE_PARAMS[kind]}
    for (k, name), choices in getattr(images, "CHOICES", {}).items():
        w.set_dataset(k, {})
        assert isinstance(w.editors[name], QComboBox)
        assert [w.editors[name].itemText(i) for i in range(w.editors[name].count())] == list(choices)
