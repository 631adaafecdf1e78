"""The GUI's end of the run channel: one session class, whether the worker is a process or a thread.

The worker (engine.worker.serve) runs in a process of its own by default, so painting never
takes the GIL from training; ``in_thread=True`` (or NP_TRAIN_IN_THREAD=1) runs the same
function over the same kind of pipe in a thread, for debugging. Either way a reader thread
receives the worker's events into one queue, in the order they came, and wakes the GUI once.
A run's snapshot that has not been delivered yet is overwritten in its place by the next one
(a one-slot mailbox per run), so a slow view never slows training and a fast trainer never
floods the event loop; nothing else is dropped or reordered. All signals arrive in the GUI thread.
"""
from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import sys
import threading
import time
import weakref

from PySide6.QtCore import QObject, Signal, Slot

from engine import protocol as P

CLOSE_GRACE_S = 0.3  # a worker that has not ended this long after Quit is terminated


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


def _read_events(session_ref, conn) -> None:
    """Reader thread: pass every event on until the pipe closes.

    It holds the session only weakly: a QObject must be destroyed in the GUI thread. A session
    freed here (its last reference dropped when this thread ended) deadlocked the test suite:
    Qt's destructor took a pooled lock, then waited for the GIL held by the GUI thread, which
    was destroying a widget and waiting for that same lock."""
    while True:
        try:
            event = conn.recv()
        except (EOFError, OSError):
            break
        except Exception as exc:  # noqa: BLE001 - an event that cannot be read must not kill the reader
            event = P.Notice(0, f"could not read a message from the worker: {exc}")
        session = session_ref()
        if session is None:
            return
        session._post(event)
        del session
    session = session_ref()
    if session is not None:
        session._post(("closed", conn))


def _slot_key(event):
    """The mailbox a snapshot goes to: its run, or (comparison, variant) for a variant's."""
    if isinstance(event, P.VariantSnapshot):
        return (event.run_id, event.index)
    return getattr(event, "run_id", None)


def _serve_in_thread(conn) -> None:
    from engine.worker import serve

    serve(conn)


