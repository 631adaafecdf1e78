"""The analysis views in the main window: embedding, ROC/PR, loss landscape, the what-if
probe, ablation and each layer's cost.

Live parts (PCA embedding, ROC) come with the snapshots (engine.probes options "embedding",
"roc") and are drawn by AnalysisPresenter. On-demand parts are engine.protocol.Analyze jobs
run by the worker (engine.jobs); AnalysisController sends them and routes their progress and
answers to the views and the canvas. The GUI holds no torch: everything arrives as numpy.
"""
from __future__ import annotations

import itertools

from PySide6.QtCore import QObject

from app.presenters import NewParts
from app.presenters_health import Throttle
from app.run import RunModel
from engine import protocol as P


class AnalysisPresenter:
    """Draws the live embedding (PCA) and the ROC / precision-recall curves from each snapshot."""

    def __init__(self, model: RunModel, views):
        self.model, self.v = model, views
        self.parts = NewParts()
        self._throttle = Throttle()  # the embedding and the curves move slowly; each redraw costs 5-10 ms
        model.events.run.connect(self._on_model_run)
        model.events.data.connect(self._on_model_data)

    def _on_model_run(self, run) -> None:
        self.parts.forget()
        self.v.embedding.clear()
        self.v.roc.clear()
        self.v.landscape.clear()
        if run is not None:
            ids = [lay.id for lay in run.spec.layers if lay.kind not in ("Output",)]
            self.v.embedding.set_layers(ids, [f"{lid} ({lay.kind})" for lid, lay in
                                              ((lay.id, lay) for lay in run.spec.layers if lay.kind != "Output")])

    def _on_model_data(self, data: P.RunData) -> None:
        info = data.info
        self.v.embedding.set_data(data.y_val, list(info.class_names), data.val_images,
                                  list(info.feature_names) if not info.is_image else None)

    def render(self, snap: P.Snapshot) -> None:
        ex, run = snap.extras, self.model.run
        if run is None or run.data is None:
            return
        if not self._throttle.due(snap):
            return
        emb = ex.get("embedding")
        if self.parts.new("embedding", emb):
            self.v.embedding.set_points(emb["points"], emb["index"], "PCA", emb["layer"], emb.get("ratio"),
                                        emb.get("features"))
        if self.parts.new("roc", ex.get("roc")):
            self.v.roc.set_curves(ex["roc"], list(run.data.info.class_names))


