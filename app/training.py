"""Training in the main window: the commands (Train, Pause, Step, Stop, Reset, export), live
settings and structural edits while a run exists, and the wiring of session -> run model ->
presenters.

The GUI process holds no torch: the worker (engine.worker) loads the data, owns the model,
computes what the views show and writes exported weights; here we only send commands and
route the answers (app.session -> app.run.RunModel -> app.presenters).
"""
from __future__ import annotations

import os

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.analysis import AnalysisController, AnalysisPresenter
from app.presenters import BoundaryPresenter, InsightPresenter, NetworkPresenter, ProgressPresenter, RenderScheduler
from app.presenters_health import DistributionsPresenter, GradientsPresenter, HealthPresenter
from app.presenters_sequence import SequencePresenter
from app.run import LIVE_FIELDS, Run, RunModel, structure_key
from app.session import RunSession
from app.timeline import TimelineController
from app.view_options import ViewOptionsTracker
from engine import protocol as P
from engine import spec as S
from engine import validation
from widgets.controls.training_bar import TrainingStatus, TrainingToolbar

WEIGHT_FORMATS = "safetensors (*.safetensors);;PyTorch state_dict (*.pt);;ONNX (*.onnx);;TorchScript (*.ts)"
DEVICE_NAMES = {"auto": "Automatic (best available)", "cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple MPS"}
# the answers to "the network changed" (ask_keep_weights)
KEEP_WEIGHTS, RESTART, CANCEL = "continue", "restart", "cancel"
KEEPABLE = ("running", "paused", "finished", "stopped")  # runs whose learned weights an edit may carry on


