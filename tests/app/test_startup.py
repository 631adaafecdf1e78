"""Start-up (issue 14): the window shows with the editor and placeholder docks before pyqtgraph and
torch are imported, builds its views after the first frame, and a user who acts before that
(Train in the first moments) gets the whole window at once."""
import os
import subprocess
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel

from app.main_window import MainWindow
from app.session import wait_until
from app.training import TrainingController
from engine import spec as S
from tests.conftest import EXAMPLES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Records, at the main window's first paint, what was imported and what was built; closes the window
# once it is built. Then runs the real entry point.
HOOK = r"""
import sys
sys.path.insert(0, {root!r})
import app.main_window as mw
original = mw.MainWindow.paintEvent
def paint_event(self, event):
    if not getattr(self, "_hook_seen", False):
        self._hook_seen = True
        mods = " ".join("%s=%s" % (m, m in sys.modules) for m in ("pyqtgraph", "torch", "sklearn"))
        print("FIRST_PAINT", mods, "built=%s docks=%d curves=%s" % (self.is_built(), len(self.docks),
              self.views.curves is not None), flush=True)
        def on_built():
            w = self.views.curves
            print("BUILT curves_in_dock=%s" % (w is not None and self.docks["curves_dock"].widget() is w), flush=True)
            self.close()
        self.built.connect(on_built)
    original(self, event)
mw.MainWindow.paintEvent = paint_event
import main
sys.exit(main.main(sys.argv[1:]))
"""


def test_the_first_frame_comes_before_pyqtgraph_and_torch_and_the_views_follow(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"),
               NP_SETTINGS_ORG="np-test-startup")
    env.pop("PYTHONPATH", None)
    r = subprocess.run([sys.executable, "-c", HOOK.format(root=ROOT)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    first = [line for line in r.stdout.splitlines() if line.startswith("FIRST_PAINT")]
    assert first, r.stdout + r.stderr[-3000:]
    # every dock is in place in the first frame (placeholders for the views), nothing heavy is loaded yet
    assert "pyqtgraph=False torch=False sklearn=False built=False" in first[0], first[0]
    assert int(first[0].split("docks=")[1].split()[0]) >= 20 and "curves=False" in first[0]
    assert "BUILT curves_in_dock=True" in r.stdout, r.stdout + r.stderr[-3000:]


def _lazy_window(qtbot, spec=None, **kw):
    win = MainWindow(spec if spec is not None else S.load(os.path.join(EXAMPLES, "xor.json")), start_engine=False,
                     restore=kw.pop("restore", False), lazy=True, features=(TrainingController,), **kw)
    qtbot.addWidget(win)
    win.document.undo_stack.setClean()
    return win


def test_a_lazy_window_builds_its_views_a_step_at_a_time_with_the_event_loop_turning(qtbot):
    win = _lazy_window(qtbot)
    dock = win.docks["curves_dock"]
    assert isinstance(dock.widget(), QLabel) and win.views.curves is None and not win.is_built()
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))  # one tick per turn of the event loop
    timer.start(0)
    win.show()
    qtbot.waitUntil(win.is_built, timeout=60000)
    timer.stop()
    assert dock.widget() is win.views.curves and win.views.landscape is not None and win.training.presenters
    assert len(ticks) >= 10, "the views were built in one go: the window could not answer meanwhile"
    win.close()


def test_train_pressed_before_the_views_are_built_builds_them_and_trains(qtbot, monkeypatch):
    monkeypatch.setenv("NP_TRAIN_IN_THREAD", "1")  # the worker in a thread of this process: quick to start
    spec = S.load(os.path.join(EXAMPLES, "xor.json"))
    spec.training.epochs, spec.training.device = 5, "cpu"
    win = _lazy_window(qtbot, spec)
    win.show()
    assert not win.is_built()
    win.training.toolbar.actions_by_name()["train"].trigger()  # at once, as in the first 300 ms
    assert win.is_built() and win.views.curves is not None
    ctl = win.training
    assert wait_until(lambda: ctl.state in ("finished", "stopped", "diverged", "error"), 120), ctl.state
    assert ctl.state == "finished", ctl.last_message
    qtbot.waitUntil(lambda: len(win.views.curves.history()["epoch"]) == 5, timeout=10000)  # the presenters are wired
    win.close()


def test_a_lazy_window_keeps_the_saved_layout_of_the_docks_it_builds_late(qtbot):
    first = _lazy_window(qtbot, restore=True)
    first.finish_building()
    first.show()
    qtbot.waitExposed(first)
    for name in ("hidden_dock", "filters_dock"):  # hidden for XOR by the data's plan; the user showed them
        first.docks[name].show()
    first.docks["boundary_dock"].hide()
    first.close()  # saves the layout
    win = _lazy_window(qtbot, restore=True)
    win.show()
    qtbot.waitUntil(win.is_built, timeout=60000)
    qtbot.wait(50)
    assert not win.docks["hidden_dock"].isHidden() and not win.docks["filters_dock"].isHidden()
    assert win.docks["boundary_dock"].isHidden()
    win.close()
