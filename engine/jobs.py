"""On-demand analyses of one run in the worker: t-SNE, loss landscape, what-if probe,
ablation and layer cost (engine.protocol.Analyze -> AnalysisProgress..., AnalysisReady).

Quick ones (probe, ablation, cost) run on the training thread between two batches
(Trainer.call_soon), so they see a consistent model. Slow ones (t-SNE, landscape) only copy
what they need there - the activations, or the model itself - and then run in a helper
thread, reporting progress and checking for cancellation, so training goes on meanwhile.
"""
from __future__ import annotations

import copy
import threading
import time
import traceback

import numpy as np

from engine import analysis as A
from engine import landscape as LS
from engine import protocol as P
from engine.model_utils import eval_mode
from engine.probes import plane_to_inputs
from engine.trainer import outputs_to_pred

PROGRESS_INTERVAL = 0.1  # s between progress events of one job
COST_SAMPLES = 64
_tsne_progress = threading.local()


class JobCancelled(Exception):
    pass


def _patch_tsne() -> None:
    """sklearn's TSNE has no progress callback: count the optimiser's iterations by wrapping
    its gradient descent (the thread that set a callback gets the counts; others pass through)."""
    from sklearn.manifold import _t_sne

    if getattr(_t_sne._gradient_descent, "_np_wrapped", False):
        return
    original = _t_sne._gradient_descent

    def wrapped(objective, p0, *args, **kwargs):
        cb = getattr(_tsne_progress, "callback", None)
        if cb is None:
            return original(objective, p0, *args, **kwargs)

        def counted(p, *a, **kw):
            cb()
            return objective(p, *a, **kw)

        return original(counted, p0, *args, **kwargs)

    wrapped._np_wrapped = True
    _t_sne._gradient_descent = wrapped


def tsne(acts: np.ndarray, progress, cancelled, max_iter: int = 500, seed: int = 0) -> np.ndarray:
    """t-SNE of the rows of ``acts`` to 2-D, with progress per iteration; raises JobCancelled."""
    from sklearn.manifold import TSNE

    _patch_tsne()
    count = [0]

    def tick():
        if cancelled():
            raise JobCancelled()
        count[0] += 1
        progress(min(count[0] / max_iter, 1.0), f"t-SNE iteration {count[0]} of {max_iter}")

    n = len(acts)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    _tsne_progress.callback = tick
    try:
        emb = TSNE(2, perplexity=perplexity, max_iter=max_iter, init="pca", random_state=seed).fit_transform(
            np.asarray(acts, np.float32))
    finally:
        _tsne_progress.callback = None
    return emb.astype(np.float32)


