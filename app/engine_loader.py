"""Load the slow parts the GUI itself needs after the window shows, and run other slow work off the GUI thread.

The GUI process never imports torch: training, probes and export live in the worker process
(engine.worker), which imports torch while the user edits. What the GUI loads here is what
the dataset panel needs: scikit-learn (iris and digits previews) and the image readers.
Measured on this machine (2 cores): importing sklearn takes ~2 s; in a background thread the
event loop stays responsive, on the GUI thread the window would freeze for all of it.
"""
from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot


def _load_engine() -> str:
    """Import the data loaders; returns a label for the status bar."""
    import sklearn.datasets  # noqa: F401 - iris/digits previews need it

    from engine.datasets import images  # noqa: F401 - image datasets
    return "datasets ready"


def _load_in_thread(loader_ref, load: Callable[[], str]) -> None:
    try:
        ok, text = True, load()
    except Exception as exc:  # a broken install must not take the editor down
        ok, text = False, f"{type(exc).__name__}: {exc}"
    loader = loader_ref()
    if loader is None:
        return  # the window was closed meanwhile: nobody to tell
    try:
        loader._finished.emit(ok, text)
    except RuntimeError:
        pass
    del loader


class EngineLoader(QObject):
    """Imports the data loaders in a daemon thread; ``engine_ready(label)`` arrives on the GUI thread."""

    engine_ready = Signal(str)
    engine_failed = Signal(str)
    _finished = Signal(bool, str)

    def __init__(self, parent: QObject | None = None, load: Callable[[], str] = _load_engine):
        super().__init__(parent)
        self._load = load
        self._thread: threading.Thread | None = None
        self.device = ""
        self.ready = False
        self.failed = ""
        # re-emitted from a slot of this GUI-thread object, so receivers always run on the GUI thread
        self._finished.connect(self._on_thread_finished)

    def start(self) -> None:
        if self._thread is None:
            # the thread holds this QObject only weakly, so it is never destroyed off the GUI thread
            self._thread = threading.Thread(target=_load_in_thread, args=(weakref.ref(self), self._load),
                                            name="engine-loader", daemon=True)
            self._thread.start()

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


    @Slot(bool, str)
    def _on_thread_finished(self, ok: bool, text: str) -> None:
        if ok:
            self.ready, self.device = True, text
            self.engine_ready.emit(text)
        else:
            self.failed = text
            self.engine_failed.emit(text)


class TaskRunner(QObject):
    """Runs one function at a time per key in a thread; only the latest result per key is delivered.

    ``task_done(key, result, error)`` arrives on the GUI thread; a result superseded by a
    newer submit for the same key is dropped, so a slow old preview never overwrites a new one.
    """

    task_done = Signal(str, object, str)
    # Only plain values cross from the task threads: a queued signal carrying a Python object
    # makes Qt copy it under its own connection lock, which needs the GIL - and a GUI thread that
    # holds the GIL while destroying a widget waits for that same (pooled) lock: a deadlock seen
    # in the test suite. So the result waits in a dict and the signal says only where it is.
    _finished = Signal(str, int)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._results: dict[tuple[str, int], tuple[Any, str]] = {}
        self._results_lock = threading.Lock()
        self._latest: dict[str, int] = {}
        self._pending: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._finished.connect(self._on_thread_finished)

    def submit(self, key: str, fn: Callable[[], Any]) -> None:
        token = self._latest.get(key, 0) + 1
        self._latest[key] = token
        self._pending.add(key)

        runner_ref, lock, results = weakref.ref(self), self._results_lock, self._results

        def run() -> None:  # holds this QObject only weakly (see EngineLoader.start)
            try:
                result, error = fn(), ""
            except Exception as exc:  # reported to the user, e.g. a bad CSV
                result, error = None, str(exc) or type(exc).__name__
            with lock:
                results[(key, token)] = (result, error)
            runner = runner_ref()
            if runner is None:
                return
            try:
                runner._finished.emit(key, token)
            except RuntimeError:  # the receiver was deleted meanwhile
                pass
            del runner

        t = threading.Thread(target=run, name=f"task-{key}", daemon=True)
        self._threads = [th for th in self._threads if th.is_alive()] + [t]
        t.start()

    def cancel(self, key: str) -> None:
        """Forget pending work for ``key``: its result will be dropped."""
        self._latest[key] = self._latest.get(key, 0) + 1
        self._pending.discard(key)

    def busy(self) -> bool:
        """True while a submitted result has not been delivered yet."""
        return bool(self._pending)

    def wait(self, timeout: float | None = None) -> None:
        for th in list(self._threads):
            th.join(timeout)

    @Slot(str, int)
    def _on_thread_finished(self, key: str, token: int) -> None:
        with self._results_lock:
            result, error = self._results.pop((key, token), (None, "the task's result was lost"))
        if self._latest.get(key) == token:
            self._pending.discard(key)
            self.task_done.emit(key, result, error)
