"""A closed main window is freed: closing and opening windows does not grow the process (issue 15).

bench/reliability.py closes and reopens the window ~100 times; every closed window stayed alive with
its views and their last snapshots (~30 MB each, 2.9 GB per 100 reopens) because Qt holds the slots
connected to the window's children and ``deleteLater`` never ran outside an event loop.
"""
import gc
import os
import weakref

from app.gui import destroy_window
from app.training import TrainingController
from engine import spec as S
from tests.conftest import EXAMPLES

K = 5


def test_closed_windows_and_their_views_are_freed(qtbot):
    from app.main_window import MainWindow

    def alive(p):
        return p is not None and os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read().split()[2] != "Z"

    refs, pids = [], []
    for i in range(K):
        spec = S.load(os.path.join(EXAMPLES, "xor.json"))
        spec.training.device = "cpu"
        spec.training.epochs = 100000
        trains = i == 0  # one window trains (worker process, snapshots in its views); the rest are editors
        win = MainWindow(spec, restore=False, start_engine=trains, features=(TrainingController,))
        win.ask_save_changes = lambda: "discard"
        win.show()
        qtbot.waitExposed(win)
        if trains:
            qtbot.waitUntil(lambda w=win: w.engine.ready, timeout=60000)
            win.training.train()
            qtbot.waitUntil(lambda w=win: w.training.state == "running" and w.training.run.step > 20, timeout=60000)
            qtbot.waitUntil(lambda w=win: len(w.views.curves.history()["epoch"]) > 0, timeout=10000)
            pids.append(win.training.session.pid)
        refs += [weakref.ref(o) for o in (win, win.training, win.training.session, win.views.curves,
                                          win.views.boundary, win.canvas)]
        win.close()
        destroy_window(win)
        del win
    gc.collect()
    left = [type(r()).__name__ for r in refs if r() is not None]
    assert not left, f"still alive after {K} windows were closed: {left}"
    qtbot.waitUntil(lambda: not any(alive(p) for p in pids), timeout=5000)  # and their trainer processes ended
