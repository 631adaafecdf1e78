"""Work around a reference-count bug of PySide6 6.12 on CPython 3.11 that crashes long sessions.

In this PySide6 build every ``Signal.emit()`` called from Python drops one reference to
``True`` (emit returns it without taking a reference), and every call of a Python slot from a
signal emitted in C++ (QTimer.timeout, clicked, ...) drops one reference to ``None``. After a
few thousand emits the count reaches zero and the interpreter aborts with
"Fatal Python error: bool_dealloc: deallocating True or False" (pyqtgraph emits on every
``setData``, so live plots hit it within a minute). From Python 3.12 on these singletons are
immortal and the bug is harmless; on 3.11 we give them a reference count no session can use up.

``install()`` is idempotent and does nothing on 3.12+ or a non-CPython interpreter. The app
should call it first thing at start-up and tests/conftest.py at import; the live-view widgets
also call it on import so they are safe on their own.
"""
from __future__ import annotations

import ctypes
import sys

_BUMP = 1 << 40  # ~1e12 extra references: at 10^5 emits/s that lasts 100+ days
_installed = False


def needed() -> bool:
    return sys.implementation.name == "cpython" and sys.version_info < (3, 12)


def install() -> bool:
    """Make True, False and None effectively immortal (once per process). True if it did something."""
    global _installed
    if _installed or not needed():
        return False
    for obj in (True, False, None):
        # ob_refcnt is the first field of every PyObject in a release build of CPython 3.11
        ctypes.c_ssize_t.from_address(id(obj)).value += _BUMP
    _installed = True
    return True


_collector = None


def collect_garbage_in_gui_thread():
    """Run Python's cyclic garbage collector only in the GUI thread (call once a QApplication exists).

    The GUI's objects form reference cycles (presenters, lambdas, views), so they are freed by the
    cyclic collector - which runs in whichever thread happens to allocate. Freed in the session's
    reader thread, a QObject's destructor took one of Qt's pooled locks and waited for the GIL
    while the GUI thread held the GIL destroying a widget and waited for that lock: the test
    suite hung. So the automatic collector is disabled and a GUI-thread timer collects with the
    same thresholds instead (as pyqtgraph's GarbageCollector does; not imported from there, because
    importing any part of pyqtgraph imports all of it, and the window shows before that)."""
    global _collector
    if _collector is None:
        _collector = _GuiThreadCollector(interval_ms=500)
    return _collector


class _GuiThreadCollector:
    def __init__(self, interval_ms: int):
        import gc

        from PySide6.QtCore import QTimer

        self.threshold = gc.get_threshold()
        gc.disable()
        self.timer = QTimer()
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        """Collect the generations whose allocation counts passed their thresholds (youngest first)."""
        import gc

        l0, l1, l2 = gc.get_count()
        if l0 > self.threshold[0]:
            gc.collect(0)
            if l1 > self.threshold[1]:
                gc.collect(1)
                if l2 > self.threshold[2]:
                    gc.collect(2)
