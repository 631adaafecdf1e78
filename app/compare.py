"""Compare runs (issue 12) in the main window: the Compare dock, its toolbar action and its run.

The sweep is checked and expanded here with engine.variants (plain data, no torch), saved in the
design (``spec.compare``, an undoable edit) and trained in the worker as one comparison
(engine.compare_host via app.session.RunSession.start_comparison). Each variant's snapshots
arrive on ``session.variant_snapshot``; a timer draws one part of the dock per tick (curves,
tiles, table + scatter), each only when something new arrived, so eight or sixteen variants
cost the event loop no more than one run's views do.

"Use this variant" replaces the design by the variant (undoable) and asks the worker for the
variant's weights; the next Train of that design starts from them (TrainingController.initial_state).
"""
from __future__ import annotations

import math
import os
import time

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog

from app.run import structure_key
from engine import protocol as P
from engine import spec as S
from engine.sweep_spec import Axis, Sweep, to_dict
from engine.variants import (
    MAX_VARIANTS,
    SweepError,
    check_sweep,
    expand,
    format_value,
    pareto_front,
    setting_label,
    summarize,
    sweepable_settings,
)

TICK_MS = 50
INSPECT_DOCKS = ("boundary_dock", "feature_maps_dock")  # the first shown comes forward when a variant is inspected
TABLE_INTERVAL_S = 0.5  # the table and scatter are redrawn at most twice a second
CURVES_INTERVAL_S = 0.3  # the curves at most ~3 times a second: each redraw repaints both plots' axes
_TRUE = {"true", "yes", "on", "with", "1"}
_FALSE = {"false", "no", "off", "without", "0"}


