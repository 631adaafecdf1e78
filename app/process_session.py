"""TrainingSession's API, with the trainer in a separate process (engine.worker).

Why: with the trainer in a GUI thread, every repaint of the Python-drawn views took the GIL
from it (bench/ui_latency.py measured 15-45 % of its bare speed and a busy event loop). A
process keeps its own interpreter. It is started once (torch imported there too) and reused.

A reader thread receives the worker's events, keeps only the latest snapshot in a one-slot
mailbox and wakes the GUI once, exactly as the threaded session does.
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import sys
import threading

from PySide6.QtCore import QObject

from app.session import SessionBase
from engine import spec as S


@contextlib.contextmanager
def _main_module_hidden():
    """Spawn would re-run the parent's ``__main__`` in the child (a script without a
    ``__name__`` guard would start a second app there). The worker needs only engine.worker,
    so hide the main module's path while the process starts."""
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if hasattr(main, k)}
    try:
        for k in saved:
            setattr(main, k, None) if k == "__spec__" else delattr(main, k)
        yield
    finally:
        for k, v in saved.items():
            setattr(main, k, v)


class RemoteTrainer:
    """What the GUI may ask of the trainer in the other process."""

    def __init__(self, session: ProcessTrainingSession, spec: S.Spec, data):
        self._session = session
        self.spec = spec
        self.data = data
        self.device = None
        self.step = 0
        self.epoch = 0
        self._samples = 0
        self._model = None
        self._model_step = -1

    @property
    def model(self):
        """A local copy of the model with the worker's current weights (fetched when stale)."""
        return self._session.fetch_model()

    def _update(self, snap) -> None:
        self.step, self.epoch = snap.step, snap.epoch
        self._samples = int(round(snap.samples_per_s * snap.elapsed))


class ProcessTrainingSession(SessionBase):
    """One training run at a time in the worker process. Signals arrive in the GUI thread."""

    def __init__(self, parent: QObject | None = None, max_rate: float = 30.0):
        super().__init__(parent, max_rate)
        self.trainer: RemoteTrainer | None = None
        self.device_label = ""
        self._proc = None
        self._jobs = self._control = self._events = None
        self._reader: threading.Thread | None = None
        self._running = False
        self._ready = threading.Event()
        self._weights = None
        self._weights_event = threading.Event()
        self._final_state = None
        self._job_id = 0

    # ---- the worker process -------------------------------------------------------------
    def warm_up(self) -> None:
        """Start the worker process now (it imports torch), so the first Train is quick."""
        if self._proc is not None and self._proc.is_alive():
            return
        from engine import worker

        ctx = mp.get_context("spawn")  # never fork a process that runs Qt threads
        self._jobs, jobs_child = ctx.Pipe()
        self._control, control_child = ctx.Pipe()
        events_child, self._events = ctx.Pipe()
        self._ready.clear()
        self._proc = ctx.Process(target=worker.serve, args=(jobs_child, control_child, events_child),
                                 name="np-trainer", daemon=True)
        with _main_module_hidden():
            self._proc.start()
        for c in (jobs_child, control_child, events_child):
            c.close()
        self._reader = threading.Thread(target=self._read, name="np-trainer-events", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Reader thread: receive worker events until the pipe closes."""
        events = self._events
        while True:
            try:
                msg = events.recv()
            except (EOFError, OSError):
                if self._running:
                    self._done.emit(None, "the training process ended unexpectedly")
                return
            kind = msg[0]
            if kind == "ready":
                self.device_label = msg[1]
                self._ready.set()
            elif kind == "snapshot":
                if self.trainer is not None:
                    self.trainer._update(msg[1])
                self._post(msg[1])
            elif kind == "weights":
                self._weights = (msg[1], msg[2])
                self._weights_event.set()
            elif kind == "done":
                self._final_state = msg[2]
                self._done.emit(msg[1], "")
            elif kind == "notice":
                self.notice.emit(msg[1])
            elif kind == "failed":
                self._done.emit(None, msg[1])

    # ---- commands (GUI thread) ----------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    def start(self, spec, data, *, device: str | None = None, probe=None, model=None, threads: int = 1,
              paused: bool = False) -> None:
        """Start training ``spec`` in the worker; ``probe`` is a Prober whose options are mirrored there."""
        if self._running:
            raise RuntimeError("a run is already in progress - stop it first")
        self.warm_up()
        self.trainer = RemoteTrainer(self, spec.copy(), data)
        self._reset_mailbox()
        self._final_state = None
        self._sent_options = dict(probe.options) if probe is not None else {}
        state = None
        if model is not None:
            from engine.worker import state_to_numpy

            state = state_to_numpy(model)
        self._running = True
        self._job_id += 1
        self._set_state("starting")
        self._jobs.send({"id": self._job_id, "spec": S.dumps(spec), "device": device, "options": self._sent_options,
                         "paused": paused, "threads": threads, "max_rate": self.max_rate, "state_dict": state})

    def pause(self) -> None:
        self._send("pause")

    def resume(self) -> None:
        self._send("resume")

    def step(self) -> None:
        self._send("step_once")

    def stop(self) -> None:
        self._send("stop")

    def set_hyper(self, **values) -> None:
        self._send("set_hyper", **values)

    def set_options(self, options: dict) -> None:
        """Mirror the prober's options to the worker (the GUI replaced them)."""
        if self._running and options != self._sent_options:
            self._sent_options = dict(options)
            self._control.send(("options", dict(options), self._job_id))

    def _send(self, name: str, **kw) -> None:
        if self._running:
            self._control.send((name, kw, self._job_id))

    def fetch_model(self, timeout: float = 5.0):
        """The current weights in a local model (blocks up to ``timeout`` while a run is active)."""
        tr = self.trainer
        if tr is None:
            return None
        if self._running:
            self._weights_event.clear()
            self._control.send(("weights", {}, self._job_id))
            if not self._weights_event.wait(timeout):
                return tr._model
            sd, step = self._weights
        elif self._final_state is not None:
            sd, step = self._final_state, tr.step
        else:
            return tr._model
        if tr._model is None or tr._model_step != step or self._running:
            from engine.build import build
            from engine.worker import numpy_to_state

            if tr._model is None:
                tr._model = build(tr.spec, tr.data.info)
            tr._model.load_state_dict(numpy_to_state(sd))
            tr._model.eval()
            tr._model_step = step
        return tr._model

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Stop the run (the worker process stays for the next one). True if it ended."""
        if not self._running:
            return True
        self.stop()
        import time

        from PySide6.QtCore import QCoreApplication

        end = time.perf_counter() + timeout_ms / 1000
        while self._running and time.perf_counter() < end:
            QCoreApplication.processEvents()
            time.sleep(0.005)
        return not self._running

    def close(self) -> None:
        """End the worker process (the window is closing)."""
        self.shutdown(2000)
        if self._proc is not None:
            try:
                self._jobs.send(None)
                self._control.send(("quit", {}, None))
            except (OSError, BrokenPipeError):
                pass
            self._proc.join(2.0)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(1.0)
            self._proc = None

    def _end_run(self) -> None:
        self._running = False
