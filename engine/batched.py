"""Train several same-structure variants in one batched computation (issue 12, "Compare runs").

``BatchedTrainer(specs)`` trains N designs that share one ``engine.variants.batch_key`` (same
layers and shapes, batch size, epochs; they may differ in optimiser, lr, momentum, weight decay,
L1/L2, schedule, clipping, seed and init). Their parameters live in one (N, P) tensor; the
forward pass runs all N at once and the optimiser update is one set of tensor ops over all
rows with per-variant settings as (N, 1) columns. Each variant builds its initial weights and
shuffles its data with its own seed exactly as engine.trainer.Trainer does, so its history and
weights equal those of a separate Trainer run up to float rounding (tests/engine/test_variants.py).
Exceptions: Dropout draws from torch's global generator, so its masks are independent per
variant but not the same draws as separate runs; and a parameter whose gradient is zero in exact
arithmetic (a bias right before BatchNorm, the key bias of attention) gets Adam/RMSprop steps from
rounding noise in both, which differ - harmlessly, as the loss does not depend on it.

How the forward is batched (``forward="layers"``, the default): Linear layers (Dense, Output)
are one ``torch.baddbmm``; Conv2d is one grouped convolution (groups = N, channels-last), its
images kept as (B, N*C, H, W) so activations and pooling after it run on them as they are;
other layers without weights (Flatten, Concat, GlobalAvgPool ...) run on the N x B samples
folded into one batch; any other layer (BatchNorm, LayerNorm, recurrent, attention ...) runs
under ``torch.vmap(torch.func.functional_call)``, except recurrent layers (no vmap batching rule
for the fused RNN kernels), which run once per variant. ``forward="vmap"`` runs the whole model
under vmap (kept for the benchmark, bench/compare_speed.py; it fails on recurrent layers).

The control surface is Trainer's (it inherits pause/resume/step_once/stop/call_soon/
serve_tasks/report and the gate between batches), plus per-variant parts:

    bt = BatchedTrainer([v.spec for v in group], data, on_snapshot=cb, probes=[p0, p1, ...])
    bt.run()                       # blocking, in the run's thread; returns [Result] per variant
    cb(snaps)                      # one call per report: list of engine.protocol.Snapshot, one per
                                   # variant in the order of ``specs``; each carries that variant's
                                   # own state (a stopped or diverged variant reports its end state
                                   # while the others run), history and probe extras
    bt.stop_variant(i)             # stop variant i; the others go on training (any thread)
    bt.set_hyper(i, lr=0.1)        # or set_hyper(None, lr=...) for all (any thread)
    bt.model_for(i)                # a normal GraphNet with variant i's current weights (training
                                   # thread: call it from call_soon or a probe); probes, exports and
                                   # "Use this variant" work on it as on a Trainer's model
    bt.results()                   # [Result] per variant
    bt.n, bt.labels, bt.specs      # the variants

For a whole comparison (engine.variants.expand), ``compare_trainers(variants, data, on_snapshot=
cb)`` makes one BatchedTrainer per batch group and calls ``cb(variant_index, snapshot)`` with
indices into ``variants``; run each trainer in a thread of its own (the worker's RunHost does
that for one run) - groups of different structure are separate trainers, interleaved.

``probes`` (optional) is one callable per variant, called like Trainer's probe with
``model_for(i)`` - e.g. one engine.probes.Prober per variant, which rate-limits itself. The GPU
fallback of Trainer (continue on the CPU) is not offered here: a failing batch raises; nor is
the probe's ``before_step`` hook (update/weight ratios of the health view) called.

Pause, step and stop act on the whole batch, as on one Trainer; a variant that has left the
batch (stopped, diverged) keeps its weights for model_for and keeps reporting its end state.
For the worker: ``run()`` returns a list of Results and there is no ``model`` attribute - a
host of a comparison asks ``model_for(i)`` (e.g. engine.worker.state_to_numpy(bt.model_for(i))
in call_soon for "Use this variant" and exports).
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from engine import datasets
from engine.build import GraphNet, build
from engine.modules import Merge
from engine.protocol import HISTORY_KEYS, Result, Snapshot
from engine.spec import Spec
from engine.trainer import Trainer, _accepts_force, choose_device, device_name, score
from engine.variants import batch_key

__all__ = ["BatchedTrainer", "batched_loss", "compare_trainers"]

_BETAS = (0.9, 0.999)  # torch.optim defaults, which engine.trainer uses
_EPS = {"adam": 1e-8, "adamw": 1e-8, "rmsprop": 1e-8, "adagrad": 1e-10}
_RMS_ALPHA = 0.99
# layers without weights that never mix values of different variants: elementwise ones run on any
# layout as they are, channel-wise ones on the "ch" layout of images (see _as)
_ELEMENTWISE = (nn.Identity, nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Softplus, nn.Dropout)
_CHANNELWISE = (nn.MaxPool2d, nn.AvgPool2d, nn.Dropout2d, nn.Upsample)
_STATES = {"sgd": ("momentum_buffer",), "adam": ("exp_avg", "exp_avg_sq"), "adamw": ("exp_avg", "exp_avg_sq"),
           "rmsprop": ("square_avg", "momentum_buffer"), "adagrad": ("sum",)}


def batched_loss(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """engine.trainer.loss_fn for each variant: outputs (N, B, ...) and targets (N, B, ...) -> (N,)."""
    n = out.shape[0]
    if loss == "cross_entropy":
        return F.cross_entropy(out.flatten(0, 1), y.flatten(0, 1), reduction="none").view(n, -1).mean(1)
    if y.is_floating_point():
        target = y
    elif out.shape[-1] == 1:
        target = y.to(out.dtype).unsqueeze(-1)
    else:
        target = F.one_hot(y, out.shape[-1]).to(out.dtype)
    fn = {"bce": F.binary_cross_entropy_with_logits, "mae": F.l1_loss, "huber": F.huber_loss}.get(loss, F.mse_loss)
    return fn(out, target, reduction="none").reshape(n, -1).mean(1)


def _preds(out: torch.Tensor, loss: str, regression: bool) -> torch.Tensor:
    """engine.trainer.outputs_to_pred over (N, B, units) -> (N, B); the outputs themselves for regression."""
    if regression:
        return out
    if out.shape[-1] == 1:
        return (out[..., 0] > (0.0 if loss == "bce" else 0.5)).long()
    return out.argmax(-1)


@dataclass
class _Variant:
    """One variant's own part of the run; ``frozen`` holds its weights once it has left the batch."""

    index: int
    spec: Spec
    label: str
    mirror: GraphNet  # built from the variant's spec (its initial weights); model_for copies into it
    gen: torch.Generator
    base_lr: float
    lr: float
    history: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})
    state: str = ""  # "" while in the batch, else stopped | diverged | finished
    message: str = ""
    epoch: int = 0
    step: int = 0
    samples: int = 0
    last_mae: float = math.nan
    frozen: tuple[torch.Tensor, dict[str, torch.Tensor]] | None = None


