"""The timeline bar under the curves: a drag asks once, where it rests; disabled while training."""
import numpy as np

from widgets.controls.timeline_bar import TimelineBar


def test_a_quick_drag_asks_only_for_the_epoch_where_it_rests(qtbot):
    bar = TimelineBar()
    qtbot.addWidget(bar)
    bar.set_checkpoints(np.array([0, 2, 4, 6, 8, 9]), nbytes=2048, now=9)
    bar.set_interactive(True)
    asked = []
    bar.epoch_chosen.connect(asked.append)
    for i in (5, 4, 3, 2):
        bar.slider.setValue(i)
    qtbot.waitUntil(lambda: bool(asked), timeout=2000)
    qtbot.wait(300)
    assert asked == [4], "only the resting position (index 2 -> epoch 4) is asked for"


def test_while_training_the_slider_and_fork_are_disabled_and_say_why(qtbot):
    bar = TimelineBar()
    qtbot.addWidget(bar)
    bar.set_checkpoints(np.arange(5), now=4)
    bar.set_interactive(False)
    assert not bar.slider.isEnabled() and not bar.fork_button.isEnabled()
    assert "pause to look back" in bar.label.text()
    assert bar.slider.value() == bar.slider.maximum(), "live: the slider sits at the newest checkpoint"
    bar.set_interactive(True)
    bar.set_showing(1)
    assert bar.slider.value() == 1 and bar.live_button.isEnabled()
    forks = []
    bar.fork_requested.connect(forks.append)
    bar.fork_button.click()
    assert forks == [1], "fork from the epoch shown"


def test_a_narrow_dock_gives_the_slider_a_row_of_its_own(qtbot):
    bar = TimelineBar()
    qtbot.addWidget(bar)
    bar.set_checkpoints(np.arange(30), now=29)
    bar.show()
    bar.resize(340, 60)
    qtbot.waitUntil(lambda: bar.slider.geometry().width() > 0)
    qtbot.wait(50)
    assert bar.slider.geometry().bottom() < bar.fork_button.geometry().top(), "slider above the buttons"
    assert bar.slider.width() > 200
    bar.resize(900, 40)
    qtbot.wait(50)
    assert abs(bar.slider.geometry().center().y() - bar.fork_button.geometry().center().y()) < 8, "one row"
