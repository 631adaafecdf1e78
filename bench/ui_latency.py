"""Event-loop latency and training speed while training in the real main window (offscreen).

For xor and digits_cnn, with every view dock visible side by side, it trains for a few seconds
while a 10 ms QTimer measures how late the event loop serves it (p50 / p99), and in turns
(``--rounds``, the run paused meanwhile) times a bare torch loop (same model, data, batch size,
optimiser, one thread, with the validation pass per epoch that the curves need - the figure
without it is printed too) in the same process. The ratio is the median of the rounds' ratios.

    python bench/ui_latency.py [--seconds 8] [--rounds 4]

Each case prints a line; the last line is ``p99_ms X ratio Y`` for the worst case.
Targets: p99 < 30 ms, ratio >= 0.95.
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

import numpy as np  # noqa: E402

from widgets import pyside_fix  # noqa: E402

pyside_fix.install()

from PySide6.QtCore import QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

CASES = ("xor", "digits_cnn")
INTERVAL_MS = 10


class LatencyProbe:
    """How late the event loop serves a precise timer due every INTERVAL_MS: one lateness (ms) per tick."""

    def __init__(self):
        self.late: list[float] = []
        self._last: float | None = None
        self.timer = QTimer()
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.setInterval(INTERVAL_MS)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.late.append(max(0.0, (now - self._last) * 1000 - INTERVAL_MS))
        self._last = now

    def start(self) -> None:
        self._last = None  # the time since the last stop is no lateness
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def percentiles(self, *qs: float) -> list[float]:
        return [float(np.percentile(self.late, q)) if self.late else float("nan") for q in qs]


def bare_loop(spec, data):
    """A plain torch training loop on one thread (the GUI worker uses one), as a person writes it:
    shuffle, slice, forward, loss, zero_grad, backward, step, and at each epoch's end the
    validation pass the curves show (eval mode, no_grad), as in bench/engine_overhead.py.
    Returns ``run(seconds, validate) -> samples/s``; the model and optimiser persist across calls."""
    import torch

    from engine.build import build
    from engine.trainer import loss_fn

    torch.set_num_threads(1)
    model = build(spec, data.info)
    t = spec.training
    opt = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}[t.optimizer](model.parameters(), lr=t.lr)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    xv, yv = torch.as_tensor(data.x_val), torch.as_tensor(data.y_val)
    g = torch.Generator().manual_seed(t.seed)
    bs = min(t.batch_size, len(x))

    def run(seconds: float, validate: bool = True) -> float:
        samples, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model.train()
            perm = torch.randperm(len(x), generator=g)
            for b in range(0, len(x), bs):
                idx = perm[b:b + bs]
                loss = loss_fn(model(x[idx]), y[idx], t.loss)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                samples += len(idx)
            if validate and len(xv):
                model.eval()
                with torch.no_grad():
                    loss_fn(model(xv), yv, t.loss).item()
        return samples / (time.perf_counter() - start)

    return run


def run_loop(seconds: float) -> None:
    """Run the real Qt event loop (as app.exec() does) for a while."""
    from PySide6.QtCore import QEventLoop

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def show_every_dock(window) -> None:
    """Untabify the view docks so each one is on screen and its part is computed."""
    names = ["curves_dock", "boundary_dock", "neuron_dock", "filters_dock", "feature_maps_dock", "saliency_dock",
             "evaluation_dock", "gradients_dock", "distributions_dock", "roc_dock", "embedding_dock"]
    docks = [window.docks[n] for n in names if n in window.docks]
    for d in docks:
        window.removeDockWidget(d)
    for i, d in enumerate(docks):
        window.addDockWidget(Qt.BottomDockWidgetArea if i < 4 else Qt.RightDockWidgetArea, d)
        d.show()
    window.resize(1800, 1100)


def run_case(window, ctl, name: str, seconds: float, rounds: int) -> tuple[float, float, float, float]:
    """Trains ``name`` in the window and a bare loop in turns (``rounds`` of each, the run paused while
    the bare loop runs), so that a machine whose speed drifts - a shared VM - hits both alike; the
    ratio is the median of the rounds' ratios."""
    from app.session import wait_until
    from engine import datasets
    from engine import spec as S

    spec = S.load(os.path.join(ROOT, "assets", "examples", f"{name}.json"))
    spec.training.epochs = 100000  # we stop it ourselves
    window.document.reset(spec)
    QApplication.processEvents()
    probe = LatencyProbe()
    bare = bare_loop(spec, datasets.load(spec.dataset))  # built first: importing torch here is no GUI work
    bare(0.3)  # warm-up
    ctl.train()
    wait_until(lambda: ctl.state == "running", 60)
    run_loop(1.0)  # warm-up: first snapshots, views built

    def samples():  # the trainer's own count, from its latest snapshot: (samples, its clock)
        snap = ctl.model.snapshot
        return snap.samples_per_s * snap.elapsed, snap.elapsed

    ratios, speeds, bares, bares_nv, delivered = [], [], [], [], 0
    part = seconds / rounds
    for _ in range(rounds):
        (s0, e0), d0 = samples(), ctl.session.delivered
        probe.start()
        run_loop(part)
        probe.stop()
        s1, e1 = samples()
        speeds.append((s1 - s0) / max(e1 - e0, 1e-9))
        delivered += ctl.session.delivered - d0
        ctl.pause()
        wait_until(lambda: ctl.state == "paused", 10)
        bares.append(bare(part * 0.6))
        bares_nv.append(bare(part * 0.3, validate=False))
        ratios.append(speeds[-1] / bares[-1])
        ctl.train()  # resumes
        wait_until(lambda: ctl.state == "running", 10)
        run_loop(0.3)  # a snapshot of the resumed run
    ctl.stop()
    wait_until(lambda: not ctl.model.active, 10)
    p50, p99 = probe.percentiles(50, 99)
    speed, bare_speed, ratio = (float(np.median(v)) for v in (speeds, bares, ratios))
    print(f"{name:11s} latency p50 {p50:5.1f} ms  p99 {p99:5.1f} ms  trainer {speed:9.0f} samples/s  "
          f"bare {bare_speed:9.0f} samples/s (without validation {np.median(bares_nv):.0f})  snapshots {delivered}  "
          f"ratio {ratio:.2f} (rounds {' '.join(f'{r:.2f}' for r in ratios)})", flush=True)
    return p50, p99, ratio, 1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    args = ap.parse_args()
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, tempfile.mkdtemp())
    app = QApplication.instance() or QApplication([])
    from app.main_window import MainWindow
    from app.session import wait_until
    from app.training import TrainingController

    window = MainWindow(restore=False, features=(TrainingController,))
    ctl = window.training
    show_every_dock(window)
    window.show()
    wait_until(lambda: window.engine.ready, 60)
    worst = (0.0, 0.0, 1.0, 1.0)
    for name in args.cases:
        res = run_case(window, ctl, name, args.seconds, args.rounds)
        if res[1] > worst[1] or res[2] / res[3] < worst[2] / worst[3]:
            worst = (res[0], max(res[1], worst[1]), *min((res[2], res[3]), (worst[2], worst[3]), key=lambda r: r[0] / r[1]))
    ctl.shutdown()
    window.document.undo_stack.setClean()
    window.close()
    app.processEvents()
    print(f"p99_ms {worst[1]:.1f} ratio {worst[2] / worst[3]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
