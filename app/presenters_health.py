"""Presenters of "why it learns": health badges on the canvas, the Gradients and Distributions views.

Like app.presenters: they subscribe to the run model and draw the latest snapshot's extras
(engine.diagnostics computes them in the worker: ``health``, ``gradients``, ``distributions``).
"""
from __future__ import annotations

import time

from app.run import RunModel
from engine import protocol as P

# s between redraws while running: a dozen log-scale lines or image strips take 10-30 ms to
# paint on the GUI thread (bench/ui_latency.py), and a history moves slowly anyway
REDRAW_INTERVAL = 0.5


class Throttle:
    """True at most every REDRAW_INTERVAL while running; always when paused or ended."""

    def __init__(self) -> None:
        self._at = 0.0

    def due(self, snap: P.Snapshot) -> bool:
        now = time.perf_counter()
        if snap.state == "running" and now - self._at < REDRAW_INTERVAL:
            return False
        self._at = now
        return True


class HealthPresenter:
    """Badges on the cards: dead ReLUs, saturation, vanishing/exploding gradients, update ratio."""

    def __init__(self, model: RunModel, canvas):
        self.model, self.canvas = model, canvas
        model.events.run.connect(lambda _run: self.canvas.set_health({}))

    def render(self, snap: P.Snapshot) -> None:
        if "health" in snap.extras:
            self.canvas.set_health(snap.extras["health"])


class GradientsPresenter:
    """Per layer gradient norm and update/weight ratio over the run."""

    def __init__(self, model: RunModel, view):
        self.model, self.view = model, view
        self._throttle = Throttle()
        model.events.run.connect(lambda _run: self.view.clear())

    def render(self, snap: P.Snapshot) -> None:
        g = snap.extras.get("gradients")
        if g is not None and self._throttle.due(snap):
            self.view.set_history(g["layers"], g["steps"], g["grad_norm"], g["update_ratio"])


class DistributionsPresenter:
    """Histogram strips per layer over the run, of the kind the view's selector asks for."""

    def __init__(self, model: RunModel, view):
        self.model, self.view = model, view
        self._throttle = Throttle()
        model.events.run.connect(lambda _run: self.view.clear())

    def render(self, snap: P.Snapshot) -> None:
        d = snap.extras.get("distributions")
        if d is not None and self._throttle.due(snap):
            self.view.set_distributions(d["kind"], d["steps"], d["layers"], d["counts"], d["lo"], d["hi"])
