"""The run channel's messages: small typed records, each documented once, each naming its run.

The GUI sends commands to the worker (engine.worker.serve) and the worker answers with
events, over one duplex connection (a multiprocessing pipe; the same kind of pipe when the
worker runs in a thread for debugging). Everything here is plain data - numpy arrays, Python
scalars, dataclasses of those - so the GUI process can unpickle every event without torch.

A run is named by an integer ``run_id`` that the GUI chooses. A command for a run the worker
does not hold (never started, or closed) is dropped; commands for a run whose model is still
being built are applied, in order, as soon as it exists.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

RUN_STATES = ("starting", "running", "paused", "finished", "stopped", "diverged", "error")
ENDED = ("finished", "stopped", "diverged", "error")
CONTROL_ACTIONS = ("pause", "resume", "step", "stop")
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "val_mae")  # *_acc: R^2 for regression


# ---- what a run reports --------------------------------------------------------------------

@dataclass
class Snapshot:
    """Progress, the latest epoch's metrics, the history and the open views' arrays (``extras``)."""

    state: str  # running | paused | finished | stopped | diverged
    epoch: int  # completed epochs
    step: int  # optimiser steps so far
    epochs: int
    steps_per_epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    samples_per_s: float
    elapsed: float
    history: dict[str, np.ndarray]
    extras: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    # names of extras left out because they are the very arrays this run's previous snapshot
    # carried (the probes' caches did not recompute them): the receiver keeps its copies, which
    # spares pickling them again and lets a view skip redrawing an unchanged object
    same: tuple[str, ...] = ()
    # the training timeline (engine.timeline): ``at_epoch`` >= 0 marks a snapshot whose extras show
    # the model as it was at that epoch (an answer to ShowEpoch); ``timeline`` is the run's
    # checkpoints: {"epochs": int64 array, "bytes": used, "budget": bytes}
    at_epoch: int = -1
    timeline: dict | None = None


def leave_out_unchanged(snap: Snapshot, sent: dict[str, Any]) -> Snapshot:
    """``snap`` without the extras that are the very objects of ``sent`` (the last snapshot's extras),
    named in ``same`` instead; the receiver puts them back with merge_unchanged."""
    same = tuple(k for k, v in snap.extras.items() if k != "problems" and sent.get(k) is v)
    if not same:
        return snap
    return replace(snap, extras={k: v for k, v in snap.extras.items() if k not in same}, same=same)


def merge_unchanged(snap: Snapshot, previous: dict[str, Any] | None) -> Snapshot:
    """``snap`` with the extras it left out (``same``) taken from ``previous`` (the last one received)."""
    if not snap.same or previous is None:
        return snap
    extras = {k: previous[k] for k in snap.same if k in previous}
    extras.update(snap.extras)
    snap.extras, snap.same = extras, ()
    return snap


@dataclass
class Result:
    """The end of a run, as the CLI prints it."""

    epochs: int
    steps: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float
    device: str
    stopped_reason: str
    history: dict[str, list[float]]


@dataclass
class RunData:
    """What the views need to know of a run's dataset, sent once when the run starts.

    The GUI never loads the dataset itself: labels for the boundary's points, a few
    validation images (data units) to pick from, and the standardisation to undo for display.
    """

    info: Any  # engine.datasets.DataInfo (plain data)
    y_train: np.ndarray
    y_val: np.ndarray
    val_images: np.ndarray | None = None  # (N, C, H, W) data units, at most MAX_VAL_IMAGES
    mean: np.ndarray | None = None
    std: np.ndarray | None = None


MAX_VAL_IMAGES = 512


# ---- commands: GUI -> worker ---------------------------------------------------------------

@dataclass(frozen=True)
class StartRun:
    """Build ``spec_json``'s model on its dataset and train it (``paused``: train one batch, then wait)."""

    run_id: int
    spec_json: str
    device: str | None = None  # None: the design's own device setting
    paused: bool = False
    threads: int = 1
    max_rate: float = 10.0  # snapshots per second at most
    view_options: dict = field(default_factory=dict)  # engine.probes.Prober options
    initial_state: dict | None = None  # numpy state dict to start from (None: fresh weights)
    # after a structural edit: the old run's numpy state and its design; what fits is kept
    # (engine.weight_transfer) and RunStarted.kept says what
    keep_from: dict | None = None
    keep_from_spec: str = ""
    # a saved run to go on from (engine.run_state: optimiser, schedule, history, counters, random
    # generators; the weights come in initial_state): the run starts paused, no batch trained
    run_state: dict | None = None
    start_epoch: int = 0  # a fork (FetchCheckpoint): its epochs are numbered on from this one


@dataclass(frozen=True)
class Control:
    """pause | resume | step (one batch, then pause) | stop."""

    run_id: int
    action: str


@dataclass(frozen=True)
class SetHyper:
    """Change live settings (lr, momentum, weight_decay) before the next batch."""

    run_id: int
    values: dict


@dataclass(frozen=True)
class SetPace:
    """Cap the run's speed so it can be watched: ``epochs_per_s`` > 0 caps it, 0 is full speed;
    ``slow_motion`` trains one batch per snapshot (at the run's snapshot rate) and reports each one."""

    run_id: int
    epochs_per_s: float = 0.0
    slow_motion: bool = False


@dataclass(frozen=True)
class SetViewOptions:
    """Replace what the views want computed; a run that is not training answers with a fresh Snapshot."""

    run_id: int
    options: dict


@dataclass(frozen=True)
class Refresh:
    """Send a Snapshot of the current model with every open view recomputed."""

    run_id: int


@dataclass(frozen=True)
class ExportWeights:
    """Write the run's current weights to ``path`` (.safetensors, .pt, .onnx, .ts); answered by Exported."""

    run_id: int
    path: str


@dataclass(frozen=True)
class ExportProject:
    """Write the design as a plain PyTorch project into the folder ``outdir`` (engine.project), with the
    run's current weights and optimiser state; with no such run, the design ``spec_json`` with its
    initial weights. Answered by Exported (kind "project")."""

    run_id: int
    outdir: str
    spec_json: str = ""


@dataclass(frozen=True)
class FetchWeights:
    """Ask for the run's current weights as numpy arrays; answered by Weights."""

    run_id: int


@dataclass(frozen=True)
class ShowEpoch:
    """Show the model as it was at ``epoch`` (the nearest checkpoint of engine.timeline): answered by a
    Snapshot with ``at_epoch`` set, while the run is paused or has ended; ``epoch`` < 0: back to now."""

    run_id: int
    epoch: int


@dataclass(frozen=True)
class FetchCheckpoint:
    """Ask for the weights the run had at ``epoch`` (the nearest checkpoint); answered by Checkpoint."""

    run_id: int
    epoch: int


@dataclass(frozen=True)
class FetchRunState:
    """Ask for everything needed to save the run and go on later (engine.run_state); answered by RunState."""

    run_id: int


@dataclass(frozen=True)
class DecodeLatent:
    """Decode points (P, 2) of an autoencoder's latent plane (the PCA plane when it has more than
    two dimensions); answered by Decoded."""

    run_id: int
    points: np.ndarray


@dataclass(frozen=True)
class CloseRun:
    """Forget the run: stop it if it trains, release its model and data."""

    run_id: int


@dataclass(frozen=True)
class Analyze:
    """Compute an analysis on demand (engine.jobs): tsne, landscape, probe, ablate or cost.

    Answered by AnalysisReady (with ``error`` "cancelled" after CancelAnalysis); slow kinds
    send AnalysisProgress on the way. ``job_id`` is chosen by the GUI.
    """

    run_id: int
    job_id: int
    kind: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CancelAnalysis:
    run_id: int
    job_id: int


@dataclass(frozen=True)
class KernelLab:
    """Compute one kernel-lab operation (engine.kernel_lab.compute's keyword arguments in ``args``);
    answered by KernelLabResult even when no run exists. Not tied to a run: ``request_id`` names it."""

    request_id: int
    args: dict


@dataclass(frozen=True)
class Quit:
    """End the worker."""


# ---- events: worker -> GUI -----------------------------------------------------------------

@dataclass(frozen=True)
class WorkerReady:
    """torch is loaded; ``device`` is the automatic choice, ``devices`` every available one."""

    device: str
    devices: tuple[str, ...]


@dataclass(frozen=True)
class RunStarted:
    """The run's data is loaded and its model built on ``device``."""

    run_id: int
    device: str
    data: RunData
    kept: Any = None  # engine.weight_transfer.TransferReport when StartRun.keep_from was given


@dataclass(frozen=True)
class SnapshotReady:
    run_id: int
    snapshot: Snapshot


@dataclass(frozen=True)
class RunEnded:
    """Training ended (``snapshot.state``: finished, stopped or diverged); the run still answers probes."""

    run_id: int
    result: Result
    snapshot: Snapshot


@dataclass(frozen=True)
class RunFailed:
    """The run could not start or broke; ``message`` names the cause and the fix."""

    run_id: int
    message: str


@dataclass(frozen=True)
class Progress:
    """Long work before or outside training (reading a big image folder): ``done`` of ``total``."""

    run_id: int
    what: str
    done: int
    total: int


@dataclass(frozen=True)
class Notice:
    """Something the user should know that did not end the run (e.g. moved from the GPU to the CPU)."""

    run_id: int
    message: str


@dataclass(frozen=True)
class Exported:
    """Answer to ExportWeights (and ExportProject, ``kind`` "project"): ``error`` is empty on success."""

    run_id: int
    path: str
    error: str = ""
    kind: str = "weights"


@dataclass(frozen=True)
class KernelLabResult:
    """Answer to KernelLab: ``output`` (maps, rows, cols), the size formula, the layer and its
    parameter count, padding used; ``error`` says what to fix instead when the arguments are unusable."""

    request_id: int
    output: np.ndarray | None = None
    formula: str = ""
    layer: str = ""
    params: int = 0
    pad: int = 0
    error: str = ""


@dataclass(frozen=True)
class Weights:
    """Answer to FetchWeights."""

    run_id: int
    step: int
    state: dict


@dataclass(frozen=True)
class Checkpoint:
    """Answer to FetchCheckpoint: the numpy state at ``epoch`` (None and ``error`` when there is none)."""

    run_id: int
    epoch: int
    state: dict | None
    error: str = ""


@dataclass(frozen=True)
class RunState:
    """Answer to FetchRunState: engine.run_state.capture's numpy/JSON dict, or ``error`` (e.g. a GAN run)."""

    run_id: int
    state: dict | None
    error: str = ""


@dataclass(frozen=True)
class AnalysisProgress:
    """How far an Analyze job is (0..1)."""

    run_id: int
    job_id: int
    kind: str
    fraction: float
    message: str = ""


@dataclass(frozen=True)
class AnalysisReady:
    """Answer to Analyze: ``result`` holds numpy arrays and scalars; ``error`` is empty on success."""

    run_id: int
    job_id: int
    kind: str
    result: dict
    error: str = ""


@dataclass(frozen=True)
class Decoded:
    """Answer to DecodeLatent: ``images`` (P, ...) in data units, or ``error``."""

    run_id: int
    points: np.ndarray
    images: np.ndarray | None
    error: str = ""


# ---- comparisons (issue 12, "Compare runs") -------------------------------------------------
# A comparison lives in the worker under a ``run_id`` like a run (the GUI picks it from the same
# counter), so Control (pause | resume | step | stop: all variants), CloseRun and SetViewOptions
# reach it unchanged. Its variants are engine.variants.expand(spec) in grid order; ``index`` is
# a variant's place in that list. Each variant reports VariantSnapshot at most ``max_rate`` times
# a second, and the worker spreads a total of COMPARE_MAX_MESSAGES snapshot messages a second
# over all variants; Snapshot.same leaves out unchanged arrays per (run_id, index) as for runs.

COMPARE_MAX_MESSAGES = 60.0  # variant snapshots per second, all variants together


@dataclass(frozen=True)
class StartComparison:
    """Expand ``spec_json``'s sweep (its ``compare``) and train every variant at once."""

    run_id: int
    spec_json: str
    device: str | None = None
    threads: int = 1
    max_rate: float = 10.0  # snapshots per second per variant at most
    view_options: dict = field(default_factory=dict)  # grid_res, probe_interval (s between a variant's probes)


@dataclass(frozen=True)
class StopVariant:
    """Stop one variant; the others go on training."""

    run_id: int
    index: int


@dataclass(frozen=True)
class FetchVariantWeights:
    """Ask for one variant's current weights; answered by VariantWeights."""

    run_id: int
    index: int


@dataclass(frozen=True)
class ComparisonStarted:
    """The data is loaded and every variant built; ``labels`` in variant order."""

    run_id: int
    device: str
    data: RunData
    labels: tuple[str, ...]


@dataclass(frozen=True)
class VariantSnapshot:
    """One variant's progress: its own state, history and views (boundary or confusion)."""

    run_id: int
    index: int
    snapshot: Snapshot


@dataclass(frozen=True)
class ComparisonEnded:
    """Every variant has ended; ``results`` in variant order. The comparison still answers FetchVariantWeights."""

    run_id: int
    results: tuple


@dataclass(frozen=True)
class ComparisonFailed:
    """The comparison could not start or broke; ``message`` names the cause and the fix."""

    run_id: int
    message: str


@dataclass(frozen=True)
class VariantWeights:
    """Answer to FetchVariantWeights: numpy state dict of variant ``index``'s model."""

    run_id: int
    index: int
    step: int
    state: dict
