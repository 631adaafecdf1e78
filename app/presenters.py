"""Presenters: each feeds a group of views from the run model (numpy in, drawing out).

They subscribe to app.run.RunModel and never talk to the worker. Drawing every view for
every snapshot kept the event loop busy (p50 latency ~100 ms with all docks open), so a
RenderScheduler draws one presenter per 40 ms tick, round robin, and everything at once
when a run pauses or ends (the picture must then match the final model).
"""
from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, QTimer

from app.presenters_health import Throttle
from app.run import RunModel
from engine import protocol as P

MAX_THUMB_UNITS = 16
CURVES_INTERVAL = 0.25  # s between redraws of the curves while running: the costliest view to paint
TICK_MS = 40


class NewParts:
    """Which of a snapshot's arrays are new: the session hands unchanged ones on as the very same
    objects (engine.protocol.Snapshot.same), so a view need not redraw them."""

    def __init__(self) -> None:
        self._seen: dict[str, object] = {}  # the objects themselves: an id() could be reused

    def new(self, name: str, value) -> bool:
        if value is None:
            return False
        if self._seen.get(name) is value:
            return False
        self._seen[name] = value
        return True

    def forget(self) -> None:
        """Redraw everything next time (a new run, a view cleared)."""
        self._seen.clear()


class RenderScheduler(QObject):
    """Draws the latest snapshot one presenter per tick; presenters have ``render(snapshot)``."""

    def __init__(self, model: RunModel, presenters: list, parent: QObject | None = None):
        super().__init__(parent)
        self.presenters = presenters
        self._model = model
        self._dirty: list = []
        self._next = 0
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        model.events.snapshot.connect(self._on_model_snapshot)

    def _on_model_snapshot(self, snap: P.Snapshot) -> None:
        self._dirty = list(self.presenters)
        if snap.state != "running":  # paused / final / a probe answer: show everything now
            self.flush()
        elif not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        while self._dirty:
            self._tick()

    def _tick(self) -> None:
        snap = self._model.snapshot
        if snap is None or not self._dirty:
            self._timer.stop()
            return
        n = len(self.presenters)
        order = [self.presenters[(self._next + i) % n] for i in range(n)]
        presenter = next(p for p in order if p in self._dirty)
        self._next = (self.presenters.index(presenter) + 1) % n
        self._dirty.remove(presenter)
        presenter.render(snap)


class ProgressPresenter:
    """Status bar figures and the loss/accuracy curves."""

    def __init__(self, model: RunModel, status, curves):
        self.model, self.status, self.curves = model, status, curves
        self._curves_at = 0.0
        model.events.run.connect(self._on_model_run)

    def _on_model_run(self, run) -> None:
        self.curves.start_new_run()  # a new run or Reset: the last run stays as a faint line
        self.status.update_snapshot(0, run.spec.training.epochs if run else 0, 0, 0.0, 0.0,
                                    run.state if run else "idle")

    def render(self, snap: P.Snapshot) -> None:
        self.status.update_snapshot(snap.epoch, snap.epochs, snap.step, snap.samples_per_s, snap.elapsed, snap.state)
        now = time.perf_counter()
        if now - self._curves_at >= CURVES_INTERVAL or snap.state != "running":
            self._curves_at = now
            self.curves.set_live(snap.state == "running")
            self.curves.update_history(snap.history)


class BoundaryPresenter:
    """The decision boundary over the input plane, with the data points."""

    def __init__(self, model: RunModel, boundary):
        self.model, self.boundary = model, boundary
        model.events.run.connect(lambda run: run is None and self.boundary.clear())
        model.events.data.connect(self._on_model_data)

    def _on_model_data(self, data: P.RunData) -> None:
        info = data.info
        self.boundary.set_feature_names(list(info.feature_names) if not info.is_image else [])
        self.boundary.set_projection_enabled(not info.is_image and info.input_shape[0] > 2)

    def render(self, snap: P.Snapshot) -> None:
        ex, data = snap.extras, self.model.data
        if "boundary" not in ex or data is None:
            return
        self.boundary.set_boundary(ex["boundary"], tuple(ex["boundary_extent"]))
        self.boundary.set_points(ex.get("points_train"), data.y_train, ex.get("points_val"), data.y_val,
                                 data.info.class_names)
        if "boundary_xlabel" in ex:
            self.boundary.set_axis_labels(ex["boundary_xlabel"], ex.get("boundary_ylabel", ""))


