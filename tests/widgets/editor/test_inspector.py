"""Inspector: typed editors from the registry, no echo on refresh, user edits become intents."""
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox

from engine import layers as L
from engine import spec as S
from engine.datasets import describe
from widgets.editor.inspector import Inspector, LogSpinBox


def _spec():
    spec = S.Spec(name="net")
    spec.layers = [S.LayerSpec("input1", "Input"), S.LayerSpec("conv1", "Conv2d", {"filters": 4}),
                   S.LayerSpec("drop1", "Dropout", {"rate": 0.25}), S.LayerSpec("act1", "Activation", {"function": "gelu"}),
                   S.LayerSpec("dense1", "Dense", {"units": 8})]
    spec.edges = [S.EdgeSpec("input1", "conv1"), S.EdgeSpec("conv1", "drop1"), S.EdgeSpec("drop1", "act1"),
                  S.EdgeSpec("act1", "dense1")]
    spec.dataset = S.DatasetSpec("digits", {})
    return spec


@pytest.fixture
def inspector(qtbot):
    w = Inspector()
    qtbot.addWidget(w)
    spec = _spec()
    w.set_design(spec, L.infer(spec, describe(spec.dataset)))
    w.resize(360, 700)
    w.show()
    return w


def test_editor_types_and_ranges_follow_the_registry(inspector):
    inspector.show_layers(["conv1"])
    eds = inspector.layer_page.editors
    kind = L.REGISTRY["Conv2d"]
    assert set(eds) == {p.name for p in kind.params}
    for p in kind.params:
        w = eds[p.name]
        want = {"int": QSpinBox, "float": QDoubleSpinBox, "choice": QComboBox, "bool": QCheckBox}[p.type]
        assert isinstance(w, want), p.name
        if p.type == "int":
            assert (w.minimum(), w.maximum()) == (p.min, p.max)
        if p.type == "choice":
            assert [w.itemText(i) for i in range(w.count())] == list(p.choices)
    assert eds["filters"].value() == 4 and eds["kernel"].value() == 3  # given value, then the default
    inspector.show_layers(["drop1"])
    rate = inspector.layer_page.editors["rate"]
    assert isinstance(rate, QDoubleSpinBox) and rate.maximum() == 0.95 and rate.decimals() >= 2
    assert rate.value() == 0.25


def test_layer_page_shows_kind_shape_count_help_and_formula(inspector):
    inspector.show_layers(["conv1"])
    page = inspector.layer_page
    assert inspector.tabs.currentIndex() == 0
    assert page.kind_label.text() == "Conv2d" and page.id_edit.text() == "conv1"
    assert page.shape_label.text().endswith("4x8x8") and "1x8x8" in page.shape_label.text()
    assert page.count_label.text() == str(1 * 4 * 9 + 4)
    assert page.help_label.text() == L.REGISTRY["Conv2d"].help
    inspector.show_layers(["act1"])
    assert page.formula_label.text() == L.ACTIVATION_FORMULAS["gelu"]


def test_errors_are_shown_in_red(inspector):
    inspector.show_layers(["dense1"])
    text = inspector.layer_page.error_label.text()
    assert "flat input" in text and "c62828" in inspector.layer_page.error_label.styleSheet()
    assert inspector.layer_page.count_label.text() == "-"


def test_refresh_emits_nothing(inspector, qtbot):
    inspector.show_layers(["conv1"])
    spec = _spec()
    spec.layers[1].params["filters"] = 9
    spec.training.lr = 0.5
    spec.name = "other"
    with qtbot.assertNotEmitted(inspector.param_changed), qtbot.assertNotEmitted(inspector.training_changed), \
            qtbot.assertNotEmitted(inspector.name_changed):
        inspector.set_design(spec, L.infer(spec, describe(spec.dataset)))
    assert inspector.layer_page.editors["filters"].value() == 9
    assert inspector.design_page.editors["lr"].value() == 0.5
    assert inspector.design_page.name_edit.text() == "other"


def test_user_edits_emit_intents(inspector, qtbot):
    inspector.show_layers(["conv1"])
    eds = inspector.layer_page.editors
    with qtbot.waitSignal(inspector.param_changed) as sig:
        eds["kernel"].setValue(5)
    assert sig.args == ["conv1", "kernel", 5]
    with qtbot.waitSignal(inspector.param_changed) as sig:
        eds["padding"].setCurrentText("valid")
    assert sig.args == ["conv1", "padding", "valid"]
    with qtbot.waitSignal(inspector.param_changed) as sig:
        eds["bias"].setChecked(False)
    assert sig.args == ["conv1", "bias", False]


