"""The worker: the one thing that drives training. It serves runs over a run channel.

Measured on 2 cores: a trainer in a GUI thread lost 50-85 % of its speed to the GIL whenever
the views painted (pyqtgraph painting is Python), so the GUI runs ``serve`` in a process of
its own; for debugging the very same function runs in a thread over the same kind of pipe.

The worker owns each run: it loads the data once (a small cache keeps the last datasets),
builds the model, trains it in a thread of its own and keeps model, data and probes through
paused and finished states, so the views can ask for a different sample, saliency method or
plane at any time. Several runs may live at once, each under its own id (engine.protocol).

Only this module's ``serve`` reads commands; everything it sends is an engine.protocol event.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections import OrderedDict

import numpy as np

from engine import protocol as P

DATA_CACHE_SIZE = 3  # datasets kept loaded: comparing runs on one dataset loads it once


class _Sender:
    """One connection, many run threads: sends are serialised."""

    def __init__(self, conn):
        self._conn = conn
        self._lock = threading.Lock()

    def __call__(self, event) -> None:
        with self._lock:
            try:
                self._conn.send(event)
            except (OSError, EOFError, BrokenPipeError):
                pass  # the GUI has gone; the command loop ends on its own


class _DataCache:
    def __init__(self, size: int = DATA_CACHE_SIZE):
        self._size = size
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, ds, progress=None):
        import json

        from engine import datasets

        key = json.dumps({"kind": ds.kind, "params": ds.params}, sort_keys=True, default=str)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        data = datasets.load(ds, progress)  # outside the lock: another run may load another set meanwhile
        with self._lock:
            self._items[key] = data
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return data


def run_data(data) -> P.RunData:
    """The part of a dataset the GUI's views need (labels, a few images in data units)."""
    raw = data.raw_x_val if data.raw_x_val is not None else data.x_val
    images = np.ascontiguousarray(raw[:P.MAX_VAL_IMAGES]) if data.info.is_image else None
    return P.RunData(info=data.info, y_train=data.y_train, y_val=data.y_val, val_images=images,
                     mean=np.asarray(data.mean), std=np.asarray(data.std))


