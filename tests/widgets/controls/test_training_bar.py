"""Training toolbar (actions per state, shortcuts, devices) and the status-bar read-out."""
import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow

from widgets.controls.training_bar import TrainingStatus, TrainingToolbar, format_elapsed, format_rate

# What a user may press in each state, written out from the brief (not read from the widget's table).
EXPECTED = {
    "idle": {"train", "step", "reset"},
    "running": {"pause", "stop"},
    "paused": {"train", "step", "stop", "reset"},
    "finished": {"train", "reset"},
    "stopped": {"train", "reset"},
    "diverged": {"train", "reset"},
}


@pytest.fixture
def window(qtbot):
    win = QMainWindow()
    bar = TrainingToolbar(win)
    win.addToolBar(bar)
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    qtbot.waitExposed(win)
    return win, bar


@pytest.mark.parametrize("state", sorted(EXPECTED))
def test_set_state_enables_exactly_the_sensible_actions(window, state):
    _, bar = window
    bar.set_state(state)
    enabled = {name for name, act in bar.actions_by_name().items() if act.isEnabled()}
    assert enabled == EXPECTED[state]


def test_train_reads_resume_while_paused_and_device_is_locked_during_a_run(window):
    _, bar = window
    bar.set_devices(["auto", "cpu", "cuda"], "auto")
    bar.set_state("paused")
    assert bar.train_action.text() == "Resume" and "F5" in bar.train_action.toolTip()
    assert not bar.device_combo.isEnabled()
    bar.set_state("finished")
    assert bar.train_action.text() == "Train"
    assert bar.device_combo.isEnabled()


def test_unknown_state_is_a_clear_error(window):
    _, bar = window
    with pytest.raises(ValueError, match="unknown training state 'flying'"):
        bar.set_state("flying")


@pytest.mark.parametrize("key, modifier, signal, state", [
    (Qt.Key.Key_F5, Qt.KeyboardModifier.NoModifier, "train_requested", "idle"),
    (Qt.Key.Key_F6, Qt.KeyboardModifier.NoModifier, "pause_requested", "running"),
    (Qt.Key.Key_F10, Qt.KeyboardModifier.NoModifier, "step_requested", "paused"),
    (Qt.Key.Key_F5, Qt.KeyboardModifier.ShiftModifier, "stop_requested", "running"),
    (Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier, "reset_requested", "finished"),
])
def test_shortcuts_emit_their_signal(qtbot, window, key, modifier, signal, state):
    win, bar = window
    bar.set_state(state)
    with qtbot.waitSignal(getattr(bar, signal), timeout=1000):
        qtbot.keyClick(win, key, modifier)


def test_a_disabled_action_ignores_its_shortcut(qtbot, window):
    win, bar = window
    bar.set_state("running")
    fired = []
    bar.train_requested.connect(lambda: fired.append(1))
    qtbot.keyClick(win, Qt.Key.Key_F5)
    assert fired == []


def test_tooltips_name_the_shortcuts(window):
    _, bar = window
    tips = {name: act.toolTip() for name, act in bar.actions_by_name().items()}
    assert "(F5)" in tips["train"] and "(F6)" in tips["pause"] and "(F10)" in tips["step"]
    assert "(Shift+F5)" in tips["stop"] and "(Ctrl+R)" in tips["reset"]
    assert all(not act.icon().isNull() for act in bar.actions_by_name().values())


def test_devices_select_without_emitting_and_a_user_choice_emits(qtbot, window):
    _, bar = window
    seen = []
    bar.device_changed.connect(seen.append)
    bar.set_devices(["auto", "cpu", "cuda"], "cuda")
    assert bar.device() == "cuda" and bar.device_combo.currentText() == "CUDA GPU" and seen == []
    bar.device_combo.setCurrentIndex(bar.device_combo.findData("cpu"))
    assert seen == ["cpu"]
    bar.set_state("running")
    assert not bar.device_combo.isEnabled()


def test_status_shows_the_snapshot(qtbot):
    st = TrainingStatus()
    qtbot.addWidget(st)
    st.set_device("CUDA NVIDIA GeForce RTX 4090")
    st.update_snapshot(37, 100, 4625, 48213.0, 83.2, "running")
    text = st.text()
    for part in ("Training", "CUDA NVIDIA GeForce RTX 4090", "epoch 37/100", "step 4,625", "48.2k samples/s", "01:23"):
        assert part in text
    assert (st.progress.value(), st.progress.maximum()) == (37, 100)
    st.update_snapshot(3, 100, 40, float("nan"), 3725.0, "diverged")
    assert "Diverged" in st.text() and "1:02:05" in st.text() and "– samples/s" in st.text()


def test_formatters():
    assert format_elapsed(0) == "00:00" and format_elapsed(59.9) == "00:59" and format_elapsed(600) == "10:00"
    assert format_elapsed(float("inf")) == "--:--"
    assert format_rate(950) == "950 samples/s" and format_rate(1_234_567) == "1.2M samples/s"


def test_thousands_of_emits_do_not_crash_the_interpreter(qtbot, window):
    # PySide6 6.12 on Python 3.11 drops a reference to True on every Python-side emit;
    # without widgets.pyside_fix this aborts with "bool_dealloc" after a few thousand.
    _, bar = window
    count = []
    bar.reset_requested.connect(lambda: count.append(1))
    n = 20_000  # True has a few thousand references in a fresh interpreter
    for _ in range(n):
        bar.reset_action.trigger()
    assert len(count) == n
    assert sys.getrefcount(True) > n


def test_speed_choice_emits_and_stays_available_while_training(qtbot, window):
    _, bar = window
    seen = []
    bar.pace_changed.connect(lambda cap, slow: seen.append((cap, slow)))
    assert bar.speed_combo.currentText() == "Full speed"
    bar.set_state("running")  # unlike the device, the speed changes a run that is going
    assert bar.speed_combo.isEnabled()
    bar.speed_combo.setCurrentIndex(bar.speed_combo.findText("5 epochs/s"))
    bar.speed_combo.setCurrentIndex(bar.speed_combo.count() - 1)
    assert seen == [(5.0, False), (0.0, True)] and "Slow motion" in bar.speed_combo.currentText()
    with pytest.raises(ValueError, match="no speed entry"):
        bar.set_pace(7.0)
