"""What the engine tests that talk to a worker share: the xor example, a worker served in a thread of
the test process (engine.worker.serve over a pipe, as the GUI's process talks to it), its events."""
from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time

from engine import spec as S
from engine.worker import serve
from tests.conftest import EXAMPLES


def xor_spec(epochs: int) -> S.Spec:
    """The xor example with ``epochs`` epochs, on the CPU."""
    spec = S.load(os.path.join(EXAMPLES, "xor.json"))
    spec.training.epochs = epochs
    spec.training.device = "cpu"
    return spec


def thread_worker():
    """The GUI's end of a pipe to a worker served in a daemon thread."""
    a, b = mp.Pipe()
    threading.Thread(target=serve, args=(b,), daemon=True).start()
    return a


def events_until(conn, stop, timeout: float = 60.0) -> list:
    """Every event received until ``stop(event)``, in order; AssertionError naming the last ones if it never comes."""
    out, end = [], time.perf_counter() + timeout
    while time.perf_counter() < end:
        if conn.poll(0.05):
            ev = conn.recv()
            out.append(ev)
            if stop(ev):
                return out
    raise AssertionError(f"timed out; got {[type(e).__name__ for e in out][-10:]}")


def events_for(conn, seconds: float) -> list:
    """Every event received in the next ``seconds``."""
    out, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        if conn.poll(0.05):
            out.append(conn.recv())
    return out
