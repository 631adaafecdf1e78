"""The runs as the GUI knows them: a Qt-free model that emits change events.

It holds what the views show - the current run's state, the design it trains, its dataset
summary, its latest snapshot - and the options the views ask the worker for. It knows
nothing of views or of the worker: app.training feeds it from the session's events, and
app.presenters subscribe to it and draw (napari's evented models read the same way).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import protocol as P
from engine import spec as S

# settings that the optimiser takes while it runs; anything else is a structural change
LIVE_FIELDS = ("lr", "momentum", "weight_decay")


def structure_key(spec: S.Spec) -> str:
    """Everything that needs a new model or new data when it changes (positions and live settings excluded)."""
    d = spec.to_dict()
    for lay in d["layers"]:
        lay.pop("pos", None)
    for f in LIVE_FIELDS + ("epochs",):
        d["training"].pop(f, None)
    d.pop("name", None)
    d.pop("notes", None)
    d.pop("compare", None)  # the Compare dock's sweep (and the file version it needs): no concern of the run
    d.pop("version", None)
    return json.dumps(d, sort_keys=True, default=str)


class Event:
    """A list of callbacks; ``emit`` calls each in the order they connected."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for cb in list(self._callbacks):
            cb(*args)


class RunEvents:
    """run (a new run began, or the run was cleared), state, data (the run's dataset summary
    arrived), snapshot (a new snapshot), options (the view options changed)."""

    def __init__(self) -> None:
        self.run, self.state, self.data, self.snapshot, self.options = Event(), Event(), Event(), Event(), Event()


@dataclass
class Run:
    """One run: the design it trains and what the worker has said about it so far."""

    run_id: int
    spec: S.Spec
    key: str
    state: str = "starting"
    device: str = ""
    data: P.RunData | None = None
    snapshot: P.Snapshot | None = None
    result: P.Result | None = None
    message: str = ""
    ablations: list = field(default_factory=list)  # masks switched on in the worker's model (engine.analysis)

    @property
    def ended(self) -> bool:
        return self.state in P.ENDED

    @property
    def step(self) -> int:
        return self.snapshot.step if self.snapshot is not None else 0


def options_key(options: dict) -> str:
    """A comparable form of view options (a drawn sample is a numpy array)."""
    def enc(v):
        if isinstance(v, np.ndarray):
            return ["array", v.shape, hash(np.ascontiguousarray(v).tobytes())]
        return repr(v)
    return json.dumps(options, sort_keys=True, default=enc)


class RunModel:
    """The current run (or none) and the view options; ``events`` tell what changed."""

    def __init__(self) -> None:
        self.events = RunEvents()
        self.run: Run | None = None
        self.view_options: dict = {}

    @property
    def state(self) -> str:
        """idle | starting | running | paused | finished | stopped | diverged | error"""
        return self.run.state if self.run is not None else "idle"

    @property
    def active(self) -> bool:
        """A run exists that has not ended (it may be starting, running or paused)."""
        return self.run is not None and not self.run.ended

    @property
    def snapshot(self) -> P.Snapshot | None:
        return self.run.snapshot if self.run is not None else None

    @property
    def data(self) -> P.RunData | None:
        return self.run.data if self.run is not None else None

    def begin(self, run: Run) -> None:
        self.run = run
        self.events.run.emit(run)
        self.events.state.emit(run.state)

    def clear(self) -> None:
        self.run = None
        self.events.run.emit(None)
        self.events.state.emit("idle")

    def _is_current(self, run_id: int) -> bool:
        return self.run is not None and self.run.run_id == run_id

    def set_started(self, run_id: int, device: str, data: P.RunData) -> None:
        if self._is_current(run_id):
            self.run.device, self.run.data = device, data
            self.events.data.emit(data)

    def set_snapshot(self, run_id: int, snap: P.Snapshot) -> None:
        if not self._is_current(run_id):
            return
        self.run.snapshot = snap
        self.events.snapshot.emit(snap)
        self._set_state(snap.state, snap.message)

    def set_ended(self, run_id: int, result: P.Result, snap: P.Snapshot) -> None:
        if not self._is_current(run_id):
            return
        self.run.result = result
        old = self.run.snapshot
        if snap is not None and (old is None or (old.step, old.state) != (snap.step, snap.state)):
            self.run.snapshot = snap
            self.events.snapshot.emit(snap)
        state = snap.state if snap is not None else "finished"
        self._set_state(state, snap.message if snap is not None else "")

    def set_cancelled(self, run_id: int) -> None:
        """The run was stopped before its trainer existed."""
        if self._is_current(run_id):
            self._set_state("stopped", "stopped before training began")

    def set_failed(self, run_id: int, message: str) -> None:
        if self._is_current(run_id):
            self._set_state("error", message)

    def _set_state(self, state: str, message: str = "") -> None:
        run = self.run
        if run.ended and state not in P.ENDED:
            return  # a late report of a run that has ended does not revive it
        run.message = message or run.message
        if state != run.state:
            run.state = state
            self.events.state.emit(state)

    def set_view_options(self, options: dict) -> bool:
        """Replace the view options; True (and an ``options`` event) if they changed."""
        if options_key(options) == options_key(self.view_options):
            return False
        self.view_options = dict(options)
        self.events.options.emit(self.view_options)
        return True
