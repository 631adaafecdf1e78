"""Screenshots of a lesson after its runs and of the kernel lab (README).
Run from the repository root: ../shared/tools/shoot /tmp/x.png 60 -- .venv/bin/python assets/screenshots/make_lesson_shots.py"""
import os
import sys

sys.path.insert(0, os.getcwd())
from widgets import pyside_fix  # noqa: E402

pyside_fix.install()
from PySide6.QtWidgets import QApplication  # noqa: E402

app = QApplication([])
from app.kernel_lab import KernelLabController  # noqa: E402
from app.lessons import LessonsController  # noqa: E402
from app.main_window import MainWindow  # noqa: E402
from app.session import wait_until  # noqa: E402
from app.training import TrainingController  # noqa: E402

OUT = os.path.join("assets", "screenshots")
win = MainWindow(None, restore=False, features=(TrainingController, LessonsController, KernelLabController))
win.resize(1600, 1000)
win.lessons.panel.setMinimumWidth(480)  # room for the lesson text in the picture
win.show()
assert wait_until(lambda: win.engine.ready, 60)
ctl = win.lessons
ctl.open("learning_rate")
for step in (0, 1, 2):  # lr 5, then lr 0.1
    ctl.do_step(step)
    win.training.train()
    assert wait_until(lambda: win.training.state in ("finished", "diverged", "stopped") and not win.training.model.active, 120)
    wait_until(lambda: False, 1.0)
for box in app.topLevelWidgets():  # the "diverged" message box
    if box is not win and box.isVisible():
        box.close()
ctl.raise_dock("curves_dock")
wait_until(lambda: False, 3.0)
win.repaint()
# what the screen shows (win.grab() re-renders hidden tab bars of re-docked panels as ghosts)
app.primaryScreen().grabWindow(0, win.x(), win.y(), win.frameGeometry().width(), win.frameGeometry().height()).save(
    os.path.join(OUT, "lesson.png"))
lab = win.kernel_lab
lab.show("worked: 6x6 vertical edge")
wait_until(lambda: lab.last is not None, 30)
lab.view.row.setValue(1)
lab.view.col.setValue(2)
lab.dock.setFloating(True)  # the lab wants room: a window of its own, as a user would undock it
lab.dock.resize(1000, 900)
wait_until(lambda: False, 1.5)
lab.dock.grab().save(os.path.join(OUT, "kernel_lab.png"))
win.document.undo_stack.setClean()
win.close()
print("saved")