class TrainingController(QObject):
    """Adds training to a MainWindow: toolbar, Training menu, status, and the run channel."""

    def __init__(self, window):
        super().__init__(window)
        self.w = window
        window.training = self
        self.views = window.views
        self.session = RunSession(self)
        self.model = RunModel()
        self.last_message = ""
        self._kept_text = ""  # what the current run kept of the last one's weights (RunStarted.kept)
        self._opened_note: tuple[int, int, str] = (-1, 0, "")  # (run id, its step, status text) of open_state
        self._asked_restart = False
        self._keep_pending: tuple[int, str] | None = None  # (run id, its design's JSON) while its weights are fetched
        self._box = None
        # (app.run.structure_key, numpy state dict): the next Train of a design with that structure starts
        # from these weights ("Use this variant" in app.compare); used once
        self.initial_state: tuple[str, dict] | None = None

        self.toolbar = TrainingToolbar()
        self.toolbar.setObjectName("training_toolbar")
        window.addToolBar(Qt.TopToolBarArea, self.toolbar)
        self.status = TrainingStatus()
        window.statusBar().addPermanentWidget(self.status)
        window.engine_label.setText("Loading the trainer...")
        window.engine_label.setToolTip("torch loads in the trainer process while you edit")
        self._build_menu()
        self._connect_toolbar()
        self._on_model_state("idle")
        self.options: ViewOptionsTracker | None = None
        self.presenters: list = []
        window.later(self._build_views)  # they need the views: after the first frame (MainWindow.later)

    # ---- building -------------------------------------------------------------------------
    def _build_views(self) -> None:
        """The presenters, the view options and the analysis, autoencoder and GAN views."""
        from app.presenters_generative import install_generative  # its views import pyqtgraph

        v, window = self.views, self.w
        self.options = ViewOptionsTracker(self.model, v, self)
        self.presenters = [ProgressPresenter(self.model, self.status, v.curves), BoundaryPresenter(self.model, v.boundary),
                           NetworkPresenter(self.model, window.canvas, v.neuron),
                           InsightPresenter(self.model, v, window.canvas, self.options.visible),
                           HealthPresenter(self.model, window.canvas), GradientsPresenter(self.model, v.gradients),
                           DistributionsPresenter(self.model, v.distributions),
                           AnalysisPresenter(self.model, v),
                           SequencePresenter(self.model, v)]
        self.scheduler = RenderScheduler(self.model, self.presenters, self)
        self.analysis = AnalysisController(self)
        self.generative = install_generative(self)  # autoencoder and GAN views (app.presenters_generative)
        self.timeline = TimelineController(self)  # look back at any epoch, fork from there (app.timeline)
        self._connect()
        self.options.update()

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
        export.setStatusTip("Write the trained weights as safetensors, a PyTorch state_dict, ONNX or TorchScript")
        export.triggered.connect(lambda _c=False: self.export_weights())
        w.actions["export_weights"] = export
        file_menu = w.menus.get("file")
        if file_menu is not None:
            before = w.actions.get("quit")
            file_menu.insertAction(before, export) if before else file_menu.addAction(export)
        menu.addAction(export)
        project = QAction("PyTorch &project...", w)
        project.setStatusTip("Write the design, its data and a training script that runs with torch alone "
                             "(python train.py, or torchrun on many GPUs or machines)")
        project.triggered.connect(lambda _c=False: self.export_project())
        w.actions["export_project"] = project
        if file_menu is not None:
            sub = w.menus["export"] = file_menu.addMenu("E&xport")
            sub.addAction(project)
            if before is not None:
                file_menu.insertMenu(before, sub)
        curves_export = QAction("Export &metrics as CSV...", w)
        curves_export.triggered.connect(lambda _c=False: self._export_curves())
        menu.addAction(curves_export)

    def _export_curves(self) -> None:
        self.w.finish_building()
        self.views.curves.export_via_dialog()

    def _fill_devices(self, devices: list[str]) -> None:
        self.device_menu.clear()
        for act in self.device_group.actions():
            self.device_group.removeAction(act)
        current = self.w.document.spec.training.device
        for dev in devices:
            act = QAction(DEVICE_NAMES.get(dev, dev), self.device_menu)
            act.setCheckable(True)
            act.setData(dev)
            act.setChecked(dev == current)
            act.triggered.connect(lambda _c=False, d=dev: self._on_device_chosen(d))
            self.device_group.addAction(act)
            self.device_menu.addAction(act)
        self.toolbar.set_devices(devices, current if current in devices else "auto")

    def _connect_toolbar(self) -> None:
        tb = self.toolbar
        tb.train_requested.connect(self.train)
        tb.pause_requested.connect(self.pause)
        tb.step_requested.connect(self.step)
        tb.stop_requested.connect(self.stop)
        tb.reset_requested.connect(self.reset)
        tb.device_changed.connect(self._on_device_chosen)
        tb.pace_changed.connect(self._on_toolbar_pace_changed)

    def _connect(self) -> None:
        s, m = self.session, self.model
        s.worker_ready.connect(self._on_session_worker_ready)
        s.run_started.connect(self._on_session_run_started)
        s.weights_ready.connect(self._on_session_weights_ready)
        s.snapshot_ready.connect(m.set_snapshot)
        s.run_ended.connect(self._on_session_run_ended)
        s.run_failed.connect(self._on_session_run_failed)
        s.notice.connect(self._on_session_notice)
        s.progress.connect(self._on_session_progress)
        s.exported.connect(self._on_session_exported)
        m.events.state.connect(self._on_model_state)
        m.events.options.connect(self._on_model_options)
        m.events.snapshot.connect(self._on_model_snapshot)
        self.w.document.spec_changed.connect(self._on_spec_changed)
        self.w.engine.engine_ready.connect(lambda *_a: self.session.start_worker())  # torch loads while the user edits
        self.views.curves.export_requested.connect(self.views.curves.export_via_dialog)

    # ---- commands ------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.model.state

    @property
    def run(self) -> Run | None:
        return self.model.run

    @property
    def model_spec(self) -> S.Spec | None:
        return self.model.run.spec if self.model.run is not None else None

    def _comparison_takes(self, action: str) -> bool:
        """With no single run going, the toolbar drives a running comparison (app.compare)."""
        cmp = getattr(self.w, "compare", None)
        return not self.model.active and cmp is not None and cmp.control_from_toolbar(action)

    def train(self) -> None:
        """Start a new run, or resume the current one.

        While a run exists Resume is sent whatever state the window shows: the window hears of a
        pause a moment after the worker made it (a Step pauses after its batch, a run started by
        Step pauses once built), and a Train judged by that stale "running"/"starting" was dropped,
        so the run stayed paused (bench/reliability.py's hangs). Resuming a running run changes nothing."""
        if self._comparison_takes("train"):
            return
        if self.model.active:
            self._control("resume")
            return
        self._start(paused=False)

    def step(self) -> None:
        if self._comparison_takes("step"):
            return
        if self.model.active:
            self._control("step")
        else:
            self._start(paused=True)

    def pause(self) -> None:
        if self._comparison_takes("pause"):
            return
        if self.model.active:
            self._control("pause")

    def stop(self) -> None:
        if self._comparison_takes("stop"):
            return
        if self.model.state == "starting":  # still reading its data: drop it, the worker stops reading
            run = self.model.run
            self.session.close_run(run.run_id)
            self.model.set_cancelled(run.run_id)
            self.w.status("Stopped before training began")
        elif self.model.active:
            self._control("stop")

    def _control(self, action: str) -> None:
        self.session.control(self.model.run.run_id, action)

    def reset(self) -> None:
        """Forget the trained model and clear the views (the design is untouched)."""
        self._close_run()
        self.model.clear()

    def shutdown(self) -> None:
        """The window is closing: end the worker at once (a run being closed has nothing to keep)."""
        self.session.close()

    def _close_run(self) -> None:
        if self.model.run is not None:
            self.session.close_run(self.model.run.run_id)

    def _start(self, paused: bool, keep_from: tuple[dict, str] | None = None, start_epoch: int = 0) -> None:
        """Start a new run of the document's design; ``keep_from`` = (numpy weights, their design's
        JSON): the new model keeps what fits of them (engine.weight_transfer)."""
        w = self.w
        w.finish_building()  # Train pressed before the views were built: they are needed now
        spec = w.document.spec.copy()
        problems = validation.errors(validation.validate(spec, w.data_info))
        if problems:
            text = "\n".join(f"- {p}" for p in problems[:12])
            w.status(f"Cannot train: {problems[0]}")
            self._message("Cannot train this design yet", f"Fix these first:\n{text}")
            return
        if w.data_error:
            w.status(f"Cannot load the dataset: {w.data_error}")
            self._message("Cannot load the dataset", w.data_error)
            return
        self._close_run()
        self.w.statusBar().clearMessage()  # "Finished ..." of the last run no longer applies
        self._asked_restart = False
        self._keep_pending = None
        self.options.update()
        device = self.toolbar.device() or spec.training.device
        keep_state, old_json = keep_from if keep_from is not None else (None, "")
        pending, self.initial_state = self.initial_state, None  # "Use this variant" (app/compare.py)
        state = pending[1] if pending is not None and pending[0] == structure_key(spec) else None
        run_id = self.session.start_run(S.dumps(spec), device=device, paused=paused,
                                        view_options=self.model.view_options, initial_state=state,
                                        keep_from=keep_state, keep_from_spec=old_json, start_epoch=start_epoch)
        self.model.begin(Run(run_id, spec, structure_key(spec)))
        self._apply_pace(run_id)

    def open_state(self, spec: S.Spec, weights: dict, run_state: dict, note: str = "") -> int:
        """Start a paused run of ``spec`` from saved weights and state (engine.run_state: a run file, an
        inspected variant) - no batch is trained; Train goes on from there. Returns the run id.
        ``note`` is shown in the status bar, also when the run has no epochs left and ends at once."""
        self.w.finish_building()
        self._close_run()
        self.options.update()
        device = self.toolbar.device() or spec.training.device
        run_id = self.session.start_run(S.dumps(spec), device=device, paused=True, view_options=self.model.view_options,
                                        initial_state=weights, run_state=run_state)
        self.model.begin(Run(run_id, spec, structure_key(spec)))
        self._apply_pace(run_id)
        self._opened_note = (run_id, int(run_state.get("step", 0)), note)
        if note:
            self.w.status(note, 0)
        return run_id

    def _apply_pace(self, run_id: int) -> None:
        cap, slow = self.toolbar.pace()
        if cap or slow:  # applied as soon as the worker has built the run
            self.session.send(P.SetPace(run_id, cap, slow))

    def _on_toolbar_pace_changed(self, epochs_per_s: float, slow_motion: bool) -> None:
        if self.model.active:
            self.session.send(P.SetPace(self.model.run.run_id, epochs_per_s, slow_motion))

    # ---- session events ------------------------------------------------------------------------
    def _on_session_run_started(self, ev: P.RunStarted) -> None:
        self.model.set_started(ev.run_id, ev.device, ev.data)
        self._kept_text = ""
        if ev.kept is not None and self.model.run is not None and self.model.run.run_id == ev.run_id:
            self._kept_text = ev.kept.summary()
            self.w.status(self._kept_text, 0)  # stays until the next message: what the new run started from

    def _on_session_worker_ready(self, device: str, devices: tuple) -> None:
        self._fill_devices(["auto", *devices])
        self.status.set_device(device)
        self.w.engine_label.setText(f"Engine ready - {device}")

    def _on_session_run_ended(self, ev: P.RunEnded) -> None:
        self.model.set_ended(ev.run_id, ev.result, ev.snapshot)
        if self.model.run is None or self.model.run.run_id != ev.run_id:
            return
        snap = ev.snapshot
        if snap is not None and snap.state == "diverged":
            self.w.status(f"Training diverged: {snap.message}", 0)
            self._message("Training diverged", snap.message)
        elif snap is not None and snap.state == "finished":
            data = self.model.data
            if data is not None and data.info.task == "regression":
                measure = f"validation R² {snap.val_acc:.1%}"
            elif snap.val_acc == snap.val_acc:  # NaN: autoencoders and GANs have no accuracy
                measure = f"validation accuracy {snap.val_acc:.1%}"
            else:
                measure = f"validation loss {snap.val_loss:.4f}"
            kept = f" - {self._kept_text}" if self._kept_text else ""  # a short run must not hide what it began from
            run_id, step, note = self._opened_note
            if run_id == ev.run_id and snap.step == step and note:  # opened at its end: nothing new to say
                self.w.status(note, 0)
            else:
                self.w.status(f"Finished {snap.epoch} epochs - {measure}{kept}", 0)

    def _on_session_run_failed(self, run_id: int, message: str) -> None:
        self.model.set_failed(run_id, message)
        self.w.status(f"Training failed: {message}", 0)
        self._message("Training failed", message)

    def _on_session_notice(self, _run_id: int, message: str) -> None:
        self.w.status(message, 0)
        self._message("Training moved to the CPU" if "CPU" in message else "Training", message)

    def _on_session_progress(self, run_id: int, what: str, done: int, total: int) -> None:
        if self.model.run is not None and self.model.run.run_id == run_id:
            self.w.status(f"{what}: {done:,} of {total:,} - Stop cancels", 0 if done < total else 3000)

    def _on_session_exported(self, ev: P.Exported) -> None:
        if ev.error:
            self._message("Export failed", f"{ev.path}:\n{ev.error}")
        elif ev.kind == "project":
            self.w.status(f"Exported the PyTorch project to {ev.path} - its README.md says how to train it")
        else:
            self.w.status(f"Exported weights to {ev.path}")

    # ---- run model events ----------------------------------------------------------------------
    def _on_model_state(self, state: str) -> None:
        tb_state = {"starting": "running", "error": "stopped"}.get(state, state)
        try:
            self.toolbar.set_state(tb_state)
        except ValueError:
            self.toolbar.set_state("idle")

    def _on_model_options(self, options: dict) -> None:
        if self.model.run is not None:
            self.session.send(P.SetViewOptions(self.model.run.run_id, options))

    def _on_model_snapshot(self, snap: P.Snapshot) -> None:
        problems = snap.extras.get("problems") if snap.extras else None
        if problems:  # a view's part could not be computed: say which and why, training goes on
            part, text = next(iter(problems.items()))
            self.w.status(f"Could not compute the {part} view: {text}")

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
        run = self.model.run
        if run is None:
            return
        spec = self.w.document.spec
        if self.model.active:
            live = {f: getattr(spec.training, f) for f in LIVE_FIELDS
                    if getattr(spec.training, f) != getattr(run.spec.training, f)}
            if live:
                self.session.send(P.SetHyper(run.run_id, live))
                for f, v in live.items():
                    setattr(run.spec.training, f, v)
                self.w.status("Applied " + ", ".join(f"{k} = {v:g}" for k, v in live.items()) + " to the running training")
            if structure_key(spec) != run.key:
                self._on_structure_changed()
        elif (run.state in KEEPABLE and run.step > 0 and structure_key(spec) != run.key
              and self.w.document.undo_stack.count() > 0):
            # an edit of an ended run (the worker still holds its trained model); New and Open clear
            # the undo history: another design is no edit, and nothing is asked
            self._on_structure_changed()

    def _on_structure_changed(self) -> None:
        active = self.model.active
        if self.model.run.step == 0:
            self._start(paused=False)  # nothing learnt yet: start over on the new design
            return
        if self._asked_restart:
            return
        if active:
            self._control("pause")
        w = self.w
        problems = validation.errors(validation.validate(w.document.spec, w.data_info))
        if problems or w.data_error:  # e.g. between removing a layer and wiring its neighbours: ask once it can train
            if active:
                w.status(f"Training paused: the edited design cannot train yet - {problems[0] if problems else w.data_error}", 0)
            return
        self._asked_restart = True
        choice = self.ask_keep_weights()
        if choice == KEEP_WEIGHTS:
            self._continue_with_weights()
        elif choice == RESTART:
            self._start(paused=False)
        elif active:
            w.status("Training paused on the old design - press Train to continue it, or Reset")
        else:
            w.status("The design changed - Train starts it from scratch")

    def _continue_with_weights(self) -> None:
        """Fetch the run's weights from the worker; a new run of the edited design starts from them
        when they arrive (_on_session_weights_ready)."""
        run = self.model.run
        self._keep_pending = (run.run_id, S.dumps(run.spec))
        if not self.session.send(P.FetchWeights(run.run_id)):
            self._keep_pending = None
            self._start(paused=False)  # the worker is gone, and the weights with it
            return
        self.w.status("Fetching the learned weights...", 0)

    def _on_session_weights_ready(self, ev: P.Weights) -> None:
        pending = self._keep_pending
        if pending is None or pending[0] != ev.run_id:
            return  # someone else asked (an export, a script)
        self._keep_pending = None
        if self.model.run is None or self.model.run.run_id != ev.run_id:
            return  # reset or replaced meanwhile
        self._start(paused=False, keep_from=(ev.state, pending[1]))

    def ask_keep_weights(self) -> str:
        """Ask what to do with the edited design: KEEP_WEIGHTS (the default), RESTART or CANCEL
        (tests may replace this)."""
        when = "while it was training" if self.model.active else "after training"
        box = QMessageBox(QMessageBox.Question, "Design changed",
                          f"The network changed {when}.\n\n"
                          "Continue with the learned weights: layers whose shape did not change keep theirs, "
                          "widened layers keep their old units, new layers start fresh (the optimiser restarts).\n\n"
                          "Restart from scratch: every layer starts from new random weights.",
                          QMessageBox.NoButton, self.w)
        keep = box.addButton("Continue with the learned weights", QMessageBox.AcceptRole)
        restart = box.addButton("Restart from scratch", QMessageBox.DestructiveRole)
        box.addButton(QMessageBox.Cancel)
        box.setDefaultButton(keep)
        box.exec()
        clicked = box.clickedButton()
        return KEEP_WEIGHTS if clicked is keep else RESTART if clicked is restart else CANCEL

    # ---- devices and export ----------------------------------------------------------------
    def _on_device_chosen(self, device: str) -> None:
        if device != self.w.document.spec.training.device:
            self.w.document.set_training("device", device)
        for act in self.device_group.actions():
            act.setChecked(act.data() == device)

    def export_weights(self, path: str | None = None) -> bool:
        """Ask the worker to write the current weights (it does so between two batches); the
        outcome arrives as a status message, or a warning naming the file and the reason."""
        run = self.model.run
        if run is None or run.data is None:
            self._message("Nothing to export", "Train the network first - there are no weights yet.")
            return False
        if path is None:
            name = run.spec.name or "model"
            path, _ = QFileDialog.getSaveFileName(self.w, "Export weights", f"{name}.safetensors", WEIGHT_FORMATS)
            if not path:
                return False
        from engine.export import check_path

        try:
            check_path(os.fspath(path))
        except ValueError as exc:
            self._message("Export failed", f"{path}:\n{exc}")
            return False
        self.session.send(P.ExportWeights(run.run_id, os.fspath(path)))
        return True

    def export_project(self, outdir: str | None = None) -> bool:
        """Ask the worker to write the design as a PyTorch project into ``outdir`` (asked for when None):
        with the current run's weights and optimiser state, or the initial weights before any training.
        The outcome arrives as a status message, or a warning naming the folder and the reason."""
        if outdir is None:
            outdir = QFileDialog.getExistingDirectory(self.w, "Export as a PyTorch project - choose or create an empty folder")
            if not outdir:
                return False
        run = self.model.run
        if run is not None and run.data is not None:
            cmd = P.ExportProject(run.run_id, os.fspath(outdir))
        else:
            self.session.start_worker()
            cmd = P.ExportProject(0, os.fspath(outdir), S.dumps(self.w.document.spec))
        if not self.session.send(cmd):
            self._message("Export failed", "The trainer process is not running - try again in a moment.")
            return False
        self.w.status(f"Writing the PyTorch project to {outdir}...")
        return True