def parse_values(text: str, item: dict) -> list:
    """The values typed for a setting ("0.01, 0.1, 1"), typed as the setting wants.

    Raises ValueError naming the bad value and what to write instead."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise ValueError(f"{item['label']}: type the values to try, separated by commas (e.g. 0.01, 0.1, 1)")
    out = []
    for p in parts:
        kind = item["type"]
        try:
            if kind == "float":
                out.append(float(p))
            elif kind == "int":
                v = float(p)
                if not v.is_integer():
                    raise ValueError
                out.append(int(v))
            elif kind == "bool":
                if p.lower() not in _TRUE | _FALSE:
                    raise ValueError
                out.append(p.lower() in _TRUE)
            else:
                choices = {str(c).lower(): c for c in item.get("choices", ())}
                if choices and p.lower() not in choices:
                    raise ValueError
                out.append(choices.get(p.lower(), p))
        except ValueError:
            want = {"float": "a number such as 0.1", "int": "a whole number", "bool": "true or false"}.get(
                kind, "one of " + ", ".join(map(str, item.get("choices", ()))))
            raise ValueError(f"{item['label']}: {p!r} is not {want}") from None
    return out


def sweep_text(values: list, setting: str) -> str:
    return ", ".join(format_value(setting, v) if not isinstance(v, bool) else ("true" if v else "false") for v in values)


class CompareController(QObject):
    """Adds the Compare dock and toolbar action to a MainWindow that has a TrainingController."""

    def __init__(self, window):
        super().__init__(window)
        self.w = window
        window.compare = self
        self.training = window.training
        self.session = self.training.session
        self.view = None  # built after the first frame (MainWindow.later)
        # in front of the Curves dock when shown: it draws every variant's curves itself
        self.dock = window.add_dock(None, "Compare", Qt.BottomDockWidgetArea, "compare_dock",
                                    tabify_with="curves_dock")
        self.dock.hide()
        self.action = QAction("Compare", window)
        self.action.setToolTip("Compare variants of this design side by side: vary one or two settings, train all at once")
        self.action.triggered.connect(lambda _c=False: self.show())
        window.actions["compare"] = self.action
        self.training.toolbar.addSeparator()
        self.training.toolbar.addAction(self.action)
        window.menus["training"].addAction(self.action)

        self.run_id: int | None = None
        self.variants: list = []
        self.snaps: dict[int, P.Snapshot] = {}
        self.state = "idle"  # idle | starting | running | paused | ended | error
        self.cost = "macs"
        self._dirty = {"curves": set(), "tiles": set(), "table": False}
        self._drawn: dict[int, object] = {}  # variant -> the picture array last drawn
        self._drawn_at = {"table": 0.0, "curves": 0.0}
        self._part = 0
        self._seen_sweep = None
        self._use_pending: int | None = None
        self._inspect_pending: int | None = None
        self.inspected: int | None = None  # the variant the usual views show (a paused run of its weights)
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        window.later(self._build_view)

    def _build_view(self) -> None:
        from widgets.views.compare import CompareView  # pyqtgraph

        window = self.w
        v = self.view = CompareView()
        window.set_dock_widget(self.dock, v)
        v.train_requested.connect(self.train_all)
        v.pause_requested.connect(self.pause)
        v.step_requested.connect(lambda: self._control("step"))
        v.stop_requested.connect(lambda: self._control("stop"))
        v.stop_variant_requested.connect(self.stop_variant)
        v.use_variant_requested.connect(self.use_variant)
        v.inspect_variant_requested.connect(self.inspect_variant)
        v.variant_selected.connect(self._on_view_variant_selected)
        v.export_csv_requested.connect(lambda: self.export_csv())
        v.export_png_requested.connect(lambda: self.export_png())
        v.cost_changed.connect(self._on_view_cost_changed)
        self.session.variant_snapshot.connect(self._on_session_variant_snapshot)
        self.session.comparison_event.connect(self._on_session_comparison_event)
        window.document.spec_changed.connect(self._on_document_spec_changed)
        self._on_document_spec_changed()

    def show(self) -> None:
        """Bring the dock forward with room for its grid, curves and table (the canvas gives way)."""
        self.w.finish_building()
        first = not self.dock.isVisible()
        self.dock.show()
        self.dock.raise_()
        if first:
            QTimer.singleShot(0, self._make_room)  # once the dock is laid out in its place

    def _make_room(self) -> None:
        w = self.w
        w.resizeDocks([self.dock], [max(420, int(w.height() * 0.62))], Qt.Vertical)
        w.resizeDocks([self.dock], [max(640, int(w.width() * 0.5))], Qt.Horizontal)

    def shutdown(self) -> None:
        self.timer.stop()

    # ---- the sweep ---------------------------------------------------------------------------
    def _on_document_spec_changed(self) -> None:
        spec = self.w.document.spec
        self.items = {it["setting"]: it for it in sweepable_settings(spec)}
        self.view.set_settings(list(self.items.values()))
        saved = to_dict(spec.compare) if spec.compare is not None else None
        if saved != self._seen_sweep:  # a design opened (or an undo): show its comparison
            self._seen_sweep = saved
            if spec.compare is not None:
                self.view.set_axes([(a.setting, sweep_text(a.values, a.setting)) for a in spec.compare.axes])

    def sweep_from(self, axes: list[tuple[str, str]]) -> Sweep:
        """The typed sweep of the dock's fields; ValueError names the field to fix."""
        if not axes:
            raise ValueError("Pick a setting to vary")
        out = Sweep()
        for setting, text in axes:
            item = self.items.get(setting)
            if item is None:
                raise ValueError(f"{setting} is not a setting of this design any more - pick another")
            out.axes.append(Axis(setting, parse_values(text, item)))
        return out

    def train_all(self, axes: list[tuple[str, str]] | None = None) -> bool:
        """Check the sweep, save it with the design and train every variant; False (and the reason shown) if not."""
        w = self.w
        w.finish_building()
        try:
            sweep = self.sweep_from(self.view.axes() if axes is None else axes)
        except ValueError as exc:
            return self._refuse(str(exc))
        spec = w.document.spec
        problems = check_sweep(spec, sweep, MAX_VARIANTS)
        if problems:
            return self._refuse(problems[-1].message if problems[-1].where == "compare" else str(problems[0]))
        if w.data_error:
            return self._refuse(f"Cannot load the dataset: {w.data_error}")
        try:
            variants = expand(spec, sweep, data_info=w.data_info)
        except SweepError as exc:
            return self._refuse(str(exc))
        after = spec.copy()
        after.compare = sweep
        names = " and ".join(setting_label(a.setting) for a in sweep.axes)
        w.document.apply(after, f"Compare {names}")  # undoable; saved with the design
        self._seen_sweep = to_dict(sweep)
        self.view.show_problem("")
        self._close()
        self.variants = variants
        self.snaps.clear()
        self._drawn.clear()
        columns = [setting_label(a.setting) for a in sweep.axes]
        self.view.begin([v.label for v in variants], [v.cell for v in variants], columns)
        self._values_cells = {v.index: [(format_value(a.setting, v.values[a.setting]),
                                         v.values[a.setting] if isinstance(v.values[a.setting], (int, float))
                                         else str(v.values[a.setting])) for a in sweep.axes] for v in variants}
        self._dirty["table"] = True
        spec_json = S.dumps(after)
        device = self.training.toolbar.device() or after.training.device
        self.run_id = self.session.start_comparison(spec_json, device=device)
        self._set_state("starting")
        self.show()
        self.w.status(f"Training {len(variants)} variants of {names}...")
        return True

    def _refuse(self, text: str) -> bool:
        self.view.show_problem(text)
        self.w.status(f"Cannot compare: {text}")
        return False

    # ---- control -------------------------------------------------------------------------------
    def _control(self, action: str) -> None:
        if self.run_id is not None and self.state in ("starting", "running", "paused"):
            self.session.control(self.run_id, action)

    def pause(self) -> None:
        self._control("resume" if self.state == "paused" else "pause")

    def control_from_toolbar(self, action: str) -> bool:
        """The main toolbar's Train (resume), Pause, Step or Stop, when no single run is going:
        True if the comparison took it."""
        if self.run_id is None or self.state not in ("starting", "running", "paused"):
            return False
        if action == "train":  # Train on a paused comparison resumes it; while running it has nothing to do
            action = "resume" if self.state == "paused" else ""
        if action:
            self._control(action)
        return True

    def stop_variant(self, index: int) -> None:
        if self.run_id is not None:
            self.session.send(P.StopVariant(self.run_id, index))
            self.w.status(f"Stopping {self.variants[index].label}; the other variants go on")

    def _close(self) -> None:
        if self.run_id is not None:
            self.session.close_run(self.run_id)
            self.run_id = None
        self.timer.stop()

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        self.view.set_running(state in ("starting", "running", "paused"), paused=state == "paused")
        if not self.training.model.active:  # the toolbar follows the comparison while no single run goes
            self.training.toolbar.set_state({"starting": "running", "running": "running", "paused": "paused",
                                             "ended": "finished", "error": "stopped"}.get(state, "idle"))

    # ---- "Use this variant" ------------------------------------------------------------------
    def use_variant(self, index: int) -> None:
        """Make variant ``index`` the design (undoable); its trained weights follow when they arrive."""
        v = self.variants[index]
        spec = v.spec.copy()
        base = self.w.document.spec
        spec.compare, spec.name = base.compare, base.name  # the comparison stays with the design
        for lay in spec.layers:  # keep where the user put the layers
            old = base.layer(lay.id)
            if old is not None:
                lay.pos = old.pos
        self.w.document.apply(spec, f"Use variant {v.label}")
        if self.run_id is not None:
            self._use_pending = index
            self.session.send(P.FetchVariantWeights(self.run_id, index))
        self.w.status(f"The design is now {v.label} - Train continues from its weights")

    # ---- "Inspect" ---------------------------------------------------------------------------------
    def inspect_variant(self, index: int) -> None:
        """Show variant ``index`` in every usual view: the worker sends its weights as they are now, and
        a paused run of them (with the variant's history) feeds the views; the design is not changed."""
        if self.run_id is None or index >= len(self.variants):
            return
        self._inspect_pending = index
        self.session.send(P.FetchVariantWeights(self.run_id, index))
        self.w.status(f"Loading {self.variants[index].label} into the views...")

    def _on_view_variant_selected(self, index: int) -> None:
        if self.state in ("paused", "ended") and index != self.inspected:  # nothing moves: a click shows it
            self.inspect_variant(index)

    def _show_inspected(self, index: int, weights: dict) -> None:
        v = self.variants[index]
        snap = self.snaps.get(index)
        # its curves and counters come along (engine.run_state); its optimiser state stays in the comparison
        state = {"history": snap.history, "epoch": snap.epoch, "step": snap.step} if snap is not None else {}
        epoch = f" at epoch {snap.epoch}" if snap is not None else ""
        self.training.open_state(v.spec, weights, state, note=f"Every view shows {v.label}{epoch}. "
                                 "Use this variant makes it the design")
        self.inspected = index
        front = [n for n in INSPECT_DOCKS if n in self.w.docks and self.w.docks[n].isVisible()]
        if front:
            self.w.raise_docks(front[0])

    # ---- events ----------------------------------------------------------------------------------
    def _on_session_variant_snapshot(self, run_id: int, index: int, snap: P.Snapshot) -> None:
        if run_id != self.run_id or index >= len(self.variants):
            return
        self.snaps[index] = snap
        self._dirty["curves"].add(index)
        self._dirty["tiles"].add(index)
        self._dirty["table"] = True
        if self.state == "starting" or (snap.state in ("running", "paused") and self.state in ("running", "paused")):
            running = [s.state for s in self.snaps.values()]
            self._set_state("paused" if "paused" in running and "running" not in running else "running")
        if not self.timer.isActive():
            self.timer.start()

    def _on_session_comparison_event(self, ev) -> None:
        if ev.run_id != self.run_id:
            return
        if isinstance(ev, P.ComparisonStarted):
            self.w.status(f"Comparing {len(ev.labels)} variants on {ev.device}")
        elif isinstance(ev, P.ComparisonEnded):
            self._set_state("ended")
            self._dirty["table"] = True
            self.flush()
            self.view.fit_columns()
            best = [summarize(r.history)["best_val_acc"] for r in ev.results]
            ok = [b for b in best if math.isfinite(b)]
            self.w.status(f"Comparison done - best validation accuracy {max(ok):.1%}" if ok else "Comparison done", 0)
        elif isinstance(ev, P.ComparisonFailed):
            self._set_state("error")
            self.view.show_problem(f"The comparison failed: {ev.message}")
            self.w.status(f"The comparison failed: {ev.message}", 0)
        elif isinstance(ev, P.VariantWeights):
            if ev.index == self._use_pending:
                self._use_pending = None
                spec = self.w.document.spec
                self.training.initial_state = (structure_key(spec), ev.state)
            if ev.index == self._inspect_pending:
                self._inspect_pending = None
                self._show_inspected(ev.index, ev.state)

    def _on_view_cost_changed(self, cost: str) -> None:
        self.cost = cost
        self._dirty["table"] = True
        self._draw_table()

    # ---- drawing -------------------------------------------------------------------------------
    def _tick(self) -> None:
        """One part per tick: curves, tiles, then the table and scatter (at most twice a second)."""
        for _ in range(3):
            part = ("curves", "tiles", "table")[self._part % 3]
            self._part += 1
            if part in ("table", "curves"):
                wait = TABLE_INTERVAL_S if part == "table" else CURVES_INTERVAL_S
                if self._dirty[part] and time.perf_counter() - self._drawn_at[part] >= wait:
                    self._drawn_at[part] = time.perf_counter()
                    getattr(self, f"_draw_{part}")()
                    return
            elif self._dirty[part]:
                getattr(self, f"_draw_{part}")()
                return
        if not any(self._dirty.values()):
            self.timer.stop()

    def flush(self) -> None:
        self._draw_curves()
        self._draw_tiles()
        self._draw_table()

    def _draw_curves(self) -> None:
        dirty, self._dirty["curves"] = self._dirty["curves"], set()
        for i in dirty:
            h = self.snaps[i].history
            if "epoch" in h and len(h["epoch"]):
                self.view.set_history(i, h["epoch"], h["val_loss"], h["val_acc"])

    def _draw_tiles(self) -> None:
        dirty, self._dirty["tiles"] = self._dirty["tiles"], set()
        for i in dirty:
            snap = self.snaps[i]
            self.view.set_state(i, snap.state)
            ex = snap.extras or {}
            if ex.get("boundary") is not None:
                if self._drawn.get(i) is not ex["boundary"]:  # the same array again: nothing new to draw
                    self._drawn[i] = ex["boundary"]
                    self.view.set_boundary(i, ex["boundary"])
            elif isinstance(ex.get("confusion"), dict) and self._drawn.get(i) is not ex["confusion"]:
                self._drawn[i] = ex["confusion"]
                self.view.set_confusion(i, ex["confusion"]["matrix"])

    def rows(self) -> dict[int, list]:
        """The table's cells after the label, per variant: [(text, sort value)]."""
        out = {}
        for v in self.variants:
            snap = self.snaps.get(v.index)
            s = summarize(snap.history) if snap is not None else {"best_val_acc": math.nan, "best_val_loss": math.nan,
                                                                  "best_epoch": math.nan}
            acc, loss, ep = s["best_val_acc"], s["best_val_loss"], s["best_epoch"]
            t = snap.elapsed if snap is not None else math.nan
            out[v.index] = [*self._values_cells[v.index],
                            (f"{v.params:,}", v.params), (f"{v.macs:,}", v.macs),
                            (f"{100 * acc:.1f} %" if math.isfinite(acc) else "-", acc),
                            (f"{loss:.4g}" if math.isfinite(loss) else "-", loss),
                            (f"{int(ep)}" if math.isfinite(ep) else "-", ep),
                            (f"{t:.1f}" if math.isfinite(t) else "-", t),
                            (snap.state if snap is not None else "starting", snap.state if snap is not None else "")]
        return out

    def _draw_table(self) -> None:
        self._dirty["table"] = False
        if not self.variants:
            return
        self.view.set_rows(self.rows())
        pts = []
        for v in self.variants:
            snap = self.snaps.get(v.index)
            acc = summarize(snap.history)["best_val_acc"] if snap is not None else math.nan
            pts.append((float(v.macs if self.cost == "macs" else v.params), 1.0 - acc))
        self.view.set_scatter(pts, pareto_front(pts), self.cost)

    # ---- export --------------------------------------------------------------------------------
    def export_csv(self, path: str | None = None) -> bool:
        """The table as CSV (asked for when ``path`` is None)."""
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self.w, "Export the comparison table", "comparison.csv", "CSV (*.csv)")
            if not path:
                return False
        try:
            self.view.export_csv(path)
        except OSError as exc:
            self.view.show_problem(f"Could not write {path}: {exc.strerror or exc} - choose another folder")
            return False
        self.w.status(f"Exported the comparison table to {os.path.basename(path)}")
        return True

    def export_png(self, path: str | None = None) -> bool:
        """The grid of small multiples as PNG (asked for when ``path`` is None)."""
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self.w, "Export the grid", "comparison.png", "PNG image (*.png)")
            if not path:
                return False
        if not self.view.export_png(path):
            self.view.show_problem(f"Could not write {path} - choose another folder")
            return False
        self.w.status(f"Exported the grid to {os.path.basename(path)}")
        return True
