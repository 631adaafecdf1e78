"""The training timeline in the window: look back at any epoch of the run, and fork a new run there.

The worker keeps the weights of every epoch (engine.timeline, within BUDGET_MB). The slider under
the curves (widgets.controls.timeline_bar) asks it for the views at a checkpoint (ShowEpoch); the
answer is an ordinary snapshot marked ``at_epoch``, so every view - boundary, neurons, filters,
feature maps, confusion, saliency - draws the old model through its usual presenter, and the
curves get a marker at that epoch. Looking back works while the run is paused or has ended
(while it trains, the next live snapshot would replace the old picture at once).

"Fork from here" fetches that checkpoint's weights and starts a new run from them with the
design's current settings; its epochs are numbered on from the checkpoint's and the run it came
from stays in the curves as the faint line, labelled "before fork".
"""
from __future__ import annotations

from PySide6.QtCore import QObject

from app.run import structure_key
from engine import protocol as P
from engine import spec as S
from engine.timeline import BUDGET_MB
from widgets.controls.timeline_bar import TimelineBar

LOOKABLE = ("paused", "finished", "stopped", "diverged")  # states in which a run's past can be shown


class TimelineController(QObject):
    """Connects the timeline bar to the run model and the session (owned by app.training)."""

    def __init__(self, training):
        super().__init__(training)
        self.training = training
        self.session = training.session
        self.model = training.model
        self.curves = training.views.curves
        self.bar = TimelineBar(BUDGET_MB)
        self.bar.setObjectName("timeline_bar")
        self.curves.add_footer(self.bar)
        self._fork: tuple[int, str, str] | None = None  # (run id, its design's JSON, its structure) while fetching
        self._forked = False  # the next new run is a fork: name the faint line "before fork"
        m = self.model
        m.events.run.connect(self._on_model_run)
        m.events.state.connect(self._on_model_state)
        m.events.snapshot.connect(self._on_model_snapshot)
        self.session.checkpoint_ready.connect(self._on_session_checkpoint_ready)
        self.bar.epoch_chosen.connect(self.show_epoch)
        self.bar.live_requested.connect(self.back_to_now)
        self.bar.fork_requested.connect(self.fork)

    # ---- commands -------------------------------------------------------------------------------
    def show_epoch(self, epoch: int) -> None:
        """Ask the worker for every view at ``epoch`` (the nearest checkpoint)."""
        run = self.model.run
        if run is not None and run.state in LOOKABLE:
            self.session.send(P.ShowEpoch(run.run_id, int(epoch)))

    def back_to_now(self) -> None:
        run = self.model.run
        if run is not None:
            self.session.send(P.ShowEpoch(run.run_id, -1))

    def fork(self, epoch: int) -> None:
        """Start a new run from the weights at ``epoch`` with the design's current settings."""
        run = self.model.run
        if run is None or run.state not in LOOKABLE:
            return
        self._fork = (run.run_id, S.dumps(run.spec), run.key)
        self.session.send(P.FetchCheckpoint(run.run_id, int(epoch)))
        self.training.w.status(f"Forking a new run from epoch {epoch}...")

    # ---- events -----------------------------------------------------------------------------------
    def _on_session_checkpoint_ready(self, ev: P.Checkpoint) -> None:
        pending, self._fork = self._fork, None
        if pending is None or pending[0] != ev.run_id:
            return
        if ev.state is None:
            self.training.w.status(f"Cannot fork: {ev.error}")
            return
        _run_id, old_json, old_key = pending
        spec = self.training.w.document.spec
        self._forked = True
        if structure_key(spec) == old_key:  # the same network: start from those weights exactly
            self.training.initial_state = (old_key, ev.state)
            self.training._start(paused=False, start_epoch=ev.epoch)
        else:  # edited since: keep what fits (engine.weight_transfer), RunStarted.kept says what
            self.training._start(paused=False, keep_from=(ev.state, old_json), start_epoch=ev.epoch)
        run = self.model.run
        if run is None or run.run_id == ev.run_id:  # the design could not train: nothing started
            self._forked = False
            return
        self.training.w.status(f"Forked from epoch {ev.epoch}: a new run with the current settings", 0)

    def _on_model_run(self, run) -> None:
        # autoencoder and GAN runs keep no checkpoints (engine.timeline_host.can_record): no slider for them
        self.bar.setVisible(run is None or run.spec.generative is None)
        self.bar.clear()
        self.curves.set_marker(None)
        self.curves.set_previous_label("before fork" if self._forked and run is not None else "previous run")
        self._forked = False
        self._on_model_state(self.model.state)

    def _on_model_state(self, state: str) -> None:
        self.bar.set_interactive(state in LOOKABLE)
        if state not in LOOKABLE:  # training again: the live pictures take over
            self.bar.set_showing(None)
            self.curves.set_marker(None)

    def _on_model_snapshot(self, snap: P.Snapshot) -> None:
        tl = snap.timeline
        if tl is not None:
            self.bar.set_checkpoints(tl["epochs"], tl.get("bytes", 0), tl.get("budget"), now=snap.epoch)
        showing = snap.at_epoch if snap.at_epoch >= 0 else None
        if showing is not None and snap.state not in LOOKABLE:
            showing = None
        self.bar.set_showing(showing)
        self.curves.set_marker(showing)
