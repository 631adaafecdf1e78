"""The worker's side of the training timeline for one run (engine.timeline holds the checkpoints).

It records a checkpoint on the training thread at the start and after every epoch, answers
ShowEpoch with a snapshot of the views computed on a shadow model loaded with a checkpoint,
and FetchCheckpoint with the weights themselves (for "Fork from here").

The historical views are computed by a Prober of their own on a shadow copy of the model, so the
live probes' caches and health history never see old weights; they run on the training thread
(between batches, or in its idle loop when paused or ended) like every other handed-over task.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from engine import protocol as P
from engine.model_utils import state_to_numpy
from engine.timeline import BUDGET_BYTES, LatestOnly, Timeline


class RunTimeline:
    """Checkpoints of one plain classifier run (engine.trainer.Trainer) and the views at any of them."""

    def __init__(self, run_id: int, trainer, prober, deliver: Callable[[P.Snapshot], None],
                 send: Callable[[object], None], budget: int = BUDGET_BYTES):
        self.run_id = run_id
        self.trainer = trainer
        self.prober = prober
        self._deliver = deliver  # engine.worker.RunHost._on_snapshot: sends it like any snapshot
        self._send = send
        self.timeline = Timeline(budget)
        self.showing: int | None = None  # the checkpoint's epoch the views show; None: the current model
        self._asked = LatestOnly()
        self._shadow: torch.nn.Module | None = None
        self._history_prober = None
        self.copy_seconds = 0.0  # time spent copying checkpoints (the cost to training), and how many
        self.copies = 0

    # ---- the training thread ------------------------------------------------------------------
    def record(self, *_args) -> None:
        """Checkpoint the weights as they are now, under the trainer's epoch count."""
        t0 = time.perf_counter()
        state = state_to_numpy(self.trainer.model)
        self.timeline.add(self.trainer.epoch, state)
        self.copy_seconds += time.perf_counter() - t0
        self.copies += 1

    def annotate(self, snap: P.Snapshot) -> P.Snapshot:
        """``snap`` with the timeline's summary (which epochs the slider may show)."""
        return replace(snap, timeline=self.timeline.summary())

    # ---- the command side ------------------------------------------------------------------------
    def show(self, epoch: int) -> None:
        """ShowEpoch: queue the views at ``epoch`` (only the latest of quick requests is computed);
        a negative epoch goes back to the current model."""
        tr = self.trainer
        if epoch < 0:
            self._asked.take()
            self.showing = None
            tr.call_soon(tr.report)
            return
        if self._asked.ask(int(epoch)):
            tr.call_soon(self._show_asked)

    def refresh(self) -> bool:
        """The view options changed while a checkpoint is shown: show it again with them (True), or
        False when the views show the current model (the caller reports as before)."""
        if self.showing is None:
            return False
        self.show(self.showing)
        return True

    def forget_showing(self) -> None:
        """Training goes on (resume, step): the live snapshots take over the views."""
        self._asked.take()
        self.showing = None

    def checkpoint(self, epoch: int) -> P.Checkpoint:
        """FetchCheckpoint's answer: the nearest checkpoint's weights (arrays never change once kept)."""
        k = self.timeline.nearest(epoch)
        state = self.timeline.get(k) if k is not None else None
        if state is None:
            return P.Checkpoint(self.run_id, int(epoch), None, "this run has no checkpoints yet")
        return P.Checkpoint(self.run_id, k, dict(state))

    # ---- internals (training thread) -------------------------------------------------------------
    def _show_asked(self) -> None:
        epoch = self._asked.take()
        tr = self.trainer
        if epoch is None or tr.last_snapshot is None:
            return
        if not (tr.ended or tr.paused):
            return  # training: the next live snapshot would replace the old picture at once
        k = self.timeline.nearest(epoch)
        state = self.timeline.get(k) if k is not None else None
        if state is None:
            return
        extras = self.views_at(state)
        self.showing = k
        self._deliver(self.annotate(replace(tr.last_snapshot, extras=extras, at_epoch=k)))

    def views_at(self, state: dict[str, np.ndarray]) -> dict:
        """Every open view's arrays for the model loaded with ``state`` (on the shadow model)."""
        shadow = self._shadow_model()
        with torch.no_grad():
            shadow.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
        prober = self._prober()
        prober.options = self.prober.options  # the docks' current choices (replaced, never mutated)
        try:
            return prober(shadow, force=True) or {}
        except Exception as exc:  # noqa: BLE001 - a broken view must not break the run
            return {"problems": {"views": f"{type(exc).__name__}: {exc}"}}

    def _shadow_model(self) -> torch.nn.Module:
        if self._shadow is None:
            self._shadow = copy.deepcopy(self.trainer.model)
            for p in self._shadow.parameters():
                p.grad = None  # a checkpoint has no gradients: the gradient views show none
        return self._shadow

    def _prober(self):
        if self._history_prober is None:
            from engine.probes import Prober

            self._history_prober = Prober(self.prober.data, self.prober.loss, self.prober.options)
        return self._history_prober


def can_record(trainer, prober) -> bool:
    """The timeline covers plain classifier/regression runs (engine.trainer.Trainer with a Prober)."""
    from engine.probes import Prober
    from engine.trainer import Trainer

    return type(trainer) is Trainer and isinstance(prober, Prober)
