"""The training timeline: the run's weights at the end of every epoch, within a memory budget.

The worker records a checkpoint (numpy copies of the state dict, on the CPU) when a run starts
(its epoch 0, or the epoch a fork starts from) and after every epoch, so the views can show the
model as it was at any of them (engine.worker, ShowEpoch) and a new run can start from one
("Fork from here", FetchCheckpoint).

Memory: checkpoints are kept on a grid ``first, first + stride, first + 2*stride, ...`` plus the
latest one. When they use more than the budget, the stride doubles and the checkpoints off the
new grid are dropped: the old ones thin out evenly (every 2nd, then every 4th, ...), the first
and the latest stay. Only when one checkpoint alone is bigger than half the budget does the
first go too; the latest is never dropped, even when it alone exceeds the budget.

No Qt, no torch: the worker hands numpy arrays in (engine.worker.state_to_numpy).
"""
from __future__ import annotations

import threading

import numpy as np

BUDGET_MB = 200  # the timeline's memory per run, stated in the window's timeline tooltip
BUDGET_BYTES = BUDGET_MB * 1024 * 1024
# a slider has no use for more positions, and every snapshot carries the list of epochs: a long run of
# a small model (xor for 100 000 epochs) thins out at this count long before it reaches the budget
MAX_CHECKPOINTS = 1000
ARRAY_OVERHEAD = 128  # bytes of Python and numpy bookkeeping per array, beyond its data


def state_bytes(state: dict[str, np.ndarray]) -> int:
    """The memory a checkpoint takes: its arrays' data and their bookkeeping."""
    return int(sum(np.asarray(v).nbytes + ARRAY_OVERHEAD for v in state.values()))


class Timeline:
    """Checkpoints by epoch; ``add`` keeps them under ``budget`` bytes. Thread-safe (the training
    thread adds, the probe thread reads ``epochs`` for the snapshot it sends)."""

    def __init__(self, budget: int = BUDGET_BYTES, max_count: int = MAX_CHECKPOINTS):
        self.budget = int(budget)
        self.max_count = max(2, int(max_count))
        self._summary: dict | None = None  # made once per change: snapshots ask for it often
        self.stride = 1
        self._first: int | None = None
        self._items: dict[int, dict[str, np.ndarray]] = {}  # epoch -> state, in epoch order
        self._bytes: dict[int, int] = {}
        self._lock = threading.Lock()

    # ---- recording (training thread) ------------------------------------------------------
    def add(self, epoch: int, state: dict[str, np.ndarray]) -> None:
        """Record the weights at the end of ``epoch`` (the caller's own copies: they are kept as given)."""
        epoch = int(epoch)
        with self._lock:
            if self._first is None or epoch < self._first:  # a first, or a rewind (never in a run)
                self._items.clear()
                self._bytes.clear()
                self._first, self.stride = epoch, 1
            latest = self.latest_epoch()
            if latest is not None and latest != epoch and not self._on_grid(latest):
                self._drop(latest)  # it was kept only for being the latest
            self._items[epoch] = state
            self._bytes[epoch] = state_bytes(state)
            self._thin()
            self._summary = None

    def _on_grid(self, epoch: int) -> bool:
        return (epoch - self._first) % self.stride == 0

    def _drop(self, epoch: int) -> None:
        del self._items[epoch]
        del self._bytes[epoch]

    def _thin(self) -> None:
        latest = max(self._items)
        while sum(self._bytes.values()) > self.budget or len(self._items) > self.max_count:
            kept = [e for e in self._items if e not in (self._first, latest)]
            if not kept:  # only the first and the latest are left and they do not fit: the latest wins
                if self._first != latest and self._first in self._items:
                    self._drop(self._first)
                return
            self.stride *= 2
            for e in kept:
                if not self._on_grid(e):
                    self._drop(e)

    # ---- reading (any thread) -------------------------------------------------------------
    def epochs(self) -> np.ndarray:
        """The epochs that have a checkpoint, ascending (int64)."""
        with self._lock:
            return np.array(sorted(self._items), dtype=np.int64)

    def latest_epoch(self) -> int | None:
        return max(self._items) if self._items else None

    @property
    def nbytes(self) -> int:
        with self._lock:
            return int(sum(self._bytes.values()))

    def nearest(self, epoch: int) -> int | None:
        """The checkpointed epoch closest to ``epoch`` (the earlier one on a tie); None when empty."""
        with self._lock:
            if not self._items:
                return None
            return min(self._items, key=lambda e: (abs(e - int(epoch)), e))

    def get(self, epoch: int) -> dict[str, np.ndarray] | None:
        """The weights recorded at ``epoch`` exactly (None if that epoch has no checkpoint)."""
        with self._lock:
            return self._items.get(int(epoch))

    def summary(self) -> dict:
        """What a snapshot tells the GUI: the epochs, the bytes used and the budget (plain data)."""
        with self._lock:
            if self._summary is None:
                self._summary = {"epochs": np.array(sorted(self._items), dtype=np.int64),
                                 "bytes": int(sum(self._bytes.values())), "budget": self.budget}
            return dict(self._summary)


class LatestOnly:
    """A one-slot request box: while the slider is dragged only the latest asked epoch is computed.

    ``ask`` stores the request and returns True when no computation is queued yet (the caller then
    queues one); ``take`` hands the latest request to that computation and empties the slot."""

    _EMPTY = object()

    def __init__(self) -> None:
        self._value = self._EMPTY
        self._lock = threading.Lock()

    def ask(self, value) -> bool:
        with self._lock:
            queued = self._value is not self._EMPTY
            self._value = value
            return not queued

    def take(self, default=None):
        with self._lock:
            value, self._value = self._value, self._EMPTY
        return default if value is self._EMPTY else value

