"""Why a network learns or not: gradient norms, update/weight ratios, unit health, histograms.

Measured in the worker at snapshot rate, never per step:
- Gradient norms are read from ``.grad`` as the last optimiser step left it. The emit that
  follows a step happens before the next ``zero_grad``, so the gradients of the step just
  taken are there for free (no extra backward pass, no fixed batch to keep). They are one
  batch's gradients, so they are noisy; the view's log scale makes that harmless.
- The update/weight ratio ``||w_after - w_before|| / ||w_before||`` needs the weights before
  the step. The trainer knows when it will emit (the snapshot interval has passed) and calls
  ``before_step`` just before that one step's ``optimizer.step()``; other steps pay nothing.
- Activations (dead ReLUs, saturated sigmoid/tanh, activation histograms) come from one
  forward pass over a fixed subset of the validation set (engine.health.DIAG_SAMPLES), run
  by the Prober under its time budget.
Histories are bounded: when full, every other entry is dropped, so they keep covering the
whole run at half the density.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from engine import health
from engine.model_utils import eval_mode, model_device

WEIGHTED_KINDS = ("Dense", "Output", "Conv2d")
DIST_KINDS = ("weights", "biases", "activations", "gradients")
HIST_BINS = 32
MAX_COLUMNS = 100  # distribution history per layer (columns of HIST_BINS counts)
MAX_POINTS = 200  # gradient history points per layer
MAX_HIST_VALUES = 50_000  # activation values per layer that go into one histogram
DIAG_IMAGE_SAMPLES = 128  # image activations are big: fewer samples


def weighted_layers(model) -> list[str]:
    return [lid for lid in model.order if model.kinds.get(lid) in WEIGHTED_KINDS]


def grad_norms(model, lids: list[str]) -> dict[str, float]:
    """L2 norm of each layer's weight gradient (NaN where there is none yet)."""
    out = {}
    for lid in lids:
        g = model.layers[lid].weight.grad
        out[lid] = float(torch.linalg.vector_norm(g.detach().float())) if g is not None else math.nan
    return out


def update_ratios(model, before: dict[str, torch.Tensor]) -> dict[str, float]:
    """||w_after - w_before|| / ||w_before|| per layer (inf for a zero weight that moved)."""
    out = {}
    for lid, w0 in before.items():
        w = model.layers[lid].weight.detach()
        num = float(torch.linalg.vector_norm((w - w0).float()))
        den = float(torch.linalg.vector_norm(w0.float()))
        out[lid] = num / den if den > 0 else (0.0 if num == 0 else math.inf)
    return out


