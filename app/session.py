"""Runs engine.trainer in a QThread and hands the GUI the latest snapshot, never a backlog.

The worker overwrites a one-slot mailbox and posts at most one wake-up at a time, so a slow
view can never slow training and a fast trainer can never flood the event loop.
"""
from __future__ import annotations

import threading
import time
import traceback
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot


class _Worker(QObject):
    """Lives in the training thread; owns the Trainer."""

    done = Signal(object, str)  # (Result | None, error message)
    notice = Signal(str)

    def __init__(self, session: TrainingSession, job: dict):
        super().__init__()
        self.session = session
        self.job = job

    @Slot()
    def run(self) -> None:
        import torch

        from engine.trainer import Trainer

        torch.set_num_threads(self.job.get("threads", 1))  # small nets: ~2x faster with the GUI running
        s = self.session
        result, error = None, ""
        try:
            trainer = Trainer(self.job["spec"], self.job["data"], device=self.job.get("device"),
                              on_snapshot=s._post, probe=self.job.get("probe"), max_rate=s.max_rate,
                              model=self.job.get("model"))
            s._attach(trainer)
            try:
                result = trainer.run()
            except RuntimeError as exc:
                if trainer.device.type != "cuda" or not _is_cuda_error(exc):
                    raise
                # a CUDA failure (out of memory, lost device) must not end the session: go on on the CPU
                self.notice.emit(f"GPU error ({str(exc).splitlines()[0][:120]}) - continuing on the CPU")
                if hasattr(torch, "cuda"):
                    torch.cuda.empty_cache()
                trainer = Trainer(self.job["spec"], self.job["data"], device="cpu", on_snapshot=s._post,
                                  probe=self.job.get("probe"), max_rate=s.max_rate, model=trainer.model.cpu())
                s._attach(trainer)
                result = trainer.run()
        except Exception as exc:  # noqa: BLE001 - any failure becomes a message, never a dead thread
            error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        self.done.emit(result, error)
        # end the thread's event loop here, so the GUI can join it without processing events
        self.thread().quit()


def _is_cuda_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "cuda" in text or "out of memory" in text or type(exc).__name__ == "OutOfMemoryError"


class SessionBase(QObject):
    """What every session shares: the signals, and the one-slot mailbox between the thread
    that receives snapshots and the GUI thread. Subclasses decide where the trainer runs."""

    snapshot_ready = Signal(object)  # engine.trainer.Snapshot
    state_changed = Signal(str)  # idle | starting | running | paused | finished | stopped | diverged | error
    finished = Signal(object)  # engine.trainer.Result or None
    failed = Signal(str)
    notice = Signal(str)
    # emitted from the receiving thread; the receivers are this object's slots in the GUI thread,
    # so delivery is queued
    _wake = Signal()
    _done = Signal(object, str)  # (Result | None, error message)

    def __init__(self, parent: QObject | None = None, max_rate: float = 30.0):
        super().__init__(parent)
        self.max_rate = max_rate
        self.state = "idle"
        self.trainer = None
        self.last_snapshot = None
        self.delivered = 0
        self._lock = threading.Lock()
        self._latest = None
        self._posted = False
        self._wake.connect(self._deliver)
        self._done.connect(self._on_done)

    def _reset_mailbox(self) -> None:
        self.last_snapshot = None
        self._latest = None
        self._posted = False

    def _post(self, snap) -> None:
        """Any thread: overwrite the mailbox and wake the GUI once."""
        with self._lock:
            self._latest = snap
            if self._posted:
                return
            self._posted = True
        self._wake.emit()

    @Slot()
    def _deliver(self) -> None:
        with self._lock:
            snap, self._latest = self._latest, None
            self._posted = False
        if snap is None:
            return
        self.last_snapshot = snap
        self.delivered += 1
        if snap.state != self.state:
            self._set_state(snap.state)
        self.snapshot_ready.emit(snap)

    @Slot(object, str)
    def _on_done(self, result, error: str) -> None:
        self._deliver()  # the final snapshot, if not yet delivered
        self._end_run()
        if error:
            self._set_state("error")
            self.failed.emit(error)
        elif result is not None and self.state not in ("finished", "stopped", "diverged"):
            self._set_state("finished")
        self.finished.emit(result)

    def _end_run(self) -> None:
        """GUI thread, when a run has ended: release what the run held."""

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)


class TrainingSession(SessionBase):
    """One training run at a time in a QThread. Signals arrive in the GUI thread."""

    def __init__(self, parent: QObject | None = None, max_rate: float = 30.0):
        super().__init__(parent, max_rate)
        self._thread: QThread | None = None
        self._worker: _Worker | None = None
        self._pending_control: list[tuple[str, dict]] = []

    # ---- commands (GUI thread) ----------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, spec, data, *, device: str | None = None, probe=None, model=None, threads: int = 1,
              paused: bool = False) -> None:
        """Start training ``spec`` on ``data`` (engine.datasets.Data) in a new worker thread.

        ``paused=True`` starts paused and trains exactly one batch (Step from idle)."""
        if self.running:
            raise RuntimeError("a run is already in progress - stop it first")
        self.trainer = None
        self._reset_mailbox()
        self._pending_control = [("pause", {}), ("step_once", {})] if paused else []
        job = {"spec": spec, "data": data, "device": device, "probe": probe, "model": model, "threads": threads}
        self._thread = QThread()
        self._thread.setObjectName("training")
        self._worker = _Worker(self, job)
        self._worker.moveToThread(self._thread)
        # receivers are this object's slots, which live in the GUI thread -> queued delivery
        self._worker.done.connect(self._done)
        self._worker.notice.connect(self.notice)
        self._thread.started.connect(self._worker.run)
        self._set_state("starting")
        self._thread.start()

    def pause(self) -> None:
        self._control("pause")

    def resume(self) -> None:
        self._control("resume")

    def step(self) -> None:
        self._control("step_once")

    def stop(self) -> None:
        self._control("stop")

    def set_hyper(self, **values: Any) -> None:
        self._control("set_hyper", **values)

    def _control(self, name: str, **kw) -> None:
        with self._lock:
            trainer = self.trainer
            if trainer is None:
                self._pending_control.append((name, kw))
                return
        getattr(trainer, name)(**kw)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Stop and join the worker (used when the window closes). True if it ended."""
        if self._thread is None:
            return True
        self.stop()
        thread = self._thread
        ok = thread.wait(timeout_ms)
        # deliver the final signals now so nothing arrives after the window is gone
        from PySide6.QtCore import QCoreApplication

        QCoreApplication.processEvents()
        return ok

    # ---- worker side ----------------------------------------------------------------------
    def _attach(self, trainer) -> None:
        with self._lock:
            self.trainer = trainer
            pending, self._pending_control = self._pending_control, []
        for name, kw in pending:
            getattr(trainer, name)(**kw)

    def _end_run(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.quit()
            thread.wait()
        self._worker = None


def wait_until(predicate, timeout: float = 10.0) -> bool:
    """Spin the Qt event loop until predicate() or timeout (for scripts and benchmarks)."""
    from PySide6.QtCore import QCoreApplication

    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        QCoreApplication.processEvents()
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()
