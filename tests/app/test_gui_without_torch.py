"""The GUI process needs no torch: the window, a training run and every view work with torch
blocked in it (the worker process imports torch; the GUI only receives numpy)."""
import os
import subprocess
import sys

from tests.test_architecture import BLOCKER, ROOT

BODY = r'''
import os, sys, time
from widgets import pyside_fix
pyside_fix.install()
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.main_window import MainWindow
from app.session import wait_until
from app.training import TrainingController
from app.lessons import LessonsController
from app.kernel_lab import KernelLabController
from app.compare import CompareController
from engine import spec as S

def train(path, epochs, docks):
    spec = S.load(os.path.join("assets", "examples", path))
    spec.training.epochs = epochs
    features = (TrainingController, LessonsController, KernelLabController, CompareController)
    win = MainWindow(spec, restore=False, features=features)
    win.show()
    ctl = win.training
    assert wait_until(lambda: win.engine.ready or win.engine.failed, 60), "data loaders"
    assert not win.engine.failed, win.engine.failed
    ctl.train()
    assert wait_until(lambda: ctl.state in ("finished", "stopped", "diverged", "error"), 180), ctl.state
    assert ctl.state == "finished", (ctl.state, ctl.last_message)
    shown = {}
    for name in docks:  # the user brings each view forward; the finished run answers
        win.views.docks[name].show()
        win.views.docks[name].raise_()
        shown[name] = wait_until(lambda name=name: docks[name](win), 30)
    return win, ctl, shown

win, ctl, shown = train("xor.json", 30, {
    "boundary_dock": lambda w: w.views.boundary.image_rgba() is not None,
    "curves_dock": lambda w: len(w.views.curves.history()["epoch"]) == 30,
    "evaluation_dock": lambda w: w.views.evaluation.displayed_confusion() is not None,
})
assert all(shown.values()), shown
assert win.canvas.node_item("dense1").strip is not None, "neuron thumbnails on the canvas"
win.kernel_lab.load_preset("worked: transposed, stride 2")  # computed by the worker, shown without torch here
assert wait_until(lambda: win.kernel_lab.last is not None and win.kernel_lab.last.output.shape == (1, 4, 4), 30)
assert "matches" in win.kernel_lab.view.verdict.text()
print("xor", ctl.model.snapshot.val_acc)
assert win.compare.train_all([("training.lr", "0.1, 1")]), win.compare.view.problem()  # a comparison, drawn without torch
assert wait_until(lambda: win.compare.state == "ended", 60), win.compare.state
assert wait_until(lambda: all(im is not None for im in win.compare.view.tile_images()), 10)
win.document.undo_stack.setClean(); win.close()

win, ctl, shown = train("digits_cnn.json", 1, {
    "filters_dock": lambda w: w.views.filters.displayed_array() is not None,
    "feature_maps_dock": lambda w: bool(w.views.feature_maps.displayed_maps()),
    "saliency_dock": lambda w: w.views.saliency.displayed_attribution() is not None,
    "evaluation_dock": lambda w: w.views.evaluation.displayed_confusion() is not None,
})
assert all(shown.values()), shown
out = os.path.join(sys.argv[1], "w.safetensors")
assert ctl.export_weights(out)
assert wait_until(lambda: os.path.exists(out), 30), "the worker wrote the weights"
win.document.undo_stack.setClean(); win.close()
assert "torch" not in sys.modules
print("ok")
'''


def test_window_training_and_every_view_work_with_torch_blocked(tmp_path):
    code = BLOCKER.format(blocked=["torch", "captum"], root=ROOT) + f"sys.argv[1:] = [{str(tmp_path)!r}]\n" + BODY
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", NP_SETTINGS_ORG="np-test-no-torch")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout[-2000:] + r.stderr[-4000:]
