"""What the worker computes for each snapshot: only the parts whose views are on screen.

The options follow the docks' visibility signals (a tab brought forward, a dock closed) and
the views' own choices (plane, sample, saliency method); they are never polled. Each change
replaces ``RunModel.view_options``; app.training sends the new options to the worker.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer

from app.presenters_sequence import connect_sequence_views, sequence_options
from app.run import RunModel

# the docks whose content the worker computes, and the signals of the views that change it
WATCHED_DOCKS = ("boundary_dock", "neuron_dock", "filters_dock", "feature_maps_dock", "saliency_dock",
                 "evaluation_dock", "gradients_dock", "distributions_dock", "embedding_dock", "roc_dock")


class ViewOptionsTracker(QObject):
    """Derives engine.probes.Prober options from the docks and views, on their signals."""

    def __init__(self, model: RunModel, views, parent: QObject | None = None):
        super().__init__(parent)
        self.model, self.v = model, views
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)  # after the dock's show/hide has settled
        self._timer.timeout.connect(self.update)
        for name in WATCHED_DOCKS:
            views.docks[name].visibilityChanged.connect(lambda _v: self._timer.start())
        views.boundary.projection_changed.connect(lambda _p: self.update())
        views.feature_maps.sample_changed.connect(lambda _s: self.update())
        views.saliency.options_changed.connect(lambda _o: self.update())
        views.distributions.kind_changed.connect(lambda _k: self.update())
        views.embedding.layer_changed.connect(lambda _l: self.update())
        connect_sequence_views(views, self._timer.start)
        # the samples to pick from arrive with the run's data (after the presenters have shown them)
        model.events.data.connect(lambda _d: self._timer.start())
        self.providers: list = []  # more option parts: callables () -> dict (app.presenters_generative)

    def watch(self, dock) -> None:
        """Recompute the options when ``dock`` is shown or hidden."""
        dock.visibilityChanged.connect(lambda _v: self._timer.start())

    def visible(self, name: str) -> bool:
        dock = self.v.docks[name]
        return dock.isVisible() and not dock.visibleRegion().isEmpty()

    def options(self) -> dict:
        v = self.v
        opts: dict = {
            "boundary": self.visible("boundary_dock"),
            "neurons": True,  # canvas thumbnails and the neuron dock
            "weights": True,
            "filters": self.visible("filters_dock"),
            "confusion": self.visible("evaluation_dock"),
            "feature_sample": None,
            "saliency": None,
            "health": True,  # the badges on the canvas cards
            "gradients": self.visible("gradients_dock"),
            "distributions": v.distributions.kind() if self.visible("distributions_dock") else None,
            "embedding": {"layer": v.embedding.layer()} if self.visible("embedding_dock") else None,
            "roc": self.visible("roc_dock"),
        }
        proj = v.boundary.projection()
        if proj is not None:
            opts["dims"] = proj
        if self.visible("feature_maps_dock") or self.visible("saliency_dock"):
            opts["feature_sample"] = self._current_sample()
        if self.visible("saliency_dock"):
            opts["saliency"] = dict(v.saliency.options())
        opts.update(sequence_options(self))
        for provide in self.providers:
            opts.update(provide())
        return opts

    def _current_sample(self):
        sample = self.v.feature_maps.current_sample()
        data = self.model.data
        if isinstance(sample, np.ndarray) and data is not None and data.mean is not None:
            sample = ((sample - data.mean) / data.std).astype(np.float32)  # drawn in data units: standardise
        return sample

    def update(self) -> None:
        self.model.set_view_options(self.options())
