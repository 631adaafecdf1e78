"""TensorFlow Playground's own problem in the real main window: epochs/s with the views live.

Trains assets/examples/playground_default.json (circles, 500 points, half for training, 2-4-2-1
tanh, SGD lr 0.03, batch 10, squared error) in the main window (offscreen) with the curves, the
decision boundary and the neuron maps docked and visible, for a few seconds; then times a bare
eager torch loop (same model, data, batches and optimiser, one thread) in the same process.

    python bench/playground_speed.py [--seconds 8]
    NP_FUSED=0 python bench/playground_speed.py     # the same with the eager loop (before issue 14)

The last line is ``epochs_per_s X bare Y ratio Z device D``. Target (issue 14): X >= 240.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from widgets import pyside_fix  # noqa: E402

pyside_fix.install()

from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

DESIGN = os.path.join(ROOT, "assets", "examples", "playground_default.json")
DOCKS = ("curves_dock", "boundary_dock", "neuron_dock")


def bare_epochs_per_s(spec, data, seconds: float) -> float:
    """Epochs/s of a plain eager torch loop on one thread (what the issue's 'bare loop' means)."""
    import torch

    from engine.build import build
    from engine.trainer import loss_fn

    torch.set_num_threads(1)
    model = build(spec, data.info)
    t = spec.training
    opt = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    g = torch.Generator().manual_seed(t.seed)
    bs = t.batch_size
    epochs, start = 0, time.perf_counter()
    model.train()
    while time.perf_counter() - start < seconds:
        perm = torch.randperm(len(x), generator=g)
        for b in range(0, len(x), bs):
            idx = perm[b:b + bs]
            loss = loss_fn(model(x[idx]), y[idx], t.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()  # the trainer reads every loss (NaN check); so does any honest loop
        epochs += 1
    return epochs / (time.perf_counter() - start)


def run_loop(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, tempfile.mkdtemp())
    app = QApplication.instance() or QApplication([])
    from app.main_window import MainWindow
    from app.session import wait_until
    from app.training import TrainingController
    from engine import datasets
    from engine import spec as S

    window = MainWindow(restore=False, features=(TrainingController,))
    ctl = window.training
    for name in DOCKS:  # side by side, each on screen, so each one's part is computed and painted
        window.removeDockWidget(window.docks[name])
    for name in DOCKS:
        window.addDockWidget(Qt.BottomDockWidgetArea, window.docks[name])
        window.docks[name].show()
    window.resize(1600, 1000)
    window.show()
    wait_until(lambda: window.engine.ready, 60)
    spec = S.load(DESIGN)
    spec.training.epochs = 100_000  # the most a design allows; stopped below
    window.document.reset(spec)
    app.processEvents()
    ctl.train()
    if not wait_until(lambda: ctl.state == "running", 60):
        raise SystemExit(f"the run did not start: {ctl.last_message}")
    run_loop(1.5)  # warm-up: first snapshots, views built
    snap0 = ctl.model.snapshot
    d0 = ctl.session.delivered
    run_loop(args.seconds)
    snap1 = ctl.model.snapshot
    delivered = ctl.session.delivered - d0
    # the trainer's own clock (pauses not counted): epochs between two snapshots over their elapsed time
    eps = (snap1.epoch - snap0.epoch) / max(snap1.elapsed - snap0.elapsed, 1e-9)
    extras = sorted(snap1.extras)
    if snap1.extras.get("problems"):
        print("view problems:", snap1.extras["problems"])
    device = ctl.model.run.device if ctl.model.run is not None else "?"
    ctl.stop()
    wait_until(lambda: not ctl.model.active, 10)
    data = datasets.load(spec.dataset)
    bare = bare_epochs_per_s(spec, data, min(args.seconds, 4.0))
    ctl.shutdown()
    window.document.undo_stack.setClean()
    window.close()
    app.processEvents()
    print(f"views live: {', '.join(extras)}; snapshots delivered {delivered} in {args.seconds:g} s")
    # a shared 2-core box: the load says how much of the machine this run had
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores: above ~1 other work competed with the worker or the GUI)")
    print(f"epochs_per_s {eps:.0f} bare {bare:.0f} ratio {eps / bare:.2f} device {device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
