"""Reliability you can quote: random control cycles, a soak, and a killed worker, in the real window (offscreen).

    python bench/reliability.py [--cycles 1000] [--soak-minutes 10] [--seed 0]

1. Random control cycles across the examples: train, pause, step, stop, reset, open another
   design, change the learning rate, close and reopen the window. A hang is a command whose
   expected state did not come within 10 s (120 s while the run is still "starting", reading its
   data: a fresh trainer process imports sklearn for iris and digits - a "slow start", printed);
   an error is an exception or a failure message; a slow close is a window close over 1 s;
   leftover workers are trainer processes still alive after their window closed.
2. A soak: training with every view open for M minutes, sampling the RSS of the GUI and the
   worker every 30 s; prints the growth per hour (least squares over the samples after the first).
3. The worker killed with SIGKILL mid-run: the window must say so, keep the design and the
   curves so far, and the next Train must start a fresh worker.

Each line ends in a figure; the last line sums up:
``cycles N hangs H errors E slow_closes S rss_growth_mb_per_h G``.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
import traceback

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from widgets import pyside_fix  # noqa: E402

pyside_fix.install()

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

EXAMPLES = ("xor", "spiral", "iris", "digits_cnn", "residual_mlp", "shapes_cnn")
ENDED = ("finished", "stopped", "diverged", "error")
HANG_S = 10.0
START_S = 120.0  # a new trainer process (torch) or a run's first data loading (sklearn): start-up, not a hang


def rss_mb(pid: int | None) -> float:
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def alive(pid: int | None) -> bool:
    if not pid or not os.path.exists(f"/proc/{pid}"):
        return False
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split()[2] != "Z"


class Bench:
    def __init__(self, seed: int):
        from app.session import wait_until

        self.wait_until = wait_until
        self.rng = random.Random(seed)
        self.hangs = self.errors = self.slow_closes = self.leftover = self.slow_starts = 0
        self.win = None
        self.closed_pids: list[int] = []
        sys.excepthook = self._excepthook

    def _excepthook(self, kind, value, tb) -> None:
        self.errors += 1
        traceback.print_exception(kind, value, tb)

    # ---- the window ------------------------------------------------------------------------
    def open_window(self, example: str = "xor"):
        from app.main_window import MainWindow
        from app.training import TrainingController
        from engine import spec as S

        spec = S.load(os.path.join(ROOT, "assets", "examples", f"{example}.json"))
        spec.training.epochs = 100000
        spec.training.device = "cpu"
        self.win = MainWindow(spec, restore=False, features=(TrainingController,))
        self.win.ask_save_changes = lambda: "discard"
        self.win.training.ask_keep_weights = lambda: "restart"
        self.win.show()
        # the trainer process imports torch first (seconds on a busy machine): that is start-up, not a hang
        if not self.wait_until(lambda: self.win.engine.ready and self.win.training.session.ready, START_S):
            self.hangs += 1
            print("hang: the trainer process did not start within 120 s", flush=True)
        return self.win

    def close_window(self) -> None:
        from app.gui import destroy_window

        win, self.win = self.win, None
        pid = win.training.session.pid
        t0 = time.perf_counter()
        win.close()
        took = time.perf_counter() - t0
        if took > 1.0:
            self.slow_closes += 1
            print(f"slow close {took:.2f} s", flush=True)
        destroy_window(win)  # deleteLater alone never runs here (no event loop): every closed window stayed alive
        if pid:
            self.closed_pids.append(pid)

    @property
    def ctl(self):
        return self.win.training

    def expect(self, what: str, predicate) -> None:
        t0 = time.perf_counter()
        if self.wait_until(predicate, HANG_S):
            return
        # a run still "starting" is reading its data: the first iris or digits run of a fresh trainer
        # process imports sklearn and scipy first (seconds; over 10 s on a busy machine) - start-up, like
        # the torch import in open_window, not a hang
        if self.ctl.state == "starting" and self.wait_until(predicate, START_S - HANG_S):
            self.slow_starts += 1
            print(f"slow start: {what} took {time.perf_counter() - t0:.1f} s (the run was reading its data)", flush=True)
            return
        self.hangs += 1
        print(f"hang: {what} (state {self.ctl.state})", flush=True)

    def note_failures(self) -> None:
        if "failed" in self.ctl.last_message.lower():
            self.errors += 1
            print(f"error: {self.ctl.last_message}", flush=True)
            self.ctl.last_message = ""

    # ---- 1. random cycles -----------------------------------------------------------------
    def cycle(self) -> None:
        c = self.ctl
        # a reopen starts a new trainer process (torch import, seconds): rarer, so the defaults fit in 20 minutes
        action = self.rng.choices(["train", "pause", "step", "stop", "reset", "open", "lr", "reopen"],
                                  weights=[3, 2, 2, 2, 1, 2, 2, 1])[0]
        if action == "train":
            c.train()
            self.expect("train -> running", lambda: c.state == "running")
        elif action == "pause":
            if c.state == "running":
                c.pause()
                self.expect("pause -> paused", lambda: c.state == "paused")
        elif action == "step":
            before = c.model.run.step if c.model.run is not None and c.model.active else None
            c.step()
            if before is None:
                self.expect("step from idle -> paused at step 1", lambda: c.state == "paused" and c.model.run.step >= 1)
            elif c.state == "paused":
                self.expect("step -> one more step", lambda: c.model.run.step >= before + 1)
        elif action == "stop":
            if c.model.active:
                c.stop()
                self.expect("stop -> ended", lambda: c.state in ENDED or c.state == "idle")
        elif action == "reset":
            c.reset()
            self.expect("reset -> idle", lambda: c.state == "idle")
        elif action == "open":
            from engine import spec as S

            spec = S.load(os.path.join(ROOT, "assets", "examples", f"{self.rng.choice(EXAMPLES)}.json"))
            spec.training.epochs = 100000
            spec.training.device = "cpu"
            self.win.document.reset(spec)
        elif action == "lr":
            self.win.document.set_training("lr", self.rng.choice([0.001, 0.01, 0.05, 0.1]))
        elif action == "reopen":
            example = self.rng.choice(EXAMPLES)
            self.close_window()
            self.open_window(example)
        QApplication.processEvents()
        self.note_failures()

    def run_cycles(self, n: int) -> None:
        t0 = time.perf_counter()
        self.open_window()
        for i in range(n):
            self.cycle()
            if (i + 1) % 100 == 0:
                print(f"  {i + 1} cycles, {time.perf_counter() - t0:.0f} s, hangs {self.hangs} errors {self.errors}",
                      flush=True)
        self.close_window()
        self.wait_until(lambda: not any(alive(p) for p in self.closed_pids), 3)
        self.leftover = sum(alive(p) for p in self.closed_pids)
        print(f"cycles {n} in {time.perf_counter() - t0:.0f} s: hangs {self.hangs} errors {self.errors} "
              f"slow_closes {self.slow_closes} leftover_workers {self.leftover} slow_starts {self.slow_starts}; "
              f"gui rss {rss_mb(os.getpid()):.0f} MB", flush=True)

    # ---- 2. soak --------------------------------------------------------------------------
    def soak(self, minutes: float, interval: float = 30.0) -> float:
        win = self.open_window("digits_cnn")
        for name in ("curves_dock", "filters_dock", "feature_maps_dock", "saliency_dock", "evaluation_dock"):
            dock = win.docks[name]
            win.removeDockWidget(dock)
            win.addDockWidget(Qt.BottomDockWidgetArea, dock)
            dock.show()
        win.resize(1800, 1100)
        self.ctl.train()
        self.expect("soak train", lambda: self.ctl.state == "running")
        samples: list[tuple[float, float]] = []  # (seconds, RSS of both processes less the checkpoint store)
        raw: list[float] = []
        store_peak = 0.0  # the timeline's checkpoints (engine.timeline): a stated, bounded store, not a leak
        t0 = time.perf_counter()
        end = t0 + minutes * 60
        while time.perf_counter() < end:
            self.wait_until(lambda: False, min(interval, max(0.0, end - time.perf_counter())))
            total = rss_mb(os.getpid()) + rss_mb(self.ctl.session.pid)
            snap = self.ctl.model.snapshot
            store = (snap.timeline or {}).get("bytes", 0) / 2 ** 20 if snap is not None else 0.0
            store_peak = max(store_peak, store)  # the heap keeps its high-water mark after a thinning
            raw.append(total)
            samples.append((time.perf_counter() - t0, total - store_peak))
            print(f"  soak {samples[-1][0]:6.0f} s  gui {rss_mb(os.getpid()):6.0f} MB  worker "
                  f"{rss_mb(self.ctl.session.pid):6.0f} MB (checkpoints {store:5.1f} MB)  "
                  f"step {self.ctl.model.run.step}", flush=True)
            if self.ctl.state != "running":
                self.errors += 1
                print(f"error: the soak run stopped ({self.ctl.state}: {self.ctl.last_message})", flush=True)
                break
        self.ctl.stop()
        self.close_window()
        pts = samples[1:]  # the first sample still holds start-up growth
        if len(pts) < 2:
            return 0.0
        ts = [t for t, _ in pts]
        ms = [m for _, m in pts]
        mt, mm = sum(ts) / len(ts), sum(ms) / len(ms)
        slope = sum((t - mt) * (m - mm) for t, m in pts) / max(sum((t - mt) ** 2 for t in ts), 1e-9)
        growth = slope * 3600
        print(f"soak {minutes:g} min: rss {raw[1]:.0f} -> {raw[-1]:.0f} MB (up to {store_peak:.0f} MB of it the "
              f"timeline's checkpoints, a store engine.timeline bounds); growth of the rest {growth:.1f} MB/h", flush=True)
        return growth

    # ---- 3. killed worker -------------------------------------------------------------------
    def kill_worker(self) -> bool:
        win = self.open_window("xor")
        c = self.ctl
        c.train()
        self.expect("train before kill", lambda: c.state == "running" and c.model.run.step > 50)
        epochs = len(win.views.curves.history()["epoch"])
        layers = len(win.document.spec.layers)
        os.kill(c.session.pid, signal.SIGKILL)
        told = self.wait_until(lambda: "ended unexpectedly" in c.last_message, HANG_S)
        kept = len(win.document.spec.layers) == layers and len(win.views.curves.history()["epoch"]) >= epochs
        c.last_message = ""
        c.train()
        again = self.wait_until(lambda: c.state == "running" and c.model.run.step > 10, 60)
        c.stop()
        self.close_window()
        ok = told and kept and again
        if not ok:
            self.errors += 1
        print(f"killed worker: message {'yes' if told else 'NO'}, design and curves kept {'yes' if kept else 'NO'}, "
              f"Train works again {'yes' if again else 'NO'}: {'ok' if ok else 'FAILED'} 1", flush=True)
        return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--soak-minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, tempfile.mkdtemp())
    app = QApplication.instance() or QApplication([])  # noqa: F841 - keeps the application alive
    bench = Bench(args.seed)
    bench.kill_worker()
    bench.run_cycles(args.cycles)
    growth = bench.soak(args.soak_minutes) if args.soak_minutes > 0 else 0.0
    print(f"cycles {args.cycles} hangs {bench.hangs} errors {bench.errors} slow_closes {bench.slow_closes} "
          f"leftover_workers {bench.leftover} rss_growth_mb_per_h {growth:.1f}", flush=True)
    return 0 if not (bench.hangs or bench.errors or bench.slow_closes or bench.leftover) else 1


if __name__ == "__main__":
    sys.exit(main())