def histogram(values: np.ndarray, bins: int = HIST_BINS) -> tuple[np.ndarray, float, float]:
    """(counts int64 (bins,), lo, hi): equal bins over [min, max] of the finite values (as numpy.histogram)."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return np.zeros(bins, np.int64), 0.0, 1.0
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, _ = np.histogram(v, bins=bins, range=(lo, hi))
    return counts.astype(np.int64), lo, hi


def _per_unit(v: torch.Tensor) -> torch.Tensor:
    """(N, units) or (N, C, H, W) -> (N * H * W, units): one column per unit / channel."""
    return v if v.dim() == 2 else v.transpose(0, 1).reshape(v.shape[1], -1).T


def unit_health(function: str, v: torch.Tensor) -> tuple[float | None, float | None]:
    """(fraction of dead units for relu, fraction of saturated units for sigmoid/tanh) of one activation."""
    u = _per_unit(v.float())
    if not len(u):
        return None, None
    if function == "relu":
        return float((~(u > 0).any(dim=0)).float().mean()), None
    m = health.SATURATION_MARGIN
    if function == "sigmoid":
        sat = (u < m) | (u > 1 - m)
    elif function == "tanh":
        sat = u.abs() > 1 - m
    else:
        return None, None
    return None, float((sat.float().mean(dim=0) >= health.SATURATED_SAMPLES).float().mean())


class _Columns:
    """A bounded history: (step, value) entries; when full, every other one is dropped."""

    def __init__(self, limit: int):
        self.limit = limit
        self.steps: list[int] = []
        self.values: list[Any] = []

    def add(self, step: int, value: Any) -> None:
        self.steps.append(step)
        self.values.append(value)
        if len(self.steps) > self.limit:
            self.steps, self.values = self.steps[::2], self.values[::2]


class Diagnostics:
    """Per-run measurements and their histories; the Prober calls it, the trainer calls ``before_step``."""

    def __init__(self, x_val: np.ndarray, seed: int = 0):
        n = len(x_val)
        cap = DIAG_IMAGE_SAMPLES if np.ndim(x_val) == 4 else health.DIAG_SAMPLES
        idx = np.sort(np.random.default_rng(seed).choice(n, min(n, cap), replace=False)) if n else np.zeros(0, int)
        self.x = np.ascontiguousarray(x_val[idx], dtype=np.float32)
        self.active = True  # take before-copies (some view or the badges want update ratios)
        self._before: tuple[int, dict[str, torch.Tensor]] | None = None
        self.last_step = 0
        self.grads = _Columns(MAX_POINTS)  # values: (norms dict, ratios dict)
        # per kind, values {lid: (counts, lo, hi)}: only the kind the view shows is measured
        self.dist = {kind: _Columns(MAX_COLUMNS) for kind in DIST_KINDS}
        self.unit_stats: dict[str, tuple[str, float | None, float | None, int]] = {}

    # ---- the training thread, right before the optimiser step that will be reported -----
    def before_step(self, model, step: int) -> None:
        if self.active:
            self._before = (step, {lid: model.layers[lid].weight.detach().clone() for lid in weighted_layers(model)})

    # ---- at snapshot time -----------------------------------------------------------------
    def record_step(self, model) -> None:
        """If a step was taken since ``before_step``: add its gradient norms and update ratios."""
        if self._before is None:
            return
        step, before = self._before
        self._before = None
        self.last_step = step
        self.grads.add(step, (grad_norms(model, list(before)), update_ratios(model, before)))

    def forward_stats(self, model, dist_kind: str | None) -> dict:
        """One forward pass over the subset: unit health per Activation, and a histogram column of ``dist_kind``."""
        if not len(self.x):
            return {}
        dev = model_device(model)
        with eval_mode(model), torch.no_grad():
            vals = model.forward_all(torch.from_numpy(self.x).to(dev))
        kinds = model.kinds
        stats = {}
        for lid in model.order:
            if kinds.get(lid) == "Activation":
                fn = model.layers[lid].__class__.__name__.lower()
                fn = {"identity": "linear", "leakyrelu": "leaky_relu"}.get(fn, fn)
                dead, sat = unit_health(fn, vals[lid])
                stats[lid] = (fn, dead, sat, int(vals[lid].shape[1]))
        self.unit_stats = stats
        if dist_kind is not None:
            if dist_kind not in DIST_KINDS:
                raise ValueError(f"distribution kind {dist_kind!r} is unknown - use one of {', '.join(DIST_KINDS)}")
            hist = self.dist[dist_kind]
            if not hist.steps or hist.steps[-1] != self.last_step:
                hist.add(self.last_step, self._dist_column(model, vals, dist_kind))
        return stats

    def _dist_column(self, model, vals: dict[str, torch.Tensor], kind: str) -> dict[str, tuple]:
        succ: dict[str, list[str]] = {}
        for lid, srcs in model.sources.items():
            for s in srcs:
                succ.setdefault(s, []).append(lid)
        col: dict[str, tuple] = {}
        for lid in weighted_layers(model):
            mod = model.layers[lid]
            if kind == "weights":
                col[lid] = histogram(mod.weight.detach().float().cpu().numpy())
            elif kind == "biases" and mod.bias is not None:
                col[lid] = histogram(mod.bias.detach().float().cpu().numpy())
            elif kind == "gradients" and mod.weight.grad is not None:
                col[lid] = histogram(mod.weight.grad.detach().float().cpu().numpy())
            if kind != "activations":
                continue
            nxt = succ.get(lid, [])
            # what the layer passes on: after its activation when one follows directly
            src = nxt[0] if len(nxt) == 1 and model.kinds.get(nxt[0]) == "Activation" else lid
            a = vals[src].detach().float().cpu().numpy().ravel()
            if a.size > MAX_HIST_VALUES:
                a = a[:: math.ceil(a.size / MAX_HIST_VALUES)]
            col[lid] = histogram(a)
        return col

    # ---- what the views get -----------------------------------------------------------------
    def badges(self) -> dict[str, list[health.Badge]]:
        out: dict[str, list[health.Badge]] = {}
        for lid, (fn, dead, sat, units) in self.unit_stats.items():
            b = health.activation_badges(fn, dead, sat, units)
            if b:
                out[lid] = b
        if self.grads.values:
            norms, ratios = self.grads.values[-1]
            for lid, b in health.gradient_badges(norms, ratios).items():
                out.setdefault(lid, []).extend(b)
        return out

    def gradient_history(self) -> dict[str, Any]:
        """{layers, steps (T,), grad_norm (L, T), update_ratio (L, T)} (NaN where unknown)."""
        layers = list(self.grads.values[-1][0]) if self.grads.values else []
        steps = np.asarray(self.grads.steps, np.int64)
        norm = np.full((len(layers), len(steps)), np.nan)
        ratio = np.full((len(layers), len(steps)), np.nan)
        for t, (n, r) in enumerate(self.grads.values):
            for i, lid in enumerate(layers):
                norm[i, t] = n.get(lid, np.nan)
                ratio[i, t] = r.get(lid, np.nan)
        return {"layers": layers, "steps": steps, "grad_norm": norm, "update_ratio": ratio}

    def distribution_history(self, kind: str) -> dict[str, Any]:
        """{kind, steps (T,), layers, counts {lid: (T, bins)}, lo/hi {lid: (T,)}} (zero counts where missing)."""
        if kind not in DIST_KINDS:
            raise ValueError(f"distribution kind {kind!r} is unknown - use one of {', '.join(DIST_KINDS)}")
        hist = self.dist[kind]
        steps = np.asarray(hist.steps, np.int64)
        layers: list[str] = []
        for col in hist.values:
            layers += [lid for lid in col if lid not in layers]
        counts, lo, hi = {}, {}, {}
        for lid in layers:
            c = np.zeros((len(steps), HIST_BINS), np.int64)
            lo_l, hi_l = np.full(len(steps), np.nan), np.full(len(steps), np.nan)
            for t, col in enumerate(hist.values):
                if lid in col:
                    c[t], lo_l[t], hi_l[t] = col[lid]
            counts[lid], lo[lid], hi[lid] = c, lo_l, hi_l
        return {"kind": kind, "steps": steps, "layers": layers, "counts": counts, "lo": lo, "hi": hi}

    def extras(self, model, opt: dict, cached) -> dict[str, Any]:
        """The Prober's part: badges (option ``health``), ``gradients`` history, ``distributions`` of one kind.

        ``cached(name, key, compute)`` is the Prober's budgeted cache; the forward pass goes through it.
        """
        dist = opt.get("distributions")
        self.active = bool(opt.get("health") or opt.get("gradients") or dist)
        if not self.active:
            return {}
        self.record_step(model)
        out: dict[str, Any] = {}
        if opt.get("health") or dist:
            cached("health", dist, lambda: self.forward_stats(model, dist))
        if opt.get("health"):
            out["health"] = self.badges()
        if opt.get("gradients"):
            out["gradients"] = self.gradient_history()
        if dist:
            out["distributions"] = self.distribution_history(dist)
        return out