class AnalysisJobs:
    """The Analyze/CancelAnalysis side of one RunHost."""

    def __init__(self, run_id: int, trainer, prober, send):
        self.run_id, self.trainer, self.prober, self._send = run_id, trainer, prober, send
        self.ablations = A.Ablations()
        self.trail = LS.Trail()
        self._cancel: dict[int, threading.Event] = {}
        self.threads: list[threading.Thread] = []

    # ---- called by the RunHost -------------------------------------------------------------
    def observe(self, epoch: int) -> None:
        """Training thread, at each snapshot: remember the weights once per epoch for the landscape's path."""
        self.trail.observe(self.trainer.model, epoch)

    def handle(self, cmd) -> None:
        if isinstance(cmd, P.CancelAnalysis):
            ev = self._cancel.get(cmd.job_id)
            if ev is not None:
                ev.set()
            return
        fn = getattr(self, f"_job_{cmd.kind}", None)
        if fn is None:
            self._ready(cmd, {}, f"unknown analysis {cmd.kind!r}")
            return
        self._cancel[cmd.job_id] = threading.Event()
        self.trainer.call_soon(lambda: self._guard(cmd, lambda: fn(cmd)))

    def close(self) -> None:
        for ev in self._cancel.values():
            ev.set()

    # ---- helpers ------------------------------------------------------------------------------
    def _ready(self, cmd, result: dict, error: str = "") -> None:
        self._cancel.pop(cmd.job_id, None)
        self._send(P.AnalysisReady(self.run_id, cmd.job_id, cmd.kind, result, error))

    def _guard(self, cmd, fn) -> None:
        try:
            fn()
        except JobCancelled:
            self._ready(cmd, {}, "cancelled")
        except Exception as exc:  # noqa: BLE001 - a failed analysis is a message, never a dead run
            if not isinstance(exc, ValueError):
                traceback.print_exc()
            self._ready(cmd, {}, str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}")

    def _in_thread(self, cmd, fn) -> None:
        t = threading.Thread(target=self._guard, args=(cmd, fn), name=f"analysis-{cmd.kind}", daemon=True)
        self.threads = [th for th in self.threads if th.is_alive()] + [t]
        t.start()

    def _reporter(self, cmd):
        last = [0.0]
        ev = self._cancel.get(cmd.job_id) or threading.Event()

        def progress(fraction: float, message: str = "") -> None:
            now = time.perf_counter()
            if now - last[0] >= PROGRESS_INTERVAL or fraction >= 1.0:
                last[0] = now
                self._send(P.AnalysisProgress(self.run_id, cmd.job_id, cmd.kind, float(fraction), message))

        return progress, ev.is_set

    def accuracy(self) -> float:
        """Validation accuracy of the model as it is now (masks included), as the trainer counts it."""
        import torch

        tr = self.trainer
        if not len(tr._xv):
            return float("nan")
        correct = 0
        with eval_mode(tr.model), torch.no_grad():
            for i in range(0, len(tr._xv), 2048):
                correct += int((outputs_to_pred(tr.model(tr._xv[i:i + 2048]), tr.loss) == tr._yv[i:i + 2048]).sum())
        return correct / len(tr._xv)

    # ---- the jobs (training thread) ----------------------------------------------------------
    def _job_probe(self, cmd) -> None:
        p, model = cmd.params, self.trainer.model
        if "point" in p:
            dims = p.get("dims") or ("pca" if self.prober._pca is not None else (0, 1))
            _, plane, *_ = self.prober._plane(dims)
            pt = np.asarray(p["point"], np.float32).reshape(1, 2)
            x = plane_to_inputs(model, pt, project=plane) if isinstance(plane, tuple) and len(plane) == 2 \
                and isinstance(plane[0], np.ndarray) else plane_to_inputs(model, pt, dims=plane)
            x = x[0]
        else:
            s = p.get("sample")
            x = self.prober.data.x_val[int(s)] if isinstance(s, (int, np.integer)) else np.asarray(s, np.float32)
        acts = A.probe_activations(model, x)
        self._ready(cmd, {"activations": acts, "point": p.get("point"), "output": acts.get(model.output_id)})

    def _job_ablate(self, cmd) -> None:
        p, model = cmd.params, self.trainer.model
        if p.get("clear"):
            self.ablations.clear(model)
            off = False
            key = None
        else:
            key = A.mask_key(p["target"])
            off = self.ablations.toggle(model, key, p.get("on"))
        after = self.accuracy()
        keys = set(self.ablations.keys)
        self.ablations.keys = set()
        self.ablations.install(model)
        before = self.accuracy()
        self.ablations.keys = keys
        self.ablations.install(model)
        self._ready(cmd, {"masks": sorted(keys), "key": key, "off": off, "acc_before": before, "acc_after": after,
                          "delta": after - before,
                          "label": A.describe_mask(key) if key is not None else "all units"})
        self.trainer.report()  # the boundary and every open view show the ablated network at once

    def _job_cost(self, cmd) -> None:
        model = self.trainer.model
        if hasattr(model, "discriminator"):  # a GAN (engine.gan.GanPair): each network on its own input
            z = self.trainer.eval_noise[:COST_SAMPLES].numpy()
            real = self.trainer.data.x_val[:COST_SAMPLES]
            layers = {**A.layer_costs(model.generator, z), **A.layer_costs(model.discriminator, real)}
            self._ready(cmd, {"layers": layers, "samples": len(z)})
            return
        data = self.prober.data
        x = data.x_val[:COST_SAMPLES] if len(data.x_val) else data.x_train[:COST_SAMPLES]
        self._ready(cmd, {"layers": A.layer_costs(model, x), "samples": len(x)})

    def _job_tsne(self, cmd) -> None:
        data, model = self.prober.data, self.trainer.model
        layer = cmd.params.get("layer")
        layer = layer if layer in model.shapes else A.default_layer(model)
        idx = A.embedding_index(data)
        acts = A.layer_activations(model, data.x_val[idx], layer)  # a copy: training may go on
        progress, cancelled = self._reporter(cmd)
        max_iter = int(cmd.params.get("max_iter", 500))

        def work():
            pts = tsne(acts, progress, cancelled, max_iter=max_iter)
            self._ready(cmd, {"points": pts, "index": idx, "layer": layer, "method": "t-SNE"})

        self._in_thread(cmd, work)

    def _job_landscape(self, cmd) -> None:
        tr, data = self.trainer, self.prober.data
        model = copy.deepcopy(tr.model)  # the slice moves these weights; training keeps its own
        trail = self.trail.snapshot()
        x, y = LS.subsample(data.x_train, data.y_train, int(cmd.params.get("samples", LS.SUBSAMPLE)))
        progress, cancelled = self._reporter(cmd)
        p = cmd.params

        def work():
            try:
                res = LS.landscape(model, x, y, tr.loss, trail, res=int(p.get("res", 21)), span=float(p.get("span", 1.0)),
                                   seed=int(p.get("seed", 0)), budget=float(p.get("budget", LS.TIME_BUDGET)),
                                   along=str(p.get("along", "random")),
                                   progress=progress, cancelled=cancelled)
            except LS.Cancelled:
                raise JobCancelled() from None
            res["step"] = tr.step
            self._ready(cmd, res)

        self._in_thread(cmd, work)