def test_typing_is_not_interrupted_by_the_refresh(inspector, qtbot):
    inspector.show_layers(["conv1"])
    spin = inspector.layer_page.editors["filters"]
    spin.setFocus()
    spin.selectAll()
    got = []
    inspector.param_changed.connect(lambda lid, name, v: got.append(v))

    def on_change(lid, name, value):  # the app refreshes after each edit, as MainWindow does
        spec = _spec()
        spec.layers[1].params["filters"] = value
        inspector.set_design(spec, L.infer(spec, describe(spec.dataset)))

    inspector.param_changed.connect(on_change)
    qtbot.keyClicks(spin, "16")
    assert got == [1, 16] and spin.value() == 16 and spin.hasFocus()
    assert spin.lineEdit().cursorPosition() == 2


def test_invalid_layer_id_is_refused_with_a_message(inspector, qtbot):
    inspector.show_layers(["conv1"])
    edit = inspector.layer_page.id_edit
    with qtbot.assertNotEmitted(inspector.layer_renamed):
        for bad in ("2conv", "dense1"):
            edit.setText(bad)
            edit.editingFinished.emit()
            assert inspector.layer_page.message_label.text()
            assert edit.text() == "conv1"
    edit.setText("features")
    with qtbot.waitSignal(inspector.layer_renamed) as sig:
        edit.editingFinished.emit()
    assert sig.args == ["conv1", "features"]


def test_training_settings_when_nothing_is_selected(inspector, qtbot):
    inspector.show_layers(["conv1"])
    inspector.show_layers([])
    assert inspector.tabs.currentIndex() == 1
    eds = inspector.design_page.editors
    assert set(eds) == set(vars(S.TrainingSpec()))
    assert [eds["optimizer"].itemText(i) for i in range(eds["optimizer"].count())] == list(S.OPTIMIZERS)
    assert [eds["loss"].itemText(i) for i in range(eds["loss"].count())] == list(S.LOSSES)
    assert [eds["lr_schedule"].itemText(i) for i in range(eds["lr_schedule"].count())] == list(S.SCHEDULES)
    assert [eds["device"].itemText(i) for i in range(eds["device"].count())] == list(S.DEVICES)
    assert eds["lr"].minimum() == 1e-5 and eds["lr"].maximum() == 10 and eds["lr"].decimals() == 5
    with qtbot.waitSignal(inspector.training_changed) as sig:
        eds["batch_size"].setValue(64)
    assert sig.args == ["batch_size", 64]
    with qtbot.waitSignal(inspector.training_changed) as sig:
        eds["lr_schedule"].setCurrentText("step")
    assert sig.args == ["lr_schedule", "step"]
    with qtbot.waitSignal(inspector.name_changed) as sig:
        inspector.design_page.name_edit.setText("renamed")
        inspector.design_page.name_edit.editingFinished.emit()
    assert sig.args == ["renamed"]


def test_settings_the_optimiser_ignores_are_greyed(inspector):
    spec = _spec()
    spec.training.optimizer = "adam"
    inspector.set_design(spec, None)
    eds = inspector.design_page.editors
    assert not eds["momentum"].isEnabled() and not eds["step_size"].isEnabled()
    spec.training.optimizer, spec.training.lr_schedule = "sgd", "step"
    inspector.set_design(spec, None)
    assert eds["momentum"].isEnabled() and eds["nesterov"].isEnabled() and eds["step_size"].isEnabled()


def test_learning_rate_steps_one_two_five_per_decade(qtbot):
    w = LogSpinBox(1e-5, 10.0)
    qtbot.addWidget(w)
    w.setValue(0.01)
    seen = []
    for _ in range(4):
        w.stepBy(1)
        seen.append(w.value())
    assert seen == pytest.approx([0.02, 0.05, 0.1, 0.2])
    w.stepBy(-3)
    assert w.value() == pytest.approx(0.02)
    assert w.textFromValue(0.001) == "0.001"
    zero = LogSpinBox(1e-5, 1.0, allow_zero=True)
    qtbot.addWidget(zero)
    zero.setValue(0.0)
    zero.stepBy(1)
    assert zero.value() == pytest.approx(1e-5)
    zero.stepBy(-1)
    assert zero.value() == 0.0


def test_multiple_selection_summarises(inspector):
    inspector.show_layers(["conv1", "dense1"])
    assert inspector.layer_stack.currentIndex() == 0
    assert "2 layers selected" in inspector.empty_label.text()


def test_wheel_over_an_unfocused_editor_does_not_change_it(inspector, qtbot):
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    inspector.show_layers(["conv1"])
    spin = inspector.layer_page.editors["filters"]
    ev = QWheelEvent(QPointF(5, 5), QPointF(spin.mapToGlobal(QPoint(5, 5))), QPoint(0, 0), QPoint(0, 120),
                     Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(spin, ev)
    assert spin.value() == 4
