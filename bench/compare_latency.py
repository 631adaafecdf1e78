"""Event-loop latency of the main window while a comparison of N variants trains (issue 12).

The window of bench/ui_latency.py (every view dock on screen) with the Compare dock in the
Curves dock's place (it draws the variants' curves itself);
a comparison sweeps the learning rate over N values (one batched group) and trains while a
10 ms QTimer measures how late the event loop serves it (bench/ui_latency.py's timer). Also
printed: variant snapshots delivered per second and the batched trainer's samples per second
per variant.

    python bench/compare_latency.py [--variants 8] [--seconds 8] [--cases xor digits_cnn]

The last line is ``p99_ms X`` for the worst case. Target: p99 < 30 ms with 8 variants.
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
sys.path.insert(0, os.path.join(ROOT, "bench"))

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from ui_latency import LatencyProbe, run_loop  # noqa: E402

LRS = (0.003, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 0.002, 0.004, 0.006)


def show_views_and_compare(window) -> None:
    """bench/ui_latency.py's show_every_dock with the Compare dock in the Curves dock's place
    (it draws the variants' curves itself)."""
    names = ["compare_dock", "boundary_dock", "neuron_dock", "filters_dock", "feature_maps_dock", "saliency_dock",
             "evaluation_dock", "gradients_dock", "distributions_dock", "roc_dock", "embedding_dock"]
    window.docks["curves_dock"].hide()
    docks = [window.docks[n] for n in names]
    for d in docks:
        window.removeDockWidget(d)
    for i, d in enumerate(docks):
        window.addDockWidget(Qt.BottomDockWidgetArea if i < 4 else Qt.RightDockWidgetArea, d)
        d.show()
    window.resize(1800, 1100)


def run_case(window, name: str, n: int, seconds: float) -> tuple[float, float]:
    from app.session import wait_until
    from engine import spec as S

    cmp = window.compare
    spec = S.load(os.path.join(ROOT, "assets", "examples", f"{name}.json"))
    spec.training.epochs = 100000  # we stop it ourselves
    spec.training.device = "cpu"
    window.document.reset(spec)
    QApplication.processEvents()
    probe = LatencyProbe()
    assert cmp.train_all([("training.lr", ", ".join(f"{v:g}" for v in LRS[:n]))]), cmp.view.problem()
    wait_until(lambda: cmp.state == "running", 120)
    run_loop(1.5)  # warm-up: first snapshots, tiles and curves made
    d0, snaps0 = window.training.session.delivered, dict(cmp.snaps)
    t0 = time.perf_counter()
    probe.start()
    run_loop(seconds)
    probe.stop()
    wall = time.perf_counter() - t0
    delivered = window.training.session.delivered - d0
    s0, s1 = snaps0[0], cmp.snaps[0]
    speed = (s1.samples_per_s * s1.elapsed - s0.samples_per_s * s0.elapsed) / max(s1.elapsed - s0.elapsed, 1e-9)
    cmp.view.stop_button.click()
    wait_until(lambda: cmp.state == "ended", 30)
    p50, p99, worst = probe.percentiles(50, 99, 100)
    print(f"{name:11s} variants {n}  latency p50 {p50:5.1f} ms  p99 {p99:5.1f} ms  max {worst:5.1f} ms  "
          f"variant snapshots {delivered / wall:5.1f}/s  trainer {speed:8.0f} samples/s per variant", flush=True)
    return p50, p99


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--cases", nargs="*", default=["xor", "digits_cnn"])
    args = ap.parse_args()
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, tempfile.mkdtemp())
    app = QApplication.instance() or QApplication([])
    from app.compare import CompareController
    from app.main_window import MainWindow
    from app.session import wait_until
    from app.training import TrainingController

    window = MainWindow(restore=False, features=(TrainingController, CompareController))
    show_views_and_compare(window)
    window.show()
    wait_until(lambda: window.engine.ready, 60)
    worst = 0.0
    for name in args.cases:
        worst = max(worst, run_case(window, name, args.variants, args.seconds)[1])
    window.training.shutdown()
    window.document.undo_stack.setClean()
    window.close()
    app.processEvents()
    print(f"p99_ms {worst:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