class BatchedTrainer(Trainer):
    """Trains N same-structure designs at once; see the module docstring for the API."""

    def __init__(self, specs: Sequence[Spec], data: datasets.Data | None = None, *, device: str | None = None,
                 on_snapshot: Callable[[list[Snapshot]], None] | None = None,
                 probes: Sequence[Callable[..., dict]] | None = None, max_rate: float = 30.0,
                 forward: str = "layers", labels: Sequence[str] | None = None):
        if not specs:
            raise ValueError("BatchedTrainer needs at least one design")
        keys = {batch_key(s) for s in specs}
        if len(keys) > 1:
            raise ValueError("these variants cannot train in one batch: they differ in structure, batch size, epochs or "
                             "device - split them with engine.variants.batch_groups")
        if any(s.generative is not None for s in specs):
            raise ValueError("generative designs (autoencoders, GANs) are trained one at a time - use engine.tasks.make_trainer")
        if forward not in ("layers", "vmap"):
            raise ValueError(f"forward must be 'layers' or 'vmap', got {forward!r}")
        self.specs = [s.copy() for s in specs]
        self.spec = self.specs[0]  # what the variants share (epochs, batch size, loss, dataset)
        self.n = len(self.specs)
        self.labels = list(labels) if labels is not None else [f"variant {i + 1}" for i in range(self.n)]
        t = self.spec.training
        self.data = data if data is not None else datasets.load(self.spec.dataset)
        self.device = choose_device(device or t.device)
        self.on_snapshot = on_snapshot
        self.probes = list(probes) if probes is not None else None
        self.min_interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self.loss = t.loss
        self.regression = getattr(self.data.info, "task", "classification") == "regression"
        self.forward_mode = forward

        # each variant built as Trainer builds it (build() seeds with the variant's seed): same initial weights
        mirrors = [build(s, self.data.info).to(self.device) for s in self.specs]
        self.template = copy.deepcopy(mirrors[0])  # the structure the batched forward walks
        named = list(self.template.named_parameters())
        self._names = [k for k, _ in named]
        self._shapes = [tuple(p.shape) for _, p in named]
        self._sizes = [p.numel() for _, p in named]
        self._P = torch.stack([torch.cat([p.detach().reshape(-1) for p in m.parameters()]) for m in mirrors])
        self._P.requires_grad_(True)  # (N, P): row i is variant i's parameters, flattened in template order
        self._bufs = {k: torch.stack([dict(m.named_buffers())[k].detach().clone() for m in mirrors])
                      for k, _ in self.template.named_buffers()}
        # L1/L2 act on the weights of Linear and Conv2d modules, as in Trainer._penalty
        penalised = {f"{name}.weight" for name, m in self.template.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
        self._pen_mask = torch.cat([torch.full((s,), float(k in penalised)) for k, s in zip(self._names, self._sizes,
                                                                                            strict=True)]).to(self.device)
        self._plan = self._make_plan()

        self._x = torch.as_tensor(self.data.x_train, device=self.device)
        self._y = torch.as_tensor(self.data.y_train, device=self.device)
        self._xv = torch.as_tensor(self.data.x_val, device=self.device)
        self._yv = torch.as_tensor(self.data.y_val, device=self.device)
        self.batch_size = max(1, min(t.batch_size, len(self._x)))
        self.steps_per_epoch = math.ceil(len(self._x) / self.batch_size)
        if len(self._x) % self.batch_size == 1 and self.steps_per_epoch > 1:
            self.steps_per_epoch -= 1  # as Trainer: a last batch of one sample joins the one before

        self._runs = [_Variant(i, s, self.labels[i], m, torch.Generator().manual_seed(s.training.seed),
                               s.training.lr, self._lr_at(s, s.training.lr, 0))
                      for i, (s, m) in enumerate(zip(self.specs, mirrors, strict=True))]
        self._active = list(range(self.n))  # variant index of each row of _P
        self._opt_step = 0
        self._states: dict[str, torch.Tensor] = {}
        for kind in {s.training.optimizer for s in self.specs}:
            for name in _STATES[kind]:
                self._states.setdefault(name, torch.zeros_like(self._P, requires_grad=False))
        self._ep: dict[str, Any] = {}  # the running epoch's accumulators (rows follow _active)
        self._init_control()
        self._pending_hyper: dict = {}  # {variant index or None (all): {name: value}}
        self._rebuild()
        self._remember_good()
        self.last_snapshots: list[Snapshot] | None = None

    # ---- the batched forward ---------------------------------------------------------------
    def _make_plan(self) -> list[tuple]:
        """Per layer: (id, how, module, sources, {param name in module: flat name}, {buffer name: flat name})."""
        plan = []
        g = self.template
        for lid in g.order:
            if lid == g.input_id:
                continue
            mod = g.layers[lid]
            has_params = any(True for _ in mod.parameters())
            if isinstance(mod, nn.Linear):
                how = "linear"
            elif isinstance(mod, nn.Conv2d) and mod.groups == 1 and mod.padding_mode == "zeros":
                how = "conv"
            elif type(mod) in _ELEMENTWISE:
                how = "elementwise"
            elif type(mod) in _CHANNELWISE:
                how = "channelwise"
            elif isinstance(mod, Merge) and mod.op == "add":
                how = "add"
            elif not has_params and not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in mod.modules()):
                how = "free"  # samples independent, no weights: run on the folded (N*B) batch
            elif any(isinstance(m, nn.RNNBase) for m in mod.modules()):
                how = "loop"  # torch.vmap has no batching rule for the fused RNN/LSTM/GRU kernels
            else:
                how = "vmap"
            prefix = f"layers.{lid}."
            pn = {k[len(prefix):]: k for k in self._names if k.startswith(prefix)}
            bn = {k[len(prefix):]: k for k in self._bufs if k.startswith(prefix)}
            plan.append((lid, how, mod, g.sources[lid], pn, bn))
        return plan

    def _views(self, P: torch.Tensor) -> dict[str, torch.Tensor]:
        n = P.shape[0]
        return {k: t.view(n, *s) for k, t, s in zip(self._names, P.split(self._sizes, 1), self._shapes, strict=True)}

    def _forward(self, P: torch.Tensor, x: torch.Tensor, bufs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Outputs (N, B, ...) of the N variants (rows of P) for inputs (N, B, ...)."""
        views = self._views(P)
        if self.forward_mode == "vmap":
            call = lambda p, b, xi: functional_call(self.template, (p, b), (xi,))  # noqa: E731
            return torch.vmap(call, randomness="different")(views, bufs, x)
        g = self.template
        n = P.shape[0]
        vals: dict[str, tuple[torch.Tensor, str]] = {g.input_id: (x, "vm")}  # (value, layout): see _as
        for lid, how, mod, srcs, pn, bn in self._plan:
            ins = [vals[s] for s in srcs]
            if how == "linear":
                v = _as(ins[0], "vm", n)  # (N, B, ..., in)
                w, b = views[pn["weight"]], views.get(pn.get("bias", ""))
                flat = v.reshape(n, -1, v.shape[-1])
                wt = w.transpose(1, 2)
                y = torch.baddbmm(b.unsqueeze(1), flat, wt) if b is not None else torch.bmm(flat, wt)
                vals[lid] = (y.view(*v.shape[:-1], w.shape[1]), "vm")
            elif how == "conv":
                v = _as(ins[0], "ch", n)  # (B, N*C, H, W): the variants' channels side by side, one group each
                # channels-last: mkldnn's grouped conv, and the pooling after it, measured 1.5-2x faster
                # so on the digits CNN (CPU time, 8 variants; bench/compare_speed.py)
                w, b = views[pn["weight"]], views.get(pn.get("bias", ""))
                y = F.conv2d(v.contiguous(memory_format=torch.channels_last), w.reshape(-1, *w.shape[2:]),
                             b.reshape(-1) if b is not None else None, mod.stride, mod.padding, mod.dilation, groups=n)
                vals[lid] = (y, "ch")
            elif how == "elementwise" or how == "channelwise" and ins[0][1] == "ch" or (
                    how == "add" and len({lay for _, lay in ins}) == 1):
                vals[lid] = (mod(*[t for t, _ in ins]), ins[0][1])  # no variant mixes with another: run as it is
            elif how in ("channelwise", "add", "free"):
                # samples independent, no weights: the N x B samples folded into one batch
                lay = "bm" if ins[0][1] == "ch" else ins[0][1]
                xs = [_as(t, lay, n) for t in ins]
                d0, d1 = xs[0].shape[:2]
                y = mod(*[t.reshape(d0 * d1, *t.shape[2:]) for t in xs])
                vals[lid] = (y.reshape(d0, d1, *y.shape[1:]), lay)
            else:
                p = {k: views[full] for k, full in pn.items()}
                b = {k: bufs[full] for k, full in bn.items()}
                xs = [_as(t, "vm", n) for t in ins]
                if how == "vmap":
                    call = lambda p, b, *xi, _m=mod: functional_call(_m, (p, b), xi)  # noqa: E731
                    vals[lid] = (torch.vmap(call, randomness="different")(p, b, *xs), "vm")
                else:  # one call per variant (buffers are views of the stacked ones, so updates land there)
                    ys = [functional_call(mod, ({k: v[i] for k, v in p.items()}, {k: v[i] for k, v in b.items()}),
                                          tuple(x[i] for x in xs)) for i in range(n)]
                    vals[lid] = (torch.stack(ys), "vm")
        return _as(vals[g.output_id], "vm", n)

    # ---- per-variant settings as columns -----------------------------------------------------
    def _rebuild(self) -> None:
        """(N, 1) columns of the active variants' settings, and the rows of each optimiser kind."""
        runs = [self._runs[i] for i in self._active]
        col = lambda vals, dtype=torch.float32: torch.tensor(vals, dtype=dtype, device=self.device).view(-1, 1)  # noqa: E731
        ts = [r.spec.training for r in runs]
        self._h = {"lr": col([r.lr for r in runs]), "momentum": col([t.momentum for t in ts]),
                   "wd": col([t.weight_decay for t in ts]), "nesterov": col([t.nesterov for t in ts], torch.bool),
                   "l1": col([t.l1 for t in ts]), "l2": col([t.l2 for t in ts]), "clip": col([t.grad_clip for t in ts])}
        self._any = {"wd": any(t.weight_decay for t in ts), "pen": any(t.l1 or t.l2 for t in ts),
                     "clip": any(t.grad_clip > 0 for t in ts)}
        kinds: dict[str, list[int]] = {}
        for row, t in enumerate(ts):
            kinds.setdefault(t.optimizer, []).append(row)
        self._kinds = {k: (None if len(rows) == len(ts) else torch.tensor(rows, device=self.device))
                       for k, rows in kinds.items()}

    @staticmethod
    def _lr_at(spec: Spec, base: float, epoch: int) -> float:
        """The lr of ``epoch`` (0-based) under the design's schedule, as torch's schedulers give it."""
        t = spec.training
        if t.lr_schedule == "step":
            return base * t.gamma ** (epoch // t.step_size)
        if t.lr_schedule == "exponential":
            return base * t.gamma ** epoch
        if t.lr_schedule == "cosine":
            return base * (1 + math.cos(math.pi * min(epoch, max(1, t.epochs)) / max(1, t.epochs))) / 2
        return base

    @torch.no_grad()
    def _optimizer_step(self, P: torch.Tensor, G: torch.Tensor) -> None:
        """torch.optim's update rules (engine.trainer._make_optimizer's settings) for every row at once."""
        self._opt_step += 1
        step = self._opt_step
        for kind, rows in self._kinds.items():
            names = _STATES[kind]
            if rows is None:
                p, g, st, h = P, G, {k: self._states[k] for k in names}, self._h
            else:
                p, g = P[rows], G[rows]
                st = {k: self._states[k][rows] for k in names}
                h = {k: v[rows] for k, v in self._h.items()}
            lr, wd = h["lr"], h["wd"]
            if kind == "adamw":
                p.mul_(1 - lr * wd)  # decoupled decay
            elif self._any["wd"]:
                g = g + wd * p
            if kind == "sgd":
                buf = st["momentum_buffer"]
                if step == 1:
                    buf.copy_(g)
                else:
                    buf.mul_(h["momentum"]).add_(g)
                p.sub_(lr * torch.where(h["nesterov"], g + h["momentum"] * buf, buf))
            elif kind in ("adam", "adamw"):
                b1, b2 = _BETAS
                st["exp_avg"].lerp_(g, 1 - b1)
                st["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (st["exp_avg_sq"].sqrt() / math.sqrt(1 - b2 ** step)).add_(_EPS[kind])
                p.sub_(lr / (1 - b1 ** step) * st["exp_avg"] / denom)
            elif kind == "rmsprop":
                st["square_avg"].mul_(_RMS_ALPHA).addcmul_(g, g, value=1 - _RMS_ALPHA)
                avg = st["square_avg"].sqrt().add_(_EPS[kind])
                st["momentum_buffer"].mul_(h["momentum"]).addcdiv_(g, avg)  # momentum 0: the plain step
                p.sub_(lr * st["momentum_buffer"])
            elif kind == "adagrad":
                st["sum"].addcmul_(g, g, value=1)
                p.sub_(lr * g / st["sum"].sqrt().add_(_EPS[kind]))
            if rows is not None:  # rows were copies: write them back
                P.index_copy_(0, rows, p)
                for k in names:
                    self._states[k].index_copy_(0, rows, st[k])

    # ---- the loop ----------------------------------------------------------------------------
    def run_with_cpu_fallback(self, notify: Callable[[str], None] | None = None) -> list[Result]:
        return self.run()

    def run(self) -> list[Result]:
        """Train until the epochs are done, stop() is called or every variant has stopped or diverged."""
        start = time.perf_counter()
        last_emit = 0.0
        n_train = len(self._x)
        self._remember_good()
        while self._active and self.epoch < self.spec.training.epochs and not self._stop.is_set():
            self.template.train()
            perms = torch.stack([torch.randperm(n_train, generator=self._runs[i].gen) for i in self._active])
            self._ep = {"perms": perms.to(self.device), "loss": np.zeros(len(self._active)), "preds": [], "seen": 0}
            for b in range(self.steps_per_epoch):
                if not self._gate(start) or not self._active:
                    break
                last = b == self.steps_per_epoch - 1
                idx = self._ep["perms"][:, b * self.batch_size:None if last else (b + 1) * self.batch_size]  # (N, B)
                xb, yb = self._x[idx], self._y[idx]
                P = self._P
                out = self._forward(P, xb, self._bufs)
                losses = batched_loss(out, yb, self.loss)
                if self._any["pen"]:
                    m = self._pen_mask
                    losses = losses + (self._h["l1"][:, 0] * (P.abs() * m).sum(1) + self._h["l2"][:, 0] * (P * P * m).sum(1))
                values = losses.tolist()  # the one sync per step, as in Trainer (the NaN check needs it)
                bad = [r for r, v in enumerate(values) if not math.isfinite(v)]
                total = losses.sum() if not bad else torch.where(torch.isfinite(losses), losses, 0.0).sum()
                P.grad = None
                total.backward()
                G = P.grad
                if self._any["clip"]:  # per-variant global norm, as clip_grad_norm_
                    clip = self._h["clip"]
                    coef = (clip / (G.norm(dim=1, keepdim=True) + 1e-6)).clamp(max=1.0)
                    G.mul_(torch.where(clip > 0, coef, torch.ones_like(coef)))
                self._optimizer_step(P.data, G)
                n = idx.shape[1]
                self._ep["seen"] += n
                self._samples += n
                self._ep["loss"] += np.asarray(values) * n
                self._ep["preds"].append(_preds(out.detach(), self.loss, self.regression))
                if bad:
                    self._diverge(bad, [values[r] for r in bad])
                self.step += 1
                now = time.perf_counter()
                if now - last_emit >= self.min_interval or self._single_stepping():
                    last_emit = now
                    self._elapsed = now - start
                    self._emit("running" if not self.paused else "paused")
            if self._stop.is_set() or not self._active or self._ep["seen"] < n_train:
                break
            self.epoch += 1
            self._end_epoch_all()
            for i in self._active:
                r = self._runs[i]
                r.lr = self._lr_at(r.spec, r.base_lr, self.epoch)
            self._rebuild()
            self._remember_good()
        ended_now = "stopped" if self._stop.is_set() else "finished"
        self._leave(list(range(len(self._active))), ended_now,
                    "stopped by the user" if ended_now == "stopped" else "finished all epochs")
        states = {r.state for r in self._runs}
        self.ended = "finished" if "finished" in states else "stopped" if "stopped" in states else "diverged"
        self.stop_reason = "; ".join(f"{r.label}: {r.message}" for r in self._runs)
        self._elapsed = time.perf_counter() - start
        self._emit(self.ended, message=self.stop_reason)
        return self.results()

    def _end_epoch_all(self) -> None:
        """Validation and history for every variant in the batch; a variant whose validation loss is
        not finite goes back to its last epoch's weights and leaves the batch, as in Trainer."""
        ep = self._ep
        seen = ep["seen"]
        preds = torch.cat(ep["preds"], 1)  # (N, n) in each variant's own shuffled order
        ys = self._y[ep["perms"]]
        if self.regression:
            train_acc = [score(preds[r], ys[r], self.loss) for r in range(len(self._active))]
        else:
            train_acc = ((preds == ys).sum(1).double() / seen).tolist()
        val = self._evaluate_all()
        bad = []
        for r, i in enumerate(self._active):
            v = self._runs[i]
            val_loss, val_acc, mae = val[r] if val else (math.nan, math.nan, math.nan)
            if val and not math.isfinite(val_loss):
                bad.append((r, val_loss))
                continue
            h = v.history
            h["epoch"].append(self.epoch)
            h["train_loss"].append(float(ep["loss"][r] / seen))
            h["train_acc"].append(float(train_acc[r]))
            h["val_loss"].append(val_loss)
            h["val_acc"].append(val_acc)
            h["val_mae"].append(mae if self.regression and val else math.nan)
            h["lr"].append(v.lr)
        if bad:
            self.epoch -= 1  # their epoch is thrown away (only for the message and their record)
            self._diverge([r for r, _ in bad], [x for _, x in bad])
            self.epoch += 1

    @torch.no_grad()
    def _evaluate_all(self) -> list[tuple[float, float, float]]:
        """(val loss, val accuracy or R^2, val MAE) per active variant, in eval mode, in chunks of 2048."""
        x, y = self._xv, self._yv
        if not len(x):
            return []
        n = len(self._active)
        self.template.eval()
        loss_sum = torch.zeros(n, dtype=torch.float64, device=self.device)
        correct = torch.zeros(n, dtype=torch.float64, device=self.device)
        outs = []
        for i in range(0, len(x), 2048):
            xb, yb = x[i:i + 2048], y[i:i + 2048]
            yn = yb.expand(n, *yb.shape)
            out = self._forward(self._P, xb.expand(n, *xb.shape), self._bufs)
            loss_sum += batched_loss(out, yn, self.loss).double() * len(yb)
            if self.regression:
                outs.append(out)
            else:
                correct += (_preds(out, self.loss, False) == yn).sum(1).double()
        self.template.train()
        if self.regression:
            out = torch.cat(outs, 1)
            mae = (out - y).abs().flatten(1).mean(1).tolist()
            return [(ls / len(x), score(out[r], y, self.loss), mae[r]) for r, ls in enumerate(loss_sum.tolist())]
        return [(ls / len(x), c / len(x), math.nan) for ls, c in zip(loss_sum.tolist(), correct.tolist(), strict=True)]

    # ---- variants leaving the batch ----------------------------------------------------------
    def _diverge(self, rows: list[int], values: list[float]) -> None:
        msgs = {}
        for r, value in zip(rows, values, strict=True):
            v = self._runs[self._active[r]]
            msgs[r] = (f"the loss became {value} at epoch {self.epoch + 1}, step {self.step + 1} - lower the learning rate "
                       f"(now {v.lr:g}), add gradient clipping or normalisation; the last good weights were kept")
        self._leave(rows, "diverged", msgs, restore=True)

    def _leave(self, rows: list[int], state: str, message: str | dict[int, str], restore: bool = False) -> None:
        """Take rows out of the batch: their weights (the last good ones when ``restore``) are kept for model_for."""
        if not rows:
            return
        for r in rows:
            v = self._runs[self._active[r]]
            src_p, src_b = (self._good_P, self._good_bufs) if restore else (self._P.detach(), self._bufs)
            v.frozen = (src_p[r].clone(), {k: b[r].clone() for k, b in src_b.items()})
            v.state, v.message = state, message[r] if isinstance(message, dict) else message
            v.epoch, v.step, v.samples = self.epoch, self.step, self._samples
        keep = [r for r in range(len(self._active)) if r not in set(rows)]
        k = torch.tensor(keep, dtype=torch.long, device=self.device)
        self._P = self._P.detach()[k].requires_grad_(True)
        self._bufs = {name: b[k] for name, b in self._bufs.items()}
        self._good_P, self._good_bufs = self._good_P[k], {name: b[k] for name, b in self._good_bufs.items()}
        self._states = {name: s[k] for name, s in self._states.items()}
        if self._ep:
            self._ep["perms"] = self._ep["perms"][k]
            self._ep["loss"] = self._ep["loss"][keep]
            self._ep["preds"] = [p[k] for p in self._ep["preds"]]
        self._active = [self._active[r] for r in keep]
        self._rebuild()

    def stop_variant(self, index: int) -> None:
        """Stop one variant at the next batch boundary; the others go on (any thread)."""
        self.call_soon(lambda: self._stop_variant_now(index))

    def _stop_variant_now(self, index: int) -> None:
        if index not in self._active:
            return
        self._leave([self._active.index(index)], "stopped", "stopped by the user")
        if self.paused or self.ended:  # no training step will report it
            self._emit(self.ended or "paused", force=True)

    def _remember_good(self) -> None:
        self._good_P = self._P.detach().clone()
        self._good_bufs = {k: b.clone() for k, b in self._bufs.items()}

    # ---- settings changed while training -----------------------------------------------------
    def set_hyper(self, variant: int | None = None, **values: float) -> None:
        """Change lr, momentum or weight_decay of one variant (None: all); applied before the next batch."""
        with self._lock:
            self._pending_hyper.setdefault(variant, {}).update(values)

    def _apply_hyper(self) -> None:
        with self._lock:
            pending, self._pending_hyper = self._pending_hyper, {}
        for variant, values in pending.items():
            for r in ([self._runs[variant]] if variant is not None else self._runs):
                for key, value in values.items():
                    if key == "lr":  # the schedule continues from the new base
                        r.base_lr = r.lr = float(value)
                    if key in ("lr", "momentum", "weight_decay"):
                        setattr(r.spec.training, key, float(value))
        self._rebuild()

    # ---- what the GUI sees --------------------------------------------------------------------
    @torch.no_grad()
    def model_for(self, index: int) -> GraphNet:
        """A normal GraphNet holding variant ``index``'s current weights (call on the training thread).

        The same module object is returned each time, refreshed; it is not tied to the batch, so
        probes and exports cannot disturb training.
        """
        v = self._runs[index]
        if v.frozen is not None:
            row, bufs = v.frozen
        else:
            r = self._active.index(index)
            row, bufs = self._P[r].detach(), {k: b[r] for k, b in self._bufs.items()}
        for p, t, s in zip(v.mirror.parameters(), row.split(self._sizes), self._shapes, strict=True):
            p.copy_(t.view(s))
        for k, b in v.mirror.named_buffers():
            if k in bufs:
                b.copy_(bufs[k])
        return v.mirror

    def variant_state(self, index: int) -> str:
        """running | paused while in the batch, else the variant's own end state."""
        v = self._runs[index]
        return v.state or self.ended or ("paused" if self.paused else "running")

    def _emit(self, state: str, message: str = "", force: bool = False) -> None:
        self._last_emit = (self.step, state)
        if self.on_snapshot is None:
            return
        snaps = []
        for v in self._runs:
            inside = not v.state
            extras: dict[str, Any] = {}
            if self.probes is not None:
                try:
                    probe = self.probes[v.index]
                    model = self.model_for(v.index)
                    if (force or state != "running" or not inside) and _accepts_force(probe):
                        extras = probe(model, force=True) or {}
                    else:
                        extras = probe(model) or {}
                except Exception as exc:  # a broken view must not kill training
                    extras = {"problems": {"views": f"{type(exc).__name__}: {exc}"}}
            h = v.history
            last = lambda k, h=h: h[k][-1] if h[k] else math.nan  # noqa: E731
            samples = self._samples if inside else v.samples
            snaps.append(Snapshot(
                state=state if inside else v.state, epoch=self.epoch if inside else v.epoch,
                step=self.step if inside else v.step, epochs=v.spec.training.epochs, steps_per_epoch=self.steps_per_epoch,
                train_loss=last("train_loss"), train_acc=last("train_acc"), val_loss=last("val_loss"),
                val_acc=last("val_acc"), lr=float(v.lr),
                samples_per_s=samples / self._elapsed if self._elapsed > 0 else 0.0, elapsed=self._elapsed,
                history={k: np.asarray(x, dtype=np.float64) for k, x in h.items()}, extras=extras,
                message=message if inside else v.message))
        self.last_snapshots = snaps
        self.last_snapshot = snaps[0]
        self.on_snapshot(snaps)

    def results(self) -> list[Result]:
        """One engine.protocol.Result per variant, in the order of ``specs``."""
        out = []
        for v in self._runs:
            h = v.history
            last = lambda k, h=h: float(h[k][-1]) if h[k] else math.nan  # noqa: E731
            out.append(Result(epochs=v.epoch if v.state else self.epoch, steps=v.step if v.state else self.step,
                              train_loss=last("train_loss"), train_accuracy=last("train_acc"), val_loss=last("val_loss"),
                              val_accuracy=last("val_acc"), seconds=round(self._elapsed, 3), device=device_name(self.device),
                              stopped_reason=v.message, history={k: list(x) for k, x in h.items()}))
        return out

    result = results  # Trainer's name, for callers that only know Trainer


def compare_trainers(variants: Sequence[Any], data: datasets.Data, *,
                     on_snapshot: Callable[[int, Snapshot], None] | None = None,
                     probes: Sequence[Callable[..., dict]] | None = None,
                     **kw: Any) -> list[tuple[list[int], BatchedTrainer]]:
    """One BatchedTrainer per engine.variants.batch_groups group: [(variant indices, trainer)].

    ``on_snapshot(index, snapshot)`` and ``probes[index]`` use indices into ``variants``; other
    keywords go to every BatchedTrainer (device, max_rate, forward).
    """
    from engine.variants import batch_groups

    out = []
    for group in batch_groups(list(variants)):
        cb = None
        if on_snapshot is not None:
            cb = lambda snaps, g=group: [on_snapshot(i, s) for i, s in zip(g, snaps, strict=True)]  # noqa: E731
        out.append((group, BatchedTrainer([variants[i].spec for i in group], data, on_snapshot=cb,
                                          probes=[probes[i] for i in group] if probes is not None else None,
                                          labels=[variants[i].label for i in group], **kw)))
    return out


def _as(value: tuple[torch.Tensor, str], layout: str, n: int) -> torch.Tensor:
    """A value of the batched forward in the wanted layout: "vm" (N, B, ...) variant-major,
    "bm" (B, N, ...) batch-major, "ch" (B, N*C, H, W) an image with the variants' channels side by side."""
    t, have = value
    if have == layout:
        return t
    if have == "ch":
        t, have = t.reshape(t.shape[0], n, -1, *t.shape[2:]), "bm"
        if layout == "bm":
            return t
    if layout == "ch":
        t = t if have == "bm" else t.transpose(0, 1)
        return t.reshape(t.shape[0], -1, *t.shape[3:])
    return t.transpose(0, 1)