class NetworkPresenter:
    """TF-Playground pictures on the canvas (a thumbnail per unit, weights on the links) and the neuron view."""

    def __init__(self, model: RunModel, canvas, neuron):
        self.model, self.canvas, self.neuron = model, canvas, neuron
        self.hover: tuple[str, int] | None = None
        model.events.run.connect(self._on_model_run)
        canvas.unit_hovered.connect(self._on_canvas_unit)
        canvas.unit_clicked.connect(self._on_canvas_unit)

    def _on_model_run(self, run) -> None:
        self.canvas.clear_live()
        self.neuron.clear()

    def render(self, snap: P.Snapshot) -> None:
        ex, run = snap.extras, self.model.run
        if run is None or run.data is None:
            return
        if "neurons" in ex or "weights" in ex:
            self._show_live_network(ex, run)
        self._update_neuron_view()

    def _show_live_network(self, ex: dict, run) -> None:
        spec = run.spec
        thumbs: dict[str, np.ndarray] = {}
        neurons = ex.get("neurons") or {}
        for lid, maps in neurons.items():
            if maps.shape[0] <= MAX_THUMB_UNITS:
                lim = float(np.nanmax(np.abs(maps))) or 1.0
                thumbs[lid] = np.clip(maps / lim, -1, 1)
        inp = next((lay.id for lay in spec.layers if lay.kind == "Input"), None)
        if neurons and inp and "boundary_extent" in ex and run.data.info.is_2d:
            res = next(iter(neurons.values())).shape[-1]
            x0, x1, y0, y1 = ex["boundary_extent"]
            gx, gy = np.meshgrid(np.linspace(x0, x1, res), np.linspace(y0, y1, res))
            lim = max(abs(x0), abs(x1), abs(y0), abs(y1)) or 1.0
            thumbs[inp] = np.stack([gx, gy]) / lim  # the input features themselves, as TF Playground shows
        self.canvas.set_node_thumbnails(thumbs)
        weights: dict[tuple[str, str], np.ndarray] = {}
        for lid, wmat in (ex.get("weights") or {}).items():
            for src in spec.inputs_of(lid):
                if src in thumbs and thumbs[src].shape[0] == wmat.shape[1] and wmat.shape[0] <= MAX_THUMB_UNITS:
                    weights[(src, lid)] = wmat
        self.canvas.set_edge_weights(weights)

    def _on_canvas_unit(self, node: str, unit: int) -> None:
        self.hover = (node, unit) if unit >= 0 else self.hover
        self._update_neuron_view()

    def _update_neuron_view(self) -> None:
        snap, run = self.model.snapshot, self.model.run
        if self.hover is None or snap is None or run is None:
            return
        node, unit = self.hover
        maps = (snap.extras.get("neurons") or {}).get(node)
        ext = snap.extras.get("boundary_extent")
        if maps is None or ext is None or unit >= maps.shape[0]:
            return
        kind = next((lay.kind for lay in run.spec.layers if lay.id == node), "")
        self.neuron.set_map(maps[unit], tuple(ext), f"{node} - unit {unit} ({kind})")