class RunHost:
    """One run in the worker: a thread that builds and trains it, then serves its probes."""

    def __init__(self, cmd: P.StartRun, send: _Sender, cache: _DataCache):
        self.cmd = cmd
        self.run_id = cmd.run_id
        self._send = send
        self._cache = cache
        self._lock = threading.Lock()
        self._pending: list = []  # commands that arrived before the trainer existed
        self._closed = threading.Event()
        self._progress_at = 0.0
        self.trainer = None
        self.prober = None
        self.jobs = None  # engine.jobs.AnalysisJobs, with the trainer
        self._sent: dict = {}  # the extras of the last snapshot sent (engine.protocol.Snapshot.same)
        self.timeline = None  # engine.timeline_host.RunTimeline: the weights at every epoch
        self.thread = threading.Thread(target=self._main, name=f"run-{cmd.run_id}", daemon=True)

    # ---- command side (the worker's command loop) -------------------------------------------
    def handle(self, cmd) -> None:
        with self._lock:
            if self.trainer is None:
                self._pending.append(cmd)
                return
        self._apply(cmd)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            trainer = self.trainer
        if trainer is not None:
            trainer.stop()
            self.jobs.close()
            getattr(trainer, "close", lambda: None)()

    def _apply(self, cmd) -> None:
        tr = self.trainer
        timeline_cmd = (P.ShowEpoch, P.FetchCheckpoint) + ((P.Control, P.Refresh) if self.timeline is not None else ())
        if isinstance(cmd, timeline_cmd) and self._apply_timeline(cmd):
            return
        if isinstance(cmd, P.Control):
            {"pause": tr.pause, "resume": tr.resume, "step": tr.step_once, "stop": tr.stop}[cmd.action]()
        elif isinstance(cmd, P.SetHyper):
            tr.set_hyper(**cmd.values)
        elif isinstance(cmd, P.SetPace):
            tr.set_pace(cmd.epochs_per_s, cmd.slow_motion)
        elif isinstance(cmd, P.SetViewOptions):
            self.prober.options = dict(cmd.options)  # replaced, never mutated: the trainer reads it
            if (tr.ended or tr.paused) and not (self.timeline is not None and self.timeline.refresh()):
                tr.call_soon(tr.report)  # no snapshot would come otherwise
        elif isinstance(cmd, P.Refresh):
            tr.call_soon(tr.report)
        elif isinstance(cmd, P.FetchWeights):
            from engine.model_utils import state_to_numpy  # torch: the GUI imports this module too

            tr.call_soon(lambda: self._send(P.Weights(self.run_id, tr.step, state_to_numpy(tr.model))))
        elif isinstance(cmd, P.FetchRunState):
            tr.call_soon(lambda: self._send(self._run_state()))
        elif isinstance(cmd, P.ExportWeights):
            tr.call_soon(lambda: self._export(cmd.path))
        elif isinstance(cmd, P.ExportProject):
            tr.call_soon(lambda: self._send(export_project(cmd, self.trainer)))
        elif isinstance(cmd, (P.Analyze, P.CancelAnalysis)):
            self.jobs.handle(cmd)
        elif isinstance(cmd, P.DecodeLatent):
            tr.call_soon(lambda: self._decode(cmd.points))

    def _apply_timeline(self, cmd) -> bool:
        """ShowEpoch / FetchCheckpoint (True: handled); Refresh, resume and step also end the look back (False)."""
        tl = self.timeline
        if isinstance(cmd, (P.Control, P.Refresh)):
            if isinstance(cmd, P.Refresh) or cmd.action in ("resume", "step"):
                tl.forget_showing()
            return False
        if isinstance(cmd, P.ShowEpoch):
            if tl is not None:
                tl.show(cmd.epoch)
        elif tl is not None:
            self._send(tl.checkpoint(cmd.epoch))
        else:
            self._send(P.Checkpoint(self.run_id, cmd.epoch, None, "this kind of run keeps no timeline"))
        return True

    def _decode(self, points) -> None:
        decode = getattr(self.prober, "decode_points", None)  # autoencoder runs only
        try:
            if decode is None:
                raise ValueError("this design has no latent space to decode - it is not an autoencoder")
            self._send(P.Decoded(self.run_id, points, decode(self.trainer.model, points)))
        except (ValueError, RuntimeError) as exc:
            self._send(P.Decoded(self.run_id, points, None, str(exc)))

    def _run_state(self) -> P.RunState:
        from engine import run_state

        try:
            return P.RunState(self.run_id, run_state.capture(self.trainer))
        except (ValueError, RuntimeError) as exc:
            return P.RunState(self.run_id, None, str(exc) or type(exc).__name__)

    def _export(self, path: str) -> None:
        from engine import export

        try:
            export.export(self.trainer.model, self.trainer.spec, path)
            self._send(P.Exported(self.run_id, path))
        except (ValueError, OSError, RuntimeError) as exc:
            self._send(P.Exported(self.run_id, path, str(exc) or type(exc).__name__))

    # ---- the run's thread ---------------------------------------------------------------------
    def _main(self) -> None:
        from engine.datasets.images import LoadCancelled

        try:
            trainer = self._build()
            if trainer is None:
                return
            result = trainer.run_with_cpu_fallback(lambda m: self._send(P.Notice(self.run_id, m)))
            final = trainer.last_snapshot
            if self.timeline is not None and final is not None:
                final = self.timeline.annotate(final)
            self._send(P.RunEnded(self.run_id, result, final))
            trainer.serve_tasks(self._closed)
        except LoadCancelled:
            pass  # the GUI closed the run while its data was read: nobody is waiting for it
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the GUI
            traceback.print_exc()
            self._send(P.RunFailed(self.run_id, describe_failure(exc)))

    def _build(self):
        from engine import spec as S
        from engine.build import build
        from engine.jobs import AnalysisJobs
        from engine.probes import Prober
        from engine.tasks import is_gan, load_data, make_trainer
        from engine.trainer import device_name

        cmd = self.cmd
        spec = S.loads(cmd.spec_json)
        data = load_data(spec, lambda ds: self._cache.load(ds, self._on_load_progress))
        model = kept = None
        if cmd.initial_state is not None or cmd.keep_from is not None:
            import torch

            if is_gan(spec):
                from engine.gan import build_gan
                model = build_gan(spec)
            else:
                model = build(spec, data.info)
            state = cmd.initial_state
            if cmd.keep_from is not None:  # a structural edit: keep what fits, the rest as freshly built
                from engine.model_utils import state_to_numpy
                from engine.weight_transfer import transfer

                old_spec = S.loads(cmd.keep_from_spec) if cmd.keep_from_spec else None
                fresh = state_to_numpy(model) if state is None else state
                state, kept = transfer(cmd.keep_from, fresh, old_spec, spec)
            model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
        trainer, prober = make_trainer(spec, data, device=cmd.device, probe=Prober(data, spec.training.loss, cmd.view_options),
                                       probe_options=cmd.view_options, model=model, max_rate=cmd.max_rate,
                                       on_snapshot=self._on_snapshot, probes_beside=True)
        if cmd.start_epoch:  # a fork: the epochs go on from the checkpoint's, as many as the design says
            trainer.epoch = int(cmd.start_epoch)
            trainer.spec.training.epochs += int(cmd.start_epoch)
        if cmd.run_state is not None:  # a saved run: where it stopped, paused, no batch trained
            from engine import run_state

            run_state.restore(trainer, {k: v for k, v in cmd.run_state.items() if k != "weights"})
        timeline = self._make_timeline(trainer, prober)
        if cmd.run_state is not None:
            trainer.pause()
        elif cmd.paused:
            trainer.pause()
            trainer.step_once()
        jobs = AnalysisJobs(self.run_id, trainer, prober, self._send)
        jobs.observe(-1)  # the initial weights: the start of the landscape's path
        trainer.on_report = jobs.observe  # on the training thread, where the weights are consistent
        self._send(P.RunStarted(self.run_id, device_name(trainer.device), run_data(data), kept))
        with self._lock:
            if self._closed.is_set():
                return None
            self.trainer, self.prober, self.jobs, self.timeline = trainer, prober, jobs, timeline
            pending, self._pending = self._pending, []
        for c in pending:  # in the order they were sent
            self._apply(c)
        return trainer

    def _make_timeline(self, trainer, prober):
        from engine.timeline_host import RunTimeline, can_record

        if not can_record(trainer, prober):
            return None
        timeline = RunTimeline(self.run_id, trainer, prober, self._on_snapshot, self._send)
        timeline.record()  # the weights it starts from: epoch 0, or a fork's first epoch
        trainer.on_epoch_end = timeline.record
        self.timeline = timeline  # before the first snapshot, which tells the GUI the checkpoints
        return timeline

    def _on_load_progress(self, done: int, total: int) -> bool:
        """Reports a long read at most 10 times a second; False (stop reading) once the run is closed."""
        now = time.perf_counter()
        if now - self._progress_at >= 0.1 or done == total:
            self._progress_at = now
            self._send(P.Progress(self.run_id, "Reading images", done, total))
        return not self._closed.is_set()

    def _on_snapshot(self, snap: P.Snapshot) -> None:
        # the probes return their cached arrays while nothing changed: send those as names only
        if self.timeline is not None and snap.timeline is None:
            snap = self.timeline.annotate(snap)
        sent, self._sent = self._sent, dict(snap.extras)
        self._send(P.SnapshotReady(self.run_id, P.leave_out_unchanged(snap, sent)))


