"""Live training in the main window: toolbar, status, views, and the session that feeds them.

The controller owns one TrainingSession. It decides what the worker computes for each
snapshot (only the parts whose docks are visible) and routes each snapshot's numpy arrays to
the views. Widgets stay views; the engine stays Qt-free.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.process_session import ProcessTrainingSession
from app.session import TrainingSession
from engine import spec as S
from widgets.controls.training_bar import TrainingStatus, TrainingToolbar
from widgets.views.boundary import BoundaryView, NeuronMapView
from widgets.views.curves import CurvesView
from widgets.views.evaluation import EvaluationView
from widgets.views.feature_maps import FeatureMapsView
from widgets.views.filters import FiltersView
from widgets.views.saliency import SaliencyView

# settings that the optimiser takes while it runs; anything else is a structural change
LIVE_FIELDS = ("lr", "momentum", "weight_decay")
MAX_THUMB_UNITS = 16
CURVES_INTERVAL = 0.25  # s between redraws of the curves while running
RENDER_GROUPS = ["progress", "boundary", "network", "insight"]  # views drawn together on one render tick
WEIGHT_FORMATS = "safetensors (*.safetensors);;PyTorch state_dict (*.pt);;ONNX (*.onnx)"


def structure_key(spec: S.Spec) -> str:
    """Everything that needs a new model or new data when it changes (positions and live settings excluded)."""
    d = spec.to_dict()
    for lay in d["layers"]:
        lay.pop("pos", None)
    for f in LIVE_FIELDS + ("epochs",):
        d["training"].pop(f, None)
    d.pop("name", None)
    d.pop("notes", None)
    return json.dumps(d, sort_keys=True, default=str)


class TrainingController(QObject):
    """Wires Train/Pause/Step/Stop/Reset, the live docks and weight export into a MainWindow."""

    def __init__(self, window):
        super().__init__(window)
        self.w = window
        window.training = self
        # the trainer runs in its own process so painting never takes the GIL from it;
        # NP_TRAIN_IN_THREAD=1 keeps it in a thread (simpler to debug)
        if os.environ.get("NP_TRAIN_IN_THREAD"):
            self.session = TrainingSession(self)
        else:
            self.session = ProcessTrainingSession(self, max_rate=10.0)  # each view group redraws ~6 times/s
        self.probe = None  # engine.probes.Prober of the current run
        self.model = None  # the last run's model (torch), for export
        self.model_spec: S.Spec | None = None
        self.run_key: str | None = None
        self._asked_restart = False
        self._hover: tuple[str, int] | None = None
        self._selected_layer: str | None = None
        self._data_cache: tuple | None = None  # (dataset key, engine.datasets.Data)
        self._last_extras: dict = {}
        self.last_message = ""

        self.toolbar = TrainingToolbar()
        self.toolbar.setObjectName("training_toolbar")
        window.addToolBar(Qt.TopToolBarArea, self.toolbar)
        self.status = TrainingStatus()
        window.statusBar().addPermanentWidget(self.status)

        self.curves = CurvesView()
        self.boundary = BoundaryView()
        self.neuron = NeuronMapView()
        self.filters = FiltersView()
        self.feature_maps = FeatureMapsView()
        self.saliency = SaliencyView()
        self.evaluation = EvaluationView()
        self._arrange_docks()
        self._build_menu()
        self._connect()
        self._options_timer = QTimer(self)
        self._options_timer.setInterval(300)  # dock visibility is polled: tabs switch without signals
        self._options_timer.timeout.connect(self._push_options)
        self._options_timer.start()
        self._pending = None
        self._dirty: set[str] = set()
        self._next_group = 0
        self._curves_at = 0.0
        self._render_timer = QTimer(self)
        self._render_timer.setInterval(40)
        self._render_timer.timeout.connect(self._render_tick)
        self._set_state("idle")
        self._on_spec_changed()
        self.raise_views_for(window.data_info)

    # ---- building -------------------------------------------------------------------------
    def _arrange_docks(self) -> None:
        """Default layout: palette over dataset on the left, inspector over the decision boundary
        on the right, curves and the insight tabs under the canvas (a saved layout overrides it)."""
        w = self.w
        bottom, right, left = Qt.BottomDockWidgetArea, Qt.RightDockWidgetArea, Qt.LeftDockWidgetArea
        w.setCorner(Qt.BottomLeftCorner, left)
        w.setCorner(Qt.BottomRightCorner, right)
        data_dock = w.docks["data_dock"]
        w.removeDockWidget(data_dock)
        w.addDockWidget(left, data_dock)
        data_dock.show()
        w.splitDockWidget(w.docks["palette_dock"], data_dock, Qt.Vertical)
        w.add_dock(self.boundary, "Decision boundary", right, "boundary_dock")
        w.splitDockWidget(w.docks["inspector_dock"], w.docks["boundary_dock"], Qt.Vertical)
        w.add_dock(self.neuron, "Neuron", right, "neuron_dock", tabify_with="boundary_dock")
        w.add_dock(self.curves, "Curves", bottom, "curves_dock")
        w.add_dock(self.evaluation, "Evaluation", bottom, "evaluation_dock")
        w.splitDockWidget(w.docks["curves_dock"], w.docks["evaluation_dock"], Qt.Horizontal)
        w.add_dock(self.filters, "Filters", bottom, "filters_dock", tabify_with="evaluation_dock")
        w.add_dock(self.feature_maps, "Feature maps", bottom, "feature_maps_dock", tabify_with="filters_dock")
        w.add_dock(self.saliency, "Saliency", bottom, "saliency_dock", tabify_with="feature_maps_dock")
        for view in (self.curves, self.boundary, self.neuron, self.filters, self.feature_maps, self.saliency,
                     self.evaluation):
            view.setMinimumSize(200, 140)  # docks may be squeezed on a laptop screen; views scale down
        self.docks = {k: w.docks[k] for k in ("curves_dock", "boundary_dock", "neuron_dock", "filters_dock",
                                              "feature_maps_dock", "saliency_dock", "evaluation_dock")}
        w.docks["boundary_dock"].raise_()
        w.docks["evaluation_dock"].raise_()
        w.resizeDocks([w.docks["palette_dock"], w.docks["inspector_dock"]], [240, 400], Qt.Horizontal)
        w.resizeDocks([w.docks["palette_dock"], data_dock], [360, 490], Qt.Vertical)  # room for the preview
        w.resizeDocks([w.docks["inspector_dock"], w.docks["boundary_dock"]], [400, 450], Qt.Vertical)
        w.resizeDocks([w.docks["curves_dock"]], [300], Qt.Vertical)
        w.resizeDocks([w.docks["curves_dock"], w.docks["evaluation_dock"]], [380, 380], Qt.Horizontal)

    def raise_views_for(self, info) -> None:
        """Bring forward the docks that mean something for this dataset (once per kind of data)."""
        kind = None if info is None else ("image" if info.is_image else "plane")
        if kind is None or kind == getattr(self, "_raised_for", None):
            return
        self._raised_for = kind
        if info.is_image:
            self.docks["feature_maps_dock"].raise_()
            self.docks["neuron_dock"].raise_()
        else:
            self.docks["boundary_dock"].raise_()
            self.docks["evaluation_dock"].raise_()

    def _build_menu(self) -> None:
        w = self.w
        menu = w.menuBar().addMenu("&Training")
        w.menus["training"] = menu
        for act in self.toolbar.actions_by_name().values():
            menu.addAction(act)
        menu.addSeparator()
        self.device_menu = menu.addMenu("&Device")
        self.device_group = QActionGroup(self)
        self.device_group.setExclusive(True)
        self._fill_devices(["auto", "cpu"])
        export = QAction("Export &weights...", w)
        export.setShortcut("Ctrl+E")
        export.setStatusTip("Write the trained weights as safetensors, a PyTorch state_dict or ONNX")
        export.triggered.connect(lambda _c=False: self.export_weights())
        w.actions["export_weights"] = export
        file_menu = w.menus.get("file")
        if file_menu is not None:
            before = w.actions.get("quit")
            file_menu.insertAction(before, export) if before else file_menu.addAction(export)
        menu.addAction(export)
        curves_export = QAction("Export &metrics as CSV...", w)
        curves_export.triggered.connect(lambda _c=False: self.curves.export_via_dialog())
        menu.addAction(curves_export)

    def _fill_devices(self, devices: list[str]) -> None:
        self.device_menu.clear()
        for act in self.device_group.actions():
            self.device_group.removeAction(act)
        current = self.w.document.spec.training.device
        for dev in devices:
            act = QAction({"auto": "Automatic (best available)", "cpu": "CPU", "cuda": "CUDA GPU",
                           "mps": "Apple MPS"}.get(dev, dev), self.device_menu)
            act.setCheckable(True)
            act.setData(dev)
            act.setChecked(dev == current)
            act.triggered.connect(lambda _c=False, d=dev: self._on_device_chosen(d))
            self.device_group.addAction(act)
            self.device_menu.addAction(act)
        self.toolbar.set_devices(devices, current if current in devices else "auto")

    def _connect(self) -> None:
        tb, s = self.toolbar, self.session
        tb.train_requested.connect(self.train)
        tb.pause_requested.connect(self.pause)
        tb.step_requested.connect(self.step)
        tb.stop_requested.connect(self.stop)
        tb.reset_requested.connect(self.reset)
        tb.device_changed.connect(self._on_device_chosen)
        s.snapshot_ready.connect(self._on_session_snapshot)
        s.state_changed.connect(self._on_session_state)
        s.finished.connect(self._on_session_finished)
        s.failed.connect(self._on_session_failed)
        s.notice.connect(self._on_session_notice)
        self.w.document.spec_changed.connect(self._on_spec_changed)
        self.w.document.spec_changed.connect(lambda: self.raise_views_for(self.w.data_info))
        self.w.engine.engine_ready.connect(self._on_engine_ready)
        self.curves.export_requested.connect(self.curves.export_via_dialog)
        self.boundary.projection_changed.connect(lambda _p: self._push_options())
        self.w.canvas.unit_hovered.connect(self._on_canvas_unit)
        self.w.canvas.unit_clicked.connect(self._on_canvas_unit)
        self.w.canvas.selection_changed.connect(self._on_canvas_selection)
        self.filters.layer_selected.connect(self._on_view_layer_selected)
        self.feature_maps.layer_selected.connect(self._on_view_layer_selected)
        self.feature_maps.sample_changed.connect(lambda _s: self._push_options())
        self.saliency.options_changed.connect(lambda _o: self._push_options())
        self.evaluation.sample_selected.connect(self._on_evaluation_sample)

    # ---- commands ------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.session.state if self.session.running else self._state

    def train(self) -> None:
        """Start a new run, or resume a paused one."""
        if self.session.running:
            if self.session.state == "paused":
                self.session.resume()
            return
        self._start(paused=False)

    def step(self) -> None:
        if self.session.running:
            self.session.step()
        else:
            self._start(paused=True)

    def pause(self) -> None:
        if self.session.running:
            self.session.pause()

    def stop(self) -> None:
        if self.session.running:
            self.session.stop()

    def reset(self) -> None:
        """Forget the trained model and clear the views (the design is untouched)."""
        if self.session.running:
            self.session.shutdown()
        self.model = None
        self.model_spec = None
        self.run_key = None
        self._last_extras = {}
        self.w.canvas.clear_live()
        self.curves.start_new_run()
        self.boundary.clear()
        self.neuron.clear()
        self.status.update_snapshot(0, self.w.document.spec.training.epochs, 0, 0.0, 0.0, "idle")
        self._set_state("idle")

    def shutdown(self) -> bool:
        """Stop training and join the worker (the window is closing)."""
        self._options_timer.stop()
        ok = self.session.shutdown()
        if hasattr(self.session, "close"):
            self.session.close()  # ends the worker process
        return ok

    def _start(self, paused: bool) -> None:
        w = self.w
        if not w.engine.ready:
            w.status("The engine is still loading - try again in a moment")
            return
        spec = w.document.spec.copy()
        problems = S.errors(S.validate(spec, w.data_info))
        if problems:
            text = "\n".join(f"- {p}" for p in problems[:12])
            w.status(f"Cannot train: {problems[0]}")
            self._message("Cannot train this design yet", f"Fix these first:\n{text}")
            return
        from engine.probes import Prober

        try:
            data = self._data_for(spec)
        except ValueError as exc:
            w.status(f"Cannot load the dataset: {exc}")
            self._message("Cannot load the dataset", str(exc))
            return
        self.curves.start_new_run()
        self.w.canvas.clear_live()
        self.probe = Prober(data, spec.training.loss, self._options())
        self.model_spec = spec
        self.run_key = structure_key(spec)
        self._asked_restart = False
        self._last_extras = {}
        self._prepare_views(data)
        device = self.toolbar.device() or spec.training.device
        self.session.start(spec, data, device=device, probe=self.probe, threads=1, paused=paused)
        self.model = None

    def _data_for(self, spec: S.Spec):
        """Load (and cache) the dataset arrays for this spec's dataset."""
        from engine import datasets

        key = json.dumps(S.spec_to_dict(spec)["dataset"], sort_keys=True)
        cached = self._data_cache
        if cached and cached[0] == key:
            return cached[1]
        data = datasets.load(spec.dataset)
        self._data_cache = (key, data)
        return data

    def _prepare_views(self, data) -> None:
        info = data.info
        names = list(info.class_names)
        self.boundary.set_feature_names(list(info.feature_names) if not info.is_image else [])
        self.boundary.set_projection_enabled(not info.is_image and info.input_shape[0] > 2)
        if info.is_image:
            raw = data.raw_x_val if data.raw_x_val is not None else data.x_val
            self.feature_maps.set_input_shape(tuple(info.input_shape))
            self.feature_maps.set_samples(raw[:512], data.y_val[:512], names)
            self.saliency.set_classes(names)
            convs = [lay.id for lay in self.model_spec.layers if lay.kind == "Conv2d"]
            self.saliency.set_conv_layers(convs)

    # ---- what the worker computes ------------------------------------------------------------
    def _visible(self, name: str) -> bool:
        dock = self.docks[name]
        return dock.isVisible() and not dock.visibleRegion().isEmpty()

    def _options(self) -> dict:
        opts: dict = {
            "boundary": self._visible("boundary_dock"),
            "neurons": True,  # canvas thumbnails and the neuron dock
            "weights": True,
            "filters": self._visible("filters_dock"),
            "confusion": self._visible("evaluation_dock"),
            "feature_sample": None,
            "saliency": None,
        }
        proj = self.boundary.projection()
        if proj is not None:
            opts["dims"] = proj
        sample_wanted = self._visible("feature_maps_dock") or self._visible("saliency_dock")
        if sample_wanted:
            opts["feature_sample"] = self._current_sample()
        if self._visible("saliency_dock"):
            opts["saliency"] = dict(self.saliency.options())
        return opts

    def _current_sample(self):
        sample = self.feature_maps.current_sample()
        if isinstance(sample, np.ndarray) and self.probe is not None:
            data = self.probe.data
            sample = ((sample - data.mean) / data.std).astype(np.float32)  # drawn in [0, 1]: standardise
        return sample

    def _push_options(self) -> None:
        if self.probe is not None:
            opts = self._options()
            if opts != self.probe.options:
                self.probe.options = opts  # replaced, never mutated: the worker reads it between batches
                if hasattr(self.session, "set_options"):
                    self.session.set_options(opts)
                self._refresh_idle()

    def _refresh_idle(self) -> None:
        """No snapshots come while paused or after a run: compute what a newly shown view needs here.

        Safe on the GUI thread because the worker does not touch the model in those states."""
        idle = not self.session.running or self.session.state == "paused"
        if not idle or self.probe is None:
            return
        model = self.current_model()
        if model is None:
            return
        try:
            extras = self.probe(model, force=True)
        except Exception as exc:  # noqa: BLE001 - a view's computation must never take the window down
            self.w.status(f"Could not update the views: {exc}")
            return
        self._show_extras(extras)

    # ---- snapshots ------------------------------------------------------------------------
    def _on_session_snapshot(self, snap) -> None:
        """Keep the latest snapshot; the render tick draws it a group of views at a time.

        Drawing every view for every snapshot kept the event loop busy (p50 latency ~100 ms with
        all docks open); a staggered tick bounds the work done between two events."""
        self._pending = snap
        self._dirty = set(RENDER_GROUPS)
        if snap.state != "running":  # paused / final: show everything now
            while self._dirty:
                self._render_tick()
        elif not self._render_timer.isActive():
            self._render_timer.start()

    def _render_tick(self) -> None:
        snap = self._pending
        if snap is None or not self._dirty:
            self._render_timer.stop()
            return
        group = next(g for g in RENDER_GROUPS[self._next_group:] + RENDER_GROUPS[:self._next_group] if g in self._dirty)
        self._next_group = (RENDER_GROUPS.index(group) + 1) % len(RENDER_GROUPS)
        self._dirty.discard(group)
        if group == "progress":
            self.status.update_snapshot(snap.epoch, snap.epochs, snap.step, snap.samples_per_s, snap.elapsed, snap.state)
            now = time.perf_counter()
            # the curves are the costliest view to paint (axes re-laid out as they grow): 4 times/s is plenty
            if now - self._curves_at >= CURVES_INTERVAL or snap.state != "running":
                self._curves_at = now
                self.curves.update_history(snap.history)
        else:
            self._show_extras(snap.extras or {}, group)

    def _show_extras(self, ex: dict, group: str | None = None) -> None:
        """Route the probe's arrays to the views (``group``: one of RENDER_GROUPS; None: all)."""
        self._last_extras = ex
        if group == "insight":
            self._show_insight(ex)
            return
        if "boundary" in ex and group in (None, "boundary"):
            self.boundary.set_boundary(ex["boundary"], tuple(ex["boundary_extent"]))
            names = self.probe.data.info.class_names if self.probe else None
            self.boundary.set_points(ex.get("points_train"), self.probe.data.y_train,
                                     ex.get("points_val"), self.probe.data.y_val, names)
            if "boundary_xlabel" in ex:
                self.boundary.set_axis_labels(ex["boundary_xlabel"], ex.get("boundary_ylabel", ""))
        if group == "boundary":
            return
        if "neurons" in ex or "weights" in ex:
            self._show_live_network(ex)
        self._update_neuron_view()
        if group is None:
            self._show_insight(ex)

    def _show_insight(self, ex: dict) -> None:
        if "filters" in ex:
            self.filters.set_filters(ex["filters"])
            if self._selected_layer:
                self.filters.select_layer(self._selected_layer)
        if "feature_maps" in ex and self.probe is not None:
            net = self.model_spec
            kinds = {lay.id: lay.kind for lay in net.layers}
            order = [lid for lid in ex["feature_maps"]]
            self.feature_maps.set_feature_maps(ex["feature_maps"], order, kinds, ex.get("saliency_input"))
            if self._selected_layer:
                self.feature_maps.select_layer(self._selected_layer)
            if "proba" in ex:
                self.feature_maps.set_prediction(ex["proba"], self.probe.data.info.class_names)
        if "saliency" in ex and "saliency_input" in ex and self.probe is not None:
            names = self.probe.data.info.class_names
            opts = self.saliency.options()
            inp = self._display_image(ex["saliency_input"])
            self.saliency.set_result(inp, ex["saliency"], opts.get("method", "gradient"), int(ex.get("pred", 0)),
                                     int(ex.get("saliency_target", ex.get("pred", 0))), names, ex.get("proba"))
        if "confusion" in ex and self.probe is not None:
            c = ex["confusion"]
            names = self.probe.data.info.class_names
            self.evaluation.set_confusion(c["matrix"], c["per_class_accuracy"], c["accuracy"], names)
            idx = np.asarray(c["misclassified"], dtype=np.int64)
            self._misclassified = idx
            raw = self.probe.data.raw_x_val if self.probe.data.raw_x_val is not None else self.probe.data.x_val
            if raw.ndim == 4:
                self.evaluation.set_misclassified(raw[idx], self.probe.data.y_val[idx], c["predicted"][idx],
                                                  names, c.get("confidence"))

    def _display_image(self, x: np.ndarray) -> np.ndarray:
        """Standardised sample -> the units it was drawn/read in, for showing."""
        data = self.probe.data
        if x.ndim == 3 and data.mean is not None and np.shape(data.mean)[0] == x.shape[0]:
            return (x * data.std + data.mean).astype(np.float32)
        return x

    def _show_live_network(self, ex: dict) -> None:
        spec = self.model_spec
        if spec is None:
            return
        thumbs: dict[str, np.ndarray] = {}
        neurons = ex.get("neurons") or {}
        for lid, maps in neurons.items():
            if maps.shape[0] <= MAX_THUMB_UNITS:
                lim = float(np.nanmax(np.abs(maps))) or 1.0
                thumbs[lid] = np.clip(maps / lim, -1, 1)
        inp = next((lay.id for lay in spec.layers if lay.kind == "Input"), None)
        if neurons and inp and "boundary_extent" in ex and self.probe.data.info.is_2d:
            res = next(iter(neurons.values())).shape[-1]
            x0, x1, y0, y1 = ex["boundary_extent"]
            gx, gy = np.meshgrid(np.linspace(x0, x1, res), np.linspace(y0, y1, res))
            lim = max(abs(x0), abs(x1), abs(y0), abs(y1)) or 1.0
            thumbs[inp] = np.stack([gx, gy]) / lim  # the input features themselves, as TF Playground shows
        self.w.canvas.set_node_thumbnails(thumbs)
        weights: dict[tuple[str, str], np.ndarray] = {}
        for lid, wmat in (ex.get("weights") or {}).items():
            for src in spec.inputs_of(lid):
                if src in thumbs and thumbs[src].shape[0] == wmat.shape[1] and wmat.shape[0] <= MAX_THUMB_UNITS:
                    weights[(src, lid)] = wmat
        self.w.canvas.set_edge_weights(weights)

    def _on_canvas_unit(self, node: str, unit: int) -> None:
        self._hover = (node, unit) if unit >= 0 else self._hover
        self._update_neuron_view()

    def _update_neuron_view(self) -> None:
        if self._hover is None:
            return
        node, unit = self._hover
        maps = (self._last_extras.get("neurons") or {}).get(node)
        ext = self._last_extras.get("boundary_extent")
        if maps is None or ext is None or unit >= maps.shape[0]:
            return
        kind = next((lay.kind for lay in self.model_spec.layers if lay.id == node), "") if self.model_spec else ""
        self.neuron.set_map(maps[unit], tuple(ext), f"{node} - unit {unit} ({kind})")

    # ---- selection in step between canvas and docks -------------------------------------------
    def _on_canvas_selection(self, ids: list) -> None:
        if len(ids) != 1:
            return
        self._selected_layer = ids[0]
        kind = next((lay.kind for lay in self.w.document.spec.layers if lay.id == ids[0]), "")
        has_model = (self.session.trainer is not None or self.model is not None) and self.probe is not None \
            and self.probe.data.info.is_image
        if kind == "Conv2d" and has_model and not (self._visible("filters_dock") or self._visible("feature_maps_dock")):
            self.docks["filters_dock"].raise_()  # show what was asked for
            self._push_options()
        self.filters.select_layer(ids[0])
        self.feature_maps.select_layer(ids[0])

    def _on_view_layer_selected(self, lid: str) -> None:
        self.w.canvas.select_ids([lid])

    def _on_evaluation_sample(self, position: int) -> None:
        idx = getattr(self, "_misclassified", None)
        if idx is not None and 0 <= position < len(idx):
            self.feature_maps.set_current_index(int(idx[position]))
            self.docks["feature_maps_dock"].raise_()
            self._push_options()

    # ---- session events --------------------------------------------------------------------
    def _on_session_state(self, state: str) -> None:
        if state == "starting":
            return
        self._set_state(state)

    def _set_state(self, state: str) -> None:
        self._state = state
        tb_state = {"starting": "running", "error": "stopped"}.get(state, state)
        try:
            self.toolbar.set_state(tb_state)
        except ValueError:
            self.toolbar.set_state("idle")

    def _on_session_finished(self, result) -> None:
        tr = self.session.trainer
        if tr is not None:
            self.model = tr.model
        snap = self.session.last_snapshot
        if snap is not None and snap.state == "diverged":
            self.w.status(f"Training diverged: {snap.message}", 0)
            self._message("Training diverged", snap.message)
        elif snap is not None and snap.state == "finished":
            self.w.status(f"Finished {snap.epoch} epochs - validation accuracy {snap.val_acc:.1%}", 0)

    def _on_session_failed(self, message: str) -> None:
        self._set_state("idle")
        self.w.status(f"Training failed: {message}", 0)
        self._message("Training failed", message)

    def _on_session_notice(self, message: str) -> None:
        self.w.status(message, 0)
        self._message("Training moved to the CPU", message)

    def _message(self, title: str, text: str) -> None:
        """A non-modal warning: it never blocks the window or a test."""
        self.last_message = f"{title}: {text}"
        box = QMessageBox(QMessageBox.Warning, title, text, QMessageBox.Ok, self.w)
        box.setModal(False)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.show()
        self._box = box

    # ---- edits while a run exists ----------------------------------------------------------------
    def _on_spec_changed(self) -> None:
        spec = self.w.document.spec
        if self.model_spec is None:
            return
        if self.session.running:
            live = {f: getattr(spec.training, f) for f in LIVE_FIELDS
                    if getattr(spec.training, f) != getattr(self.model_spec.training, f)}
            if live:
                self.session.set_hyper(**live)
                for f, v in live.items():
                    setattr(self.model_spec.training, f, v)
                self.w.status("Applied " + ", ".join(f"{k} = {v:g}" for k, v in live.items()) + " to the running training")
        if self.run_key is not None and structure_key(spec) != self.run_key:
            self._on_structure_changed()

    def _on_structure_changed(self) -> None:
        if not self.session.running:
            return  # the next Train starts from the new design
        trainer = self.session.trainer
        if trainer is None or trainer.step == 0:
            self.session.shutdown()
            self._start(paused=False)
            return
        if self._asked_restart:
            return
        self._asked_restart = True
        self.session.pause()
        if self.ask_restart():
            self.session.shutdown()
            self._start(paused=False)
        else:
            self.w.status("Training paused on the old design - press Train to continue it, or Reset")

    def ask_restart(self) -> bool:
        """Ask whether to restart training with the edited design (tests may replace this)."""
        box = QMessageBox(QMessageBox.Question, "Design changed",
                          "The network changed while it was training.\nRestart training with the new design?",
                          QMessageBox.Yes | QMessageBox.No, self.w)
        box.setDefaultButton(QMessageBox.Yes)
        return box.exec() == QMessageBox.Yes

    # ---- devices and export ----------------------------------------------------------------
    def _on_engine_ready(self, *_args) -> None:
        from engine.trainer import available_devices

        self._fill_devices(["auto", *available_devices()])
        if hasattr(self.session, "warm_up"):
            self.session.warm_up()  # the worker process imports torch while the user edits

    def _on_device_chosen(self, device: str) -> None:
        if device != self.w.document.spec.training.device:
            self.w.document.set_training("device", device)
        for act in self.device_group.actions():
            act.setChecked(act.data() == device)

    def current_model(self):
        tr = self.session.trainer
        return tr.model if tr is not None else self.model

    def export_weights(self, path: str | None = None) -> bool:
        """Write the current model's weights; pauses a running session while it copies them."""
        model = self.current_model()
        if model is None:
            self._message("Nothing to export", "Train the network first - there are no weights yet.")
            return False
        if path is None:
            name = (self.model_spec.name if self.model_spec else "model") or "model"
            path, _ = QFileDialog.getSaveFileName(self.w, "Export weights", f"{name}.safetensors", WEIGHT_FORMATS)
            if not path:
                return False
        was_running = self.session.running and self.session.state == "running"
        if was_running:
            self.session.pause()
            from app.session import wait_until

            wait_until(lambda: self.session.state == "paused" or not self.session.running, 2.0)
        try:
            from engine import export

            export.export(model, self.model_spec, path)
        except (ValueError, OSError, RuntimeError) as exc:
            self._message("Export failed", f"{path}:\n{exc}")
            return False
        finally:
            if was_running:
                self.session.resume()
        self.w.status(f"Exported weights to {path}")
        return True