class AnalysisController(QObject):
    """Sends the on-demand analyses and shows their progress and results."""

    def __init__(self, training):
        super().__init__(training)
        self.t = training
        self.model: RunModel = training.model
        self.session = training.session
        self.v = training.views
        self.canvas = training.w.canvas
        self._ids = itertools.count(1)
        self.jobs: dict[int, str] = {}  # job id -> kind, while it runs
        self.running: dict[str, int] = {}  # kind -> job id (t-SNE and landscape: one at a time)
        self.last: dict[str, P.AnalysisReady] = {}  # the latest answer of each kind (tests read it)
        self._probe_busy = False
        self._probe_next: dict | None = None
        self.session.analysis_event.connect(self._on_session_event)
        self.model.events.run.connect(self._on_model_run)
        self.model.events.state.connect(self._on_model_state)
        v = self.v
        v.embedding.tsne_requested.connect(lambda layer: self.start("tsne", {"layer": layer}))
        v.embedding.cancel_requested.connect(lambda: self.cancel("tsne"))
        v.landscape.compute_requested.connect(lambda: self.start("landscape", {"along": v.landscape.along()}))
        v.landscape.cancel_requested.connect(lambda: self.cancel("landscape"))
        v.boundary.probe_moved.connect(self._on_boundary_probe_moved)
        v.feature_maps.sample_changed.connect(self._on_feature_sample_changed)
        self.canvas.ablation_requested.connect(lambda target: self.ablate(target))

    # ---- commands ---------------------------------------------------------------------------
    def start(self, kind: str, params: dict) -> int | None:
        run = self.model.run
        if run is None or run.data is None:
            self.t.w.status(f"Train the network first - the {kind} needs a model")
            return None
        if kind in self.running:
            return self.running[kind]
        job = next(self._ids)
        self.jobs[job] = kind
        if kind in ("tsne", "landscape"):
            self.running[kind] = job
            self._job_row(kind).set_running(True, "starting...")
        self.session.send(P.Analyze(run.run_id, job, kind, dict(params)))
        return job

    def cancel(self, kind: str) -> None:
        job = self.running.get(kind)
        if job is not None and self.model.run is not None:
            self.session.send(P.CancelAnalysis(self.model.run.run_id, job))

    def probe(self, params: dict) -> None:
        """Ask for every layer's activation for a point / sample; only the latest request waits."""
        if self._probe_busy:
            self._probe_next = params
            return
        if self.start("probe", params) is not None:
            self._probe_busy = True

    def ablate(self, target: dict) -> None:
        self.start("ablate", target if target.get("clear") else {"target": target, "on": target.get("on")})

    def _job_row(self, kind: str):
        return self.v.embedding.job if kind == "tsne" else self.v.landscape.job

    # ---- view and model events ----------------------------------------------------------------
    def _on_boundary_probe_moved(self, x: float, y: float) -> None:
        if self.model.run is not None and self.model.run.data is not None:
            self.probe({"point": [x, y], "dims": self.model.view_options.get("dims")})

    def _on_feature_sample_changed(self, _sample) -> None:
        run = self.model.run
        if run is None or run.data is None or not run.data.info.is_image:
            return
        sample = self.t.options._current_sample()  # standardised like the worker's data
        if sample is not None:
            self.probe({"sample": sample})

    def _on_model_run(self, run) -> None:
        self.jobs.clear()
        self.running.clear()
        self.last.clear()
        self._probe_busy, self._probe_next = False, None
        self.canvas.set_probe_values({})
        self.canvas.set_ablations([])
        self.canvas.set_layer_costs({})
        self.canvas.live_model = False

    def _on_model_state(self, state: str) -> None:
        self.canvas.live_model = self.model.run is not None and self.model.run.data is not None
        if state in ("finished", "stopped"):
            self.start("cost", {})  # measured once per run end, never per step

    def _on_session_event(self, ev) -> None:
        run = self.model.run
        if run is None or ev.run_id != run.run_id or ev.job_id not in self.jobs:
            return
        if isinstance(ev, P.AnalysisProgress):
            if ev.kind in ("tsne", "landscape"):
                self._job_row(ev.kind).set_progress(ev.fraction, ev.message)
            return
        self.jobs.pop(ev.job_id, None)
        if self.running.get(ev.kind) == ev.job_id:
            del self.running[ev.kind]
        self.last[ev.kind] = ev
        getattr(self, f"_on_{ev.kind}_ready")(ev)

    def _on_tsne_ready(self, ev) -> None:
        row = self.v.embedding.job
        if ev.error:
            row.set_running(False, "t-SNE cancelled" if ev.error == "cancelled" else f"t-SNE failed: {ev.error}")
            return
        row.set_running(False, "t-SNE done")
        r = ev.result
        self.v.embedding.show_tsne(r["points"], r["index"], r["layer"])

    def _on_landscape_ready(self, ev) -> None:
        row = self.v.landscape.job
        if ev.error:
            row.set_running(False, "cancelled" if ev.error == "cancelled" else f"failed: {ev.error}")
            return
        row.set_running(False, f"computed at step {ev.result.get('step', 0)}")
        self.v.landscape.set_result(ev.result)

    def _on_probe_ready(self, ev) -> None:
        self._probe_busy = False
        if not ev.error:
            self.canvas.set_probe_values(ev.result["activations"])
        elif ev.error:
            self.t.w.status(f"Probe: {ev.error}")
        if self._probe_next is not None:
            nxt, self._probe_next = self._probe_next, None
            self.probe(nxt)

    def _on_ablate_ready(self, ev) -> None:
        if ev.error:
            self.t.w.status(f"Ablation: {ev.error}")
            self.t._message("Cannot switch that off", ev.error)
            return
        r = ev.result
        run = self.model.run
        run.ablations = [tuple(k) for k in r["masks"]]
        delta = 100 * r["delta"]
        text = f"accuracy {delta:+.1f} %".replace("+-", "-")
        self.canvas.set_ablations(run.ablations, text)
        verb = "switched off" if r["off"] else "switched on again"
        self.t.w.status(f"{r['label']} {verb}: validation {text} ({100 * r['acc_before']:.1f} % → "
                        f"{100 * r['acc_after']:.1f} %)", 0)

    def _on_cost_ready(self, ev) -> None:
        if not ev.error:
            self.canvas.set_layer_costs(ev.result["layers"])