def export_project(cmd: P.ExportProject, trainer=None) -> P.Exported:
    """Write the project (engine.project) from a live trainer (on its thread) or from cmd.spec_json."""
    from engine import project
    from engine import spec as S

    try:
        if trainer is not None:
            spec = trainer.spec
            project.check_design(spec)  # before trainer_state: a GAN trainer has no single optimiser
            project.export_project(spec, cmd.outdir, project.trainer_state(trainer), trainer.data)
        else:
            project.export_project(S.loads(cmd.spec_json), cmd.outdir)
        return P.Exported(cmd.run_id, cmd.outdir, kind="project")
    except (ValueError, OSError, RuntimeError) as exc:  # ProjectError and SpecError are ValueErrors
        return P.Exported(cmd.run_id, cmd.outdir, str(exc) or type(exc).__name__, kind="project")


def describe_failure(exc: BaseException) -> str:
    """A message for the user: the cause, and what to do when we know it."""
    text = f"{type(exc).__name__}: {exc}"
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        text += " - lower the batch size or the layer sizes, or train on the CPU"
    return text


def kernel_lab(cmd: P.KernelLab) -> P.KernelLabResult:
    """The kernel lab's computation (tiny, answered at once on the command loop)."""
    from engine.kernel_lab import LabError, compute

    try:
        r = compute(**cmd.args)
    except (LabError, TypeError, RuntimeError) as exc:
        return P.KernelLabResult(cmd.request_id, error=str(exc) or type(exc).__name__)
    return P.KernelLabResult(cmd.request_id, r.output, r.formula, r.layer, r.params, r.pad)