class RunSession(QObject):
    """Starts the worker, sends it commands, and turns its events into Qt signals."""

    worker_ready = Signal(str, tuple)  # device label, available devices
    run_started = Signal(object)  # engine.protocol.RunStarted
    snapshot_ready = Signal(int, object)  # run id, the latest engine.protocol.Snapshot
    run_ended = Signal(object)  # engine.protocol.RunEnded
    run_failed = Signal(int, str)  # run id, message
    notice = Signal(int, str)
    progress = Signal(int, str, int, int)  # run id, what, done, total
    exported = Signal(object)  # engine.protocol.Exported
    weights_ready = Signal(object)  # engine.protocol.Weights
    run_state_ready = Signal(object)  # engine.protocol.RunState (app.runfiles)
    analysis_event = Signal(object)  # engine.protocol.AnalysisProgress / AnalysisReady
    kernel_lab_ready = Signal(object)  # engine.protocol.KernelLabResult
    decoded = Signal(object)  # engine.protocol.Decoded
    checkpoint_ready = Signal(object)  # engine.protocol.Checkpoint (the training timeline, app.timeline)
    # comparisons (app.compare): ComparisonStarted / ComparisonEnded / ComparisonFailed / VariantWeights
    comparison_event = Signal(object)
    variant_snapshot = Signal(int, int, object)  # comparison (run) id, variant index, its latest Snapshot
    # emitted by the reader thread; the receiver is this object's slot in the GUI thread, so the
    # call is queued
    _wake = Signal()

    def __init__(self, parent: QObject | None = None, in_thread: bool | None = None):
        super().__init__(parent)
        self.in_thread = bool(os.environ.get("NP_TRAIN_IN_THREAD")) if in_thread is None else in_thread
        self.device_label = ""
        self.devices: tuple[str, ...] = ()
        self.ready = False
        self.delivered = 0  # snapshots handed to the GUI (benchmarks read it)
        self.open: set[int] = set()  # runs started and not closed: their snapshots are delivered
        self.training: set[int] = set()  # runs started and not yet ended or failed
        self.comparing: set[int] = set()  # comparisons started and not yet ended or failed
        self._ids = itertools.count(1)
        self._conn = None
        self._proc = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._queue: list[list] = []  # one-item cells, in arrival order
        # run id (or (comparison id, variant index)) -> the cell of its snapshot not yet delivered
        self._slots: dict[object, list] = {}
        self._extras: dict[object, dict] = {}  # same keys -> the extras of its last snapshot received (reader thread)
        self._posted = False
        self._wake.connect(self._deliver)

    # ---- the worker -------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        if self.in_thread:
            return self._thread is not None and self._thread.is_alive()
        return self._proc is not None and self._proc.is_alive()

    @property
    def pid(self) -> int | None:
        return None if self.in_thread or self._proc is None else self._proc.pid

    def start_worker(self) -> None:
        """Start the worker now (it imports torch), so the first Train is quick. Idempotent."""
        if self.alive:
            return
        self.ready = False
        if self.in_thread:
            self._conn, child = mp.Pipe()
            self._thread = threading.Thread(target=_serve_in_thread, args=(child,), name="np-worker", daemon=True)
            self._thread.start()
        else:
            from engine import worker

            ctx = mp.get_context("spawn")  # never fork a process that runs Qt threads
            self._conn, child = ctx.Pipe()
            self._proc = ctx.Process(target=worker.serve_process, args=(child,), name="np-worker", daemon=True)
            with _main_module_hidden():
                self._proc.start()
            child.close()
        threading.Thread(target=_read_events, args=(weakref.ref(self), self._conn), name="np-worker-events",
                         daemon=True).start()

    def _post(self, event) -> None:
        """Reader thread: queue the event (a snapshot replaces its run's undelivered one) and wake the GUI once."""
        run_id = getattr(event, "run_id", None)
        key = _slot_key(event)
        with self._lock:
            # in the order sent, before snapshots are coalesced: a left-out array is the previous one
            if isinstance(event, (P.SnapshotReady, P.VariantSnapshot)):
                self._extras[key] = P.merge_unchanged(event.snapshot, self._extras.get(key)).extras
            elif isinstance(event, P.RunEnded):
                self._extras[run_id] = event.snapshot.extras if event.snapshot is not None else {}
            if isinstance(event, (P.SnapshotReady, P.VariantSnapshot)):
                cell = self._slots.get(key)
                if cell is not None:
                    cell[0] = event
                    return
                self._slots[key] = cell = [event]
                self._queue.append(cell)
            else:
                # a later snapshot must not overtake this event: it gets a cell after it
                if run_id is None:
                    self._slots.clear()
                else:
                    for k in [k for k in self._slots if k == run_id or isinstance(k, tuple) and k[0] == run_id]:
                        del self._slots[k]
                self._queue.append([event])
            if self._posted:
                return
            self._posted = True
        with contextlib.suppress(RuntimeError):  # the session was deleted meanwhile
            self._wake.emit()

    # ---- commands (GUI thread) ----------------------------------------------------------------
    def start_run(self, spec_json: str, *, device: str | None = None, paused: bool = False,
                  view_options: dict | None = None, initial_state: dict | None = None, threads: int = 1,
                  max_rate: float = 10.0, keep_from: dict | None = None, keep_from_spec: str = "",
                  start_epoch: int = 0, run_state: dict | None = None) -> int:
        """Start a new run in the worker (starting the worker if needed); returns its id.

        ``keep_from``: the numpy weights of a run of the design ``keep_from_spec`` (JSON) - the new
        model keeps what fits (engine.weight_transfer), and RunStarted.kept says what. ``start_epoch``:
        a fork's epochs are numbered on from this one (app.timeline)."""
        self.start_worker()
        run_id = next(self._ids)
        self.open.add(run_id)
        self.training.add(run_id)
        self.send(P.StartRun(run_id, spec_json, device, paused, threads, max_rate, dict(view_options or {}),
                             initial_state, keep_from, keep_from_spec, run_state, start_epoch=int(start_epoch)))
        return run_id

    def start_comparison(self, spec_json: str, *, device: str | None = None, threads: int = 1,
                         max_rate: float = 10.0, view_options: dict | None = None) -> int:
        """Train every variant of the design's sweep (``spec.compare``) in the worker; returns the
        comparison's id (Control, CloseRun and StopVariant take it as their run id)."""
        self.start_worker()
        run_id = next(self._ids)
        self.open.add(run_id)
        self.comparing.add(run_id)
        self.send(P.StartComparison(run_id, spec_json, device, threads, max_rate, dict(view_options or {})))
        return run_id

    def send(self, cmd) -> bool:
        """Send a command; False if the worker is gone (its loss is reported by run_failed)."""
        if self._conn is None:
            return False
        try:
            self._conn.send(cmd)
            return True
        except (OSError, BrokenPipeError, ValueError):
            return False

    def control(self, run_id: int, action: str) -> None:
        self.send(P.Control(run_id, action))

    def close_run(self, run_id: int) -> None:
        self.open.discard(run_id)
        self.training.discard(run_id)
        self.comparing.discard(run_id)
        self.send(P.CloseRun(run_id))
        with self._lock:
            for k in [k for k in self._extras if k == run_id or isinstance(k, tuple) and k[0] == run_id]:
                del self._extras[k]

    def close(self) -> None:
        """End the worker at once (the window is closing): nothing a closing user wants is lost."""
        conn, self._conn = self._conn, None
        self.open.clear()
        self.training.clear()
        self.comparing.clear()
        if conn is not None:
            with contextlib.suppress(OSError, BrokenPipeError, ValueError):
                conn.send(P.Quit())
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.join(CLOSE_GRACE_S)
            if proc.is_alive():
                proc.kill()  # still importing torch, or deep in a batch: nothing to save
                proc.join(1.0)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()
        self._thread = None  # a thread worker ends at its next command read; it is a daemon

    # ---- events (GUI thread) -------------------------------------------------------------------
    @Slot()
    def _deliver(self) -> None:
        with self._lock:
            self._posted = False
        while True:  # one at a time: a handler that spins the event loop cannot reorder what is left
            with self._lock:
                if not self._queue:
                    return
                cell = self._queue.pop(0)
                key = _slot_key(cell[0])
                if self._slots.get(key) is cell:
                    del self._slots[key]
            self._on_event(cell[0])

    def _on_event(self, event) -> None:
        if isinstance(event, P.SnapshotReady):
            if event.run_id in self.open:
                self.delivered += 1
                self.snapshot_ready.emit(event.run_id, event.snapshot)
        elif isinstance(event, tuple) and event[0] == "closed":
            self._on_worker_lost(event[1])
        elif isinstance(event, P.WorkerReady):
            self.ready, self.device_label, self.devices = True, event.device, tuple(event.devices)
            self.worker_ready.emit(event.device, tuple(event.devices))
        elif isinstance(event, P.RunStarted):
            if event.run_id in self.open:
                self.run_started.emit(event)
        elif isinstance(event, P.RunEnded):
            if event.run_id in self.training:
                self.training.discard(event.run_id)
                self.run_ended.emit(event)
        elif isinstance(event, P.RunFailed):
            if event.run_id in self.training:
                self.training.discard(event.run_id)
                self.run_failed.emit(event.run_id, event.message)
        elif isinstance(event, P.Progress):
            if event.run_id in self.open:
                self.progress.emit(event.run_id, event.what, event.done, event.total)
        elif isinstance(event, P.Notice):
            self.notice.emit(event.run_id, event.message)
        elif isinstance(event, P.Exported):
            self.exported.emit(event)
        elif isinstance(event, P.KernelLabResult):
            self.kernel_lab_ready.emit(event)
        elif isinstance(event, P.Weights):
            self.weights_ready.emit(event)
        elif isinstance(event, P.RunState):
            self.run_state_ready.emit(event)
        elif isinstance(event, (P.AnalysisProgress, P.AnalysisReady)):
            if event.run_id in self.open:
                self.analysis_event.emit(event)
        elif isinstance(event, P.Decoded):
            self.decoded.emit(event)
        elif isinstance(event, P.Checkpoint):
            if event.run_id in self.open:
                self.checkpoint_ready.emit(event)
        elif isinstance(event, P.VariantSnapshot):
            if event.run_id in self.open:
                self.delivered += 1
                self.variant_snapshot.emit(event.run_id, event.index, event.snapshot)
        elif isinstance(event, (P.ComparisonStarted, P.ComparisonEnded, P.ComparisonFailed, P.VariantWeights)):
            if isinstance(event, (P.ComparisonEnded, P.ComparisonFailed)):
                self.comparing.discard(event.run_id)
            if event.run_id in self.open:
                self.comparison_event.emit(event)

    def _on_worker_lost(self, conn) -> None:
        if conn is not self._conn:
            return  # an old worker that we closed ourselves
        self._conn, self.ready = None, False
        if self._proc is not None:
            self._proc.join(0.1)
            self._proc = None
        comparisons, self.comparing = sorted(self.comparing), set()
        lost, self.training, self.open = sorted(self.training), set(), set()
        for run_id in comparisons:
            self.comparison_event.emit(P.ComparisonFailed(run_id, "the training process ended unexpectedly - "
                                                                  "press Train all to start the comparison again"))
        for run_id in lost:
            self.run_failed.emit(run_id, "the training process ended unexpectedly - the design and the curves so far "
                                         "are kept; press Train to start again")

    # ---- for scripts and tests ---------------------------------------------------------------
    def fetch_weights(self, run_id: int, timeout: float = 10.0) -> dict | None:
        """The run's current weights as numpy arrays (spins the event loop until they arrive)."""
        got: list = []

        def on_weights(ev):
            if ev.run_id == run_id:
                got.append(ev.state)

        self.weights_ready.connect(on_weights)
        try:
            if not self.send(P.FetchWeights(run_id)):
                return None
            wait_until(lambda: bool(got), timeout)
        finally:
            self.weights_ready.disconnect(on_weights)
        return got[0] if got else None


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
