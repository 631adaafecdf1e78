"""The Lessons dock and the Kernel lab in the window: a lesson opens its design, a step's button is
an undoable edit, a run ends with the lesson's verdict; a preset in the lab shows torch's numbers
next to the notes' expected matrix."""
import pytest

from app.kernel_lab import KernelLabController
from app.lessons import LessonsController
from app.training import TrainingController

DONE = ("finished", "stopped", "diverged")
FEATURES = (TrainingController, LessonsController, KernelLabController)


@pytest.fixture
def lab_window(make_window, qtbot):
    win = make_window(start_engine=True, features=FEATURES)
    qtbot.waitUntil(lambda: win.engine.ready, timeout=60000)
    return win


def test_kernel_lab_preset_shows_the_expected_matrix(lab_window, qtbot):
    lab = lab_window.kernel_lab
    lab.load_preset("worked: 6x6 vertical edge")
    qtbot.waitUntil(lambda: lab.last is not None and lab.last.request_id == lab._pending, timeout=60000)
    assert lab.last.output[0].tolist() == [[-5, -4, 0, 8], [-10, -2, 2, 3], [0, -2, -4, -7], [-3, -2, -3, -16]]
    v = lab.view
    assert "-16" in v.output_view.text() and "Expected" in v.expected_view.text() and "matches" in v.verdict.text()
    assert "= 4" in v.formula.text() and "10 parameters" in v.layer.text()
    assert "= -5" in v.math.text()  # the first cell's multiply-add
    v.next_button.click()
    assert (v.row.value(), v.col.value()) == (0, 1) and "= -4" in v.math.text()
    # a typed edit ends the comparison with the preset and is computed anew
    v.input_edit.setPlainText("1 2\n3 4")
    v.op.setCurrentIndex(v.op.findData("maxpool"))
    v.stride.setValue(1)
    qtbot.waitUntil(lambda: lab.last.output.shape == (1, 1, 1), timeout=10000)
    assert lab.last.output[0, 0, 0] == 4 and v.verdict.text() == ""
    lab.load_preset("worked: odd side, ceil")
    qtbot.waitUntil(lambda: lab.last.output.shape == (1, 3, 3), timeout=10000)
    assert "matches" in v.verdict.text() and "ceil(" in v.formula.text()


def test_a_lesson_opens_steps_edit_undoably_and_a_run_gets_its_verdict(lab_window, qtbot):
    win = lab_window
    ctl = win.lessons
    assert ctl.panel.tree.topLevelItemCount() == 6
    win.actions["lessons"].trigger()
    assert ctl.open("momentum")
    assert win.document.spec.name == "Momentum" and win.document.path is None and not win.document.is_modified()
    assert win.document.spec.training.momentum == 0.0
    ctl.do_step(1)  # "Momentum 0.9"
    assert win.document.spec.training.momentum == 0.9
    win.document.undo_stack.undo()
    assert win.document.spec.training.momentum == 0.0
    win.training.train()
    qtbot.waitUntil(lambda: win.training.state in DONE and not win.training.model.active, timeout=60000)
    qtbot.waitUntil(lambda: "not yet run" in ctl.panel.verdict.text(), timeout=5000)
    ctl.do_step(1)
    win.training.train()
    qtbot.waitUntil(lambda: "momentum 0.9" in ctl.panel.verdict.text() and "as expected" in ctl.panel.verdict.text(),
                    timeout=60000)
    assert "this run did not show it" not in ctl.panel.verdict.text()


def test_a_step_naming_a_missing_view_says_so(lab_window):
    win = lab_window
    win.lessons.open("vanishing_gradients")
    assert not win.lessons.raise_dock("no_such_dock"), "a view this window does not have is reported, not raised"
    assert win.lessons.raise_dock("gradients_dock"), "the vanishing-gradients lesson shows the Gradients view"
    assert win.docks["gradients_dock"].isVisible()
    assert win.lessons.raise_dock("curves_dock")