def serve_process(conn) -> None:
    """serve() as the trainer process's entry point. It ends with os._exit: the interpreter's own
    teardown aborted the process ("terminate called without an active exception", exit -6) when a
    run's daemon thread was still inside a torch call. Every event has been sent by then."""
    code = 0
    try:
        serve(conn)
    except BaseException:  # noqa: BLE001 - the process ends here either way; say why first
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(conn) -> None:
    """The worker's main loop: read commands from ``conn`` until Quit or the pipe closes."""
    import torch

    from engine.trainer import available_devices, choose_device, device_name

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # pays the one-off torch._dynamo import now
    send = _Sender(conn)
    send(P.WorkerReady(device_name(choose_device("auto")), tuple(available_devices())))
    cache = _DataCache()
    runs: dict[int, RunHost] = {}
    try:
        while True:
            try:
                cmd = conn.recv()
            except (EOFError, OSError):
                return
            if isinstance(cmd, P.Quit):
                return
            if isinstance(cmd, P.StartRun):
                torch.set_num_threads(max(1, int(cmd.threads)))  # small nets: ~2x faster with the GUI running
                if cmd.run_id in runs:
                    runs.pop(cmd.run_id).close()
                host = runs[cmd.run_id] = RunHost(cmd, send, cache)
                host.thread.start()
            elif isinstance(cmd, P.StartComparison):
                from engine.compare_host import CompareHost

                torch.set_num_threads(max(1, int(cmd.threads)))
                if cmd.run_id in runs:
                    runs.pop(cmd.run_id).close()
                host = runs[cmd.run_id] = CompareHost(cmd, send, cache, run_data, describe_failure)
                host.thread.start()
            elif isinstance(cmd, P.ExportProject) and cmd.run_id not in runs:
                # no run: the design's initial weights, built in a thread so the loop stays responsive
                threading.Thread(target=lambda c=cmd: send(export_project(c)), name="np-export", daemon=True).start()
            elif isinstance(cmd, P.KernelLab):
                send(kernel_lab(cmd))
            elif isinstance(cmd, P.CloseRun):
                host = runs.pop(cmd.run_id, None)
                if host is not None:
                    host.close()
            else:
                host = runs.get(getattr(cmd, "run_id", None))
                if host is not None:  # a command for a run that is gone is dropped
                    host.handle(cmd)
    finally:
        for host in runs.values():
            host.close()