class InsightPresenter:
    """The CNN views: filters, feature maps, saliency and evaluation, in step with the canvas selection."""

    def __init__(self, model: RunModel, views, canvas, visible):
        self.model, self.v, self.canvas, self.visible = model, views, canvas, visible
        self.selected_layer: str | None = None
        self.misclassified = np.zeros(0, np.int64)
        self.parts = NewParts()
        self._filters_throttle = Throttle()
        model.events.data.connect(self._on_model_data)
        canvas.selection_changed.connect(self._on_canvas_selection)
        views.filters.layer_selected.connect(self._on_view_layer_selected)
        views.feature_maps.layer_selected.connect(self._on_view_layer_selected)
        views.evaluation.sample_selected.connect(self._on_evaluation_sample)

    def _on_model_data(self, data: P.RunData) -> None:
        info, v = data.info, self.v
        self.parts.forget()
        if not info.is_image:
            return
        names = list(info.class_names)
        v.feature_maps.set_input_shape(tuple(info.input_shape))
        v.feature_maps.set_samples(data.val_images, data.y_val[:len(data.val_images)], names)
        v.saliency.set_classes(names)
        v.saliency.set_conv_layers([lay.id for lay in self.model.run.spec.layers if lay.kind == "Conv2d"])

    def display_image(self, x: np.ndarray) -> np.ndarray:
        """Standardised sample -> the units it was drawn/read in, for showing."""
        data = self.model.data
        if data is not None and x.ndim == 3 and data.mean is not None and np.shape(data.mean)[:1] == x.shape[:1]:
            return (x * data.std + data.mean).astype(np.float32)
        return x

    def render(self, snap: P.Snapshot) -> None:
        ex, v, run = snap.extras, self.v, self.model.run
        if run is None or run.data is None:
            return
        names = run.data.info.class_names
        if "filters" in ex and self._filters_throttle.due(snap):  # fresh arrays every snapshot; they move slowly
            v.filters.set_filters(ex["filters"])
            if self.selected_layer:
                v.filters.select_layer(self.selected_layer)
        if self.parts.new("feature_maps", ex.get("feature_maps")) | self.parts.new("proba", ex.get("proba")):
            kinds = {lay.id: lay.kind for lay in run.spec.layers}
            v.feature_maps.set_feature_maps(ex["feature_maps"], list(ex["feature_maps"]), kinds, ex.get("saliency_input"))
            if self.selected_layer:
                v.feature_maps.select_layer(self.selected_layer)
            if "proba" in ex:
                v.feature_maps.set_prediction(ex["proba"], names)
        if "saliency_input" in ex and self.parts.new("saliency", ex.get("saliency")):
            opts = v.saliency.options()
            v.saliency.set_result(self.display_image(ex["saliency_input"]), ex["saliency"], opts.get("method", "gradient"),
                                  int(ex.get("pred", 0)), int(ex.get("saliency_target", ex.get("pred", 0))), names,
                                  ex.get("proba"))
        if self.parts.new("confusion", ex.get("confusion")):
            c = ex["confusion"]
            v.evaluation.set_confusion(c["matrix"], c["per_class_accuracy"], c["accuracy"], names)
            self.misclassified = np.asarray(c["misclassified"], dtype=np.int64)
            images = c.get("misclassified_images")
            if images is not None:
                y_val = run.data.y_val
                v.evaluation.set_misclassified(images, y_val[self.misclassified], c["predicted"][self.misclassified],
                                               names, c.get("confidence"))

    # ---- selection in step between the canvas and the docks ---------------------------------------
    def _on_canvas_selection(self, ids: list) -> None:
        if len(ids) != 1:
            return
        self.selected_layer = ids[0]
        run = self.model.run
        kind = next((lay.kind for lay in run.spec.layers if lay.id == ids[0]), "") if run is not None else ""
        if kind == "Conv2d" and run.data is not None and run.data.info.is_image \
                and not (self.visible("filters_dock") or self.visible("feature_maps_dock")):
            self.v.docks["filters_dock"].raise_()  # show what was asked for
        self.v.filters.select_layer(ids[0])
        self.v.feature_maps.select_layer(ids[0])

    def _on_view_layer_selected(self, lid: str) -> None:
        self.canvas.select_ids([lid])

    def _on_evaluation_sample(self, position: int) -> None:
        if 0 <= position < len(self.misclassified):
            self.v.feature_maps.set_current_index(int(self.misclassified[position]))
            self.v.docks["feature_maps_dock"].raise_()
