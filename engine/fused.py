"""A fused training path for small plain networks: the forward pass, the backward pass and the
optimiser step written out as a few batched array operations, without autograd.

Why (issue 14): a 2-4-2-1 net at batch 10 costs ~1 ms per eager torch step, nearly all of it
per-op overhead; its arithmetic takes microseconds. numpy's per-call overhead on tiny arrays is
far below torch's, so on the CPU the step runs in numpy, on arrays that *are* the module's
parameters: each ``Parameter.data`` is re-pointed into one flat buffer and numpy works on views
of it. Snapshots, probes, exports and ``load_state_dict`` therefore always see (and set) the
current weights with nothing copied; the gradients of the last step sit in ``p.grad`` (views of a
flat gradient buffer, as the diagnostics expect) and the torch optimiser's own state tensors
(momentum buffers, Adam moments and step counts) are views of the fused state, so eager and
fused steps can follow each other. On another device the same code runs with torch ops on the
device, syncing with the host once per call, not per step.

Supported: a chain Input -> (Dense | Activation linear/tanh/sigmoid/relu/leaky_relu |
Dropout with rate 0)* -> Output (a Linear head), at most MAX_LINEARS weighted layers; every loss of the Spec; SGD (momentum,
Nesterov, weight decay), Adam and AdamW; L1/L2 penalties, gradient clipping, schedules (the
learning rate is read from the optimiser before each call). Anything else: ``plan`` returns
None and the trainer keeps its eager loop. Results equal the eager path to float rounding
(tests/engine/test_fused.py).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

LOSSES = ("cross_entropy", "bce", "mse", "mae", "huber")
# At most TensorFlow Playground's depth (6 hidden layers + the head): where per-op overhead is the cost.
# Deeper chains amplify the rounding differences between numpy and torch into another trajectory
# (deep_relu_he.json, lr 0.05 with momentum 0.9 over 10 ReLU layers, diverged at epoch 16 here but
# not eagerly - and eagerly it collapses to 50 % when its start weights move by 1e-7), so they keep
# the eager path their examples were tuned on.
MAX_LINEARS = 7
_ACTS = {nn.Identity: "linear", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu"}


class _Unsupported(Exception):
    pass


def _need(cond: bool, why: str) -> None:
    if not cond:
        raise _Unsupported(why)


class _Np:
    """The array operations the step needs, on numpy arrays."""

    matmul = staticmethod(np.matmul)
    tanh, exp, sign, abs, sqrt, log, log1p = np.tanh, np.exp, np.sign, np.abs, np.sqrt, np.log, np.log1p
    where = staticmethod(np.where)

    @staticmethod
    def colsum(a, out):
        return np.add.reduce(a, 0, out=out)  # np.sum's Python wrapper costs more than the sum here

    @staticmethod
    def rowmax(a):
        return a.max(1, keepdims=True)

    @staticmethod
    def rowsum(a):
        return a.sum(1, keepdims=True)

    @staticmethod
    def clip(a, lo, hi):
        return np.clip(a, lo, hi)

    @staticmethod
    def relu(a):
        return np.maximum(a, 0)

    @staticmethod
    def dot(a):
        return float(np.dot(a, a))


class _Torch:
    """The same operations on torch tensors (any device; no autograd)."""

    matmul = staticmethod(torch.matmul)
    tanh, exp, sign, abs, sqrt, log, log1p = torch.tanh, torch.exp, torch.sign, torch.abs, torch.sqrt, torch.log, torch.log1p
    where = staticmethod(torch.where)

    @staticmethod
    def colsum(a, out):
        return torch.sum(a, 0, out=out)

    @staticmethod
    def rowmax(a):
        return a.amax(1, keepdim=True)

    @staticmethod
    def rowsum(a):
        return a.sum(1, keepdim=True)

    @staticmethod
    def clip(a, lo, hi):
        return torch.clamp(a, lo, hi)

    @staticmethod
    def relu(a):
        return torch.clamp_min(a, 0)

    @staticmethod
    def dot(a):
        return torch.dot(a, a)  # stays on the device: no sync


class _Linear:
    def __init__(self, w, b, gw, gb):
        self.w, self.b, self.gw, self.gb = w, b, gw, gb
        self.wT = w.T


class _Act:
    def __init__(self, fn: str, slope: float = 0.0):
        self.fn, self.slope = fn, slope


def _chain(model) -> list:
    """The model's layers as a list of nn.Linear / _Act, or _Unsupported."""
    order = list(getattr(model, "order", ()))
    _need(bool(order) and order[0] == model.input_id and order[-1] == model.output_id, "not a plain chain")
    ops: list = []
    prev = model.input_id
    for lid in order[1:]:
        _need(model.sources.get(lid) == [prev], f"{lid} is not fed by the layer before it")
        mod = model.layers[lid]
        kind = model.kinds.get(lid)
        if type(mod) is nn.Linear and kind in ("Dense", "Output"):
            ops.append(mod)
        elif kind == "Activation" and type(mod) in _ACTS:
            ops.append(_Act(_ACTS[type(mod)], float(getattr(mod, "negative_slope", 0.0))))
        elif kind == "Dropout" and type(mod) is nn.Dropout and mod.p == 0:
            pass  # rate 0 is the identity (a rate > 0 draws torch's random masks: kept eager)
        else:
            raise _Unsupported(f"{lid}: {kind} is not fused")
        prev = lid
    _need(bool(ops) and isinstance(ops[-1], nn.Linear) and model.kinds.get(order[-1]) == "Output", "no Linear head")
    _need(sum(isinstance(o, nn.Linear) for o in ops) <= MAX_LINEARS, "deeper than MAX_LINEARS")
    return ops


def _optimiser(opt) -> str:
    _need(len(opt.param_groups) == 1, "several parameter groups")
    from torch.optim import optimizer as o

    # someone watches optimizer.step() (a test counting steps, a profiler): let it see real steps
    _need(not (opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks
               or o._global_optimizer_pre_hooks or o._global_optimizer_post_hooks), "optimiser step hooks")
    g = opt.param_groups[0]
    # "fused" (torch's one-kernel update, which the trainer asks for) keeps the same state layout
    _need(not g.get("maximize") and not g.get("differentiable") and not g.get("capturable"), "optimiser flags")
    if type(opt) is torch.optim.SGD:
        _need(g.get("dampening", 0) == 0, "dampening")
        return "sgd"
    if type(opt) in (torch.optim.Adam, torch.optim.AdamW):
        _need(not g.get("amsgrad") and not torch.is_tensor(g["lr"]), "amsgrad / tensor lr")
        # torch >= 2.x: Adam(decoupled_weight_decay=True) is AdamW
        return "adamw" if type(opt) is torch.optim.AdamW or g.get("decoupled_weight_decay") else "adam"
    raise _Unsupported(f"optimiser {type(opt).__name__}")


def plan(trainer, diverged: type[Exception], to_pred: Callable, score: Callable) -> Fused | None:
    """A Fused runner for ``trainer`` (a plain engine.trainer.Trainer), or None to stay eager.

    ``diverged`` is raised (with the loss) on a non-finite loss; ``to_pred(outputs, loss)`` turns
    outputs into classes and ``score(outputs, targets, loss)`` gives R^2, as the trainer counts them
    (engine.trainer's functions, passed in: this module imports nothing of the engine).
    """
    try:
        return Fused(trainer, diverged, to_pred, score)
    except _Unsupported:
        return None


class Fused:
    """Runs a trainer's steps on views of its model's parameters (see the module docstring)."""

    numpy_on_cpu = True  # False: torch ops on the CPU too (the GPU code path, so the tests can run it here)

    def __init__(self, trainer, diverged: type[Exception], to_pred: Callable, score: Callable):
        tr = self.tr = trainer
        self._diverged, self._to_pred, self._score = diverged, to_pred, score
        model, opt = tr.model, tr.optimizer
        _need(tr.loss in LOSSES, f"loss {tr.loss}")
        linears = _chain(model)
        self.kind = _optimiser(opt)
        params = list(model.parameters())
        own = [p for m in (o for o in linears if isinstance(o, nn.Linear)) for p in (m.weight, m.bias) if p is not None]
        _need([id(p) for p in params] == [id(p) for p in own], "parameters outside the chain")
        _need([id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in own], "optimiser holds other tensors")
        _need(all(p.dtype == torch.float32 and p.requires_grad for p in params), "float32 parameters only")
        dev = params[0].device
        _need(all(p.device == dev for p in params) and dev.type == tr.device.type, "one device, the trainer's")
        _need("forward" not in vars(model), "model.forward replaced on the instance (a wrapper must see every call)")
        x = tr._x
        _need(isinstance(linears[0], nn.Linear), "a Dense layer first")  # Input -> Activation -> ... stays eager
        _need(x.dim() == 2 and x.dtype == torch.float32 and x.shape[1] == linears[0].in_features, "flat float inputs")
        _need(tr._xv.dim() == 2 and tr._xv.dtype == torch.float32, "flat float validation inputs")
        k = linears[-1].out_features
        target, val_target = (self._targets(tr, y, k) for y in (tr._y, tr._yv))
        self.params = params
        self.cpu = dev.type == "cpu" and self.numpy_on_cpu
        self.xp = _Np if self.cpu else _Torch
        n = sum(p.numel() for p in params)
        # one flat buffer each for weights, gradients and optimiser state; the module's parameters
        # and the optimiser's state become views of them
        self.flat_t = torch.empty(n, device=dev)
        self.grad_t = torch.zeros(n, device=dev)
        views, gviews, off = [], [], 0
        with torch.no_grad():
            for p in params:
                m = p.numel()
                self.flat_t[off:off + m].copy_(p.detach().reshape(-1))
                p.data = self.flat_t[off:off + m].view_as(p)
                views.append((off, m, tuple(p.shape)))
                gviews.append(self.grad_t[off:off + m].view_as(p))
                off += m
        self._gviews = gviews
        self.state = self._adopt_state(opt, dev)
        arr = (lambda t: t.numpy()) if self.cpu else (lambda t: t)
        self.flat, self.grad = arr(self.flat_t), arr(self.grad_t)
        self.mom = {k2: arr(v) for k2, v in self.state.items()}
        it = iter(views)
        self.ops: list = []
        for o in linears:
            if not isinstance(o, nn.Linear):
                self.ops.append(o)
                continue
            (wo, wm, ws) = next(it)
            w = self.flat[wo:wo + wm].reshape(ws)
            gw = self.grad[wo:wo + wm].reshape(ws)
            b = gb = None
            if o.bias is not None:
                bo, bm, _ = next(it)
                b, gb = self.flat[bo:bo + bm], self.grad[bo:bo + bm]
            self.ops.append(_Linear(w, b, gw, gb))
        self.weights = [o for o in self.ops if isinstance(o, _Linear)]
        self.x = arr(x.contiguous())
        self.t = arr(target.contiguous())
        self.xv, self.tv = arr(tr._xv.contiguous()), arr(val_target.contiguous())
        self.k = k
        self.outs = self.t[:0]  # the epoch's outputs in perm order (made in run_epoch)

    @staticmethod
    def _targets(tr, y, k: int) -> torch.Tensor:
        """The float (N, k) targets the losses compare outputs with (engine.trainer.loss_fn's rule)."""
        if tr.regression:
            _need(y.is_floating_point() and y.dim() == 2 and y.shape[1] == k and tr.loss != "cross_entropy", "targets")
            return y.to(torch.float32)
        _need(y.dtype == torch.int64 and y.dim() == 1, "class targets")
        if k == 1 and tr.loss != "cross_entropy":
            return y.to(torch.float32).unsqueeze(1)
        _need(k >= 2 and (len(y) == 0 or int(y.max()) < k), "one output per class")
        return torch.nn.functional.one_hot(y, k).to(torch.float32)

    def _adopt_state(self, opt, dev) -> dict[str, torch.Tensor]:
        """Flat optimiser state whose slices replace (after copying) the optimiser's own tensors."""
        names = ("momentum_buffer",) if self.kind == "sgd" else ("exp_avg", "exp_avg_sq")
        n = self.flat_t.numel()
        flat = {name: torch.zeros(n, device=dev) for name in names}
        self.t_step = 0
        self._steps = None
        if self.kind != "sgd":
            self._steps = torch.zeros(len(self.params))  # Adam's per-parameter step counts (CPU, float32)
        off = 0
        for i, p in enumerate(self.params):
            m = p.numel()
            st = opt.state[p]
            for name in names:
                old = st.get(name)
                if old is not None:
                    flat[name][off:off + m].copy_(old.reshape(-1))
                st[name] = flat[name][off:off + m].view_as(p)
            if self._steps is not None:
                if "step" in st:
                    self.t_step = int(float(st["step"]))
                st["step"] = self._steps[i]
            off += m
        if self._steps is not None:
            self._steps.fill_(self.t_step)
        return flat

    # ---- one step -------------------------------------------------------------------------
    def _step(self, xb, tb, hp: dict):
        """Forward, loss, backward into the gradient buffer, optimiser update; returns the loss
        (a 0-d array or tensor, with the L1/L2 penalty) and the outputs before the update."""
        xp = self.xp
        a = xb
        saved = []
        for op in self.ops:
            if isinstance(op, _Linear):
                saved.append(a)
                a = a @ op.wT
                if op.b is not None:
                    a += op.b
            else:
                h = a
                a = self._act(op, h)
                saved.append((h, a))
        out = a
        loss, d = self._loss(out, tb)
        for i in range(len(self.ops) - 1, -1, -1):
            op, s = self.ops[i], saved[i]
            if isinstance(op, _Linear):
                xp.matmul(d.T, s, out=op.gw)
                if op.b is not None:
                    xp.colsum(d, op.gb)
                if i:
                    d = d @ op.w
            else:
                h, a = s
                fn = op.fn
                if fn == "tanh":
                    d = d * (1.0 - a * a)
                elif fn == "sigmoid":
                    d = d * (a * (1.0 - a))
                elif fn == "relu":
                    d = d * (h > 0)
                elif fn == "leaky_relu":
                    d = xp.where(h > 0, d, d * op.slope)
        l1, l2 = hp["l1"], hp["l2"]
        if l1 or l2:
            pen = 0.0
            for op in self.weights:
                w = op.w
                if l1:
                    pen = pen + l1 * xp.abs(w).sum()
                    op.gw += l1 * xp.sign(w)
                if l2:
                    pen = pen + l2 * (w * w).sum()
                    op.gw += (2.0 * l2) * w
            loss = loss + pen
        if self.cpu and not math.isfinite(loss):
            return loss, out  # as the eager loop: no update from a non-finite loss (run_epoch raises)
        g = self.grad
        if hp["clip"] > 0:
            total = xp.sqrt(xp.dot(g)) if not self.cpu else math.sqrt(xp.dot(g))
            coef = hp["clip"] / (total + 1e-6)
            if self.cpu:
                if coef < 1.0:
                    g *= np.float32(coef)
            else:
                g *= torch.clamp(coef, max=1.0)
        self._update(hp)
        return loss, out

    def _loss(self, out, t):
        """(mean loss, d loss / d out) for the batch, as torch's functional losses define them."""
        xp = self.xp
        name = self.tr.loss
        n = out.shape[0] * out.shape[1]
        if name == "cross_entropy":
            z = out - xp.rowmax(out)
            e = xp.exp(z)
            s = xp.rowsum(e)
            loss = -((z - xp.log(s)) * t).sum() / out.shape[0]
            return loss, (e / s - t) * (1.0 / out.shape[0])
        if name == "bce":
            loss = (xp.relu(out) - out * t + xp.log1p(xp.exp(-xp.abs(out)))).sum() / n
            return loss, (1.0 / (1.0 + xp.exp(-out)) - t) * (1.0 / n)
        diff = out - t
        if name == "mae":
            return xp.abs(diff).sum() / n, xp.sign(diff) * (1.0 / n)
        if name == "huber":
            ad = xp.abs(diff)
            loss = xp.where(ad < 1.0, 0.5 * diff * diff, ad - 0.5).sum() / n
            return loss, xp.clip(diff, -1.0, 1.0) * (1.0 / n)
        return (diff * diff).sum() / n, diff * (2.0 / n)

    def evaluate(self) -> tuple[float, float]:
        """Trainer.evaluate on the validation set: (loss, accuracy or R^2; last_mae set for regression)."""
        tr = self.tr
        a = self.xv
        ctx = np.errstate(over="ignore", invalid="ignore", divide="ignore") if self.cpu else torch.no_grad()
        with ctx:
            for op in self.ops:
                if isinstance(op, _Linear):
                    a = a @ op.wT
                    if op.b is not None:
                        a += op.b
                else:
                    a = self._act(op, a)
            loss = float(self._loss(a, self.tv)[0])
        out = torch.from_numpy(a) if self.cpu else a
        y = tr._yv
        if tr.regression:
            tr.last_mae = float((out - y).abs().mean()) if len(y) else math.nan
            return loss, self._score(out, y, tr.loss)
        return loss, int((self._to_pred(out, tr.loss) == y).sum()) / max(1, len(y))

    def _act(self, op: _Act, h):
        xp, fn = self.xp, op.fn
        if fn == "tanh":
            return xp.tanh(h)
        if fn == "sigmoid":
            return 1.0 / (1.0 + xp.exp(-h))
        if fn == "relu":
            return xp.relu(h)
        if fn == "leaky_relu":
            return xp.where(h > 0, h, h * op.slope)
        return h

    def _update(self, hp: dict) -> None:
        """The optimiser step on the flat buffers, in the order torch.optim's single-tensor code uses."""
        p, g = self.flat, self.grad
        lr, wd = hp["lr"], hp["weight_decay"]
        if self.kind == "sgd":
            if wd:
                g = g + wd * p
            m = hp["momentum"]
            if m:
                buf = self.mom["momentum_buffer"]
                buf *= m
                buf += g
                g = g + m * buf if hp["nesterov"] else buf
            p -= lr * g
            return
        b1, b2 = hp["betas"]
        if self.kind == "adamw":
            if wd:
                p *= 1.0 - lr * wd
        elif wd:
            g = g + wd * p
        m1, m2 = self.mom["exp_avg"], self.mom["exp_avg_sq"]
        m1 += (1.0 - b1) * (g - m1)  # lerp with weight 1 - beta1 < 0.5, as torch computes it
        m2 *= b2
        m2 += (1.0 - b2) * (g * g)
        self.t_step += 1
        bc1 = 1.0 - b1 ** self.t_step
        bc2 = 1.0 - b2 ** self.t_step
        denom = self.xp.sqrt(m2) / math.sqrt(bc2) + hp["eps"]
        p -= (lr / bc1) * (m1 / denom)

    # ---- many steps -----------------------------------------------------------------------
    def _hyper(self) -> dict:
        g = self.tr.optimizer.param_groups[0]
        t = self.tr.spec.training
        return {"lr": float(g["lr"]), "weight_decay": float(g.get("weight_decay", 0.0)),
                "momentum": float(g.get("momentum", 0.0)), "nesterov": bool(g.get("nesterov", False)),
                "betas": tuple(float(b) for b in g.get("betas", (0.9, 0.999))), "eps": float(g.get("eps", 1e-8)),
                "l1": float(t.l1), "l2": float(t.l2), "clip": float(t.grad_clip)}

    def steps(self, xs, ts, bounds: list[int], b0: int, b1: int, deadline: float, interrupted: Callable[[], bool]):
        """Batches b0..b1-1 of the epoch (rows bounds[b]:bounds[b+1] of the shuffled xs/ts); stops
        early, before a batch, once ``deadline`` (perf_counter) has passed or ``interrupted()``
        says the trainer must look. Returns the losses of the batches done (Python floats)."""
        hp = self._hyper()
        tr = self.tr
        for p, gv in zip(self.params, self._gviews, strict=True):
            if p.grad is not gv:  # first call, or an eager step replaced them
                p.grad = gv
        losses = []
        outs = self.outs
        clock = time.perf_counter
        ctx = np.errstate(over="ignore", invalid="ignore", divide="ignore") if self.cpu else torch.no_grad()
        with ctx:
            for b in range(b0, b1):
                if b > b0 and (clock() >= deadline or interrupted()):
                    break
                lo, hi = bounds[b], bounds[b + 1]
                loss, out = self._step(xs[lo:hi], ts[lo:hi], hp)
                outs[lo:hi] = out
                losses.append(loss)
                tr.step += 1  # per step, so a reader of tr.step (a test, a task) sees real progress
                if self.cpu and not math.isfinite(loss):
                    break  # (on a GPU this would cost a sync per step: there the chunk runs on)
        if self._steps is not None:
            self._steps.fill_(self.t_step)
        self.tr.optimizer._opt_called = True  # what optimizer.step() tells an LR scheduler (else it warns)
        if self.cpu:
            return [float(v) for v in losses]
        return torch.stack(losses).tolist()  # the one host sync of the call

    def run_epoch(self, perm: torch.Tensor, start: float, last_emit: float, first: int = 0, loss_sum: float = 0.0,
                  preds: list | None = None, seen: int = 0):
        """One epoch as the trainer's eager loop runs it (gate before every call, reports at the
        same moments, one batch per call while stepping or when a report is due).

        ``first``, ``loss_sum``, ``preds``, ``seen``: a saved run's partial epoch (engine.run_state) - its
        first ``first`` batches are done. Returns (loss_sum, preds, seen, last_emit) as the eager loop leaves them."""
        tr = self.tr
        spe, bs = tr.steps_per_epoch, tr.batch_size
        n = len(perm)
        bounds = [min(b * bs, n) for b in range(spe)] + [n]  # the last batch takes the rest
        idx = perm.numpy() if self.cpu else perm
        xs, ts = self.x[idx], self.t[idx]  # the whole epoch gathered at once
        if len(self.outs) != n:
            self.outs = np.empty((n, self.k), np.float32) if self.cpu else torch.empty((n, self.k), device=self.flat_t.device)
        stop = tr._stop

        def interrupted() -> bool:  # anything _gate would act on
            return (tr._steps_allowed != -1 or stop.is_set() or bool(tr._tasks) or bool(tr._pending_hyper)
                    or tr._pace_interval > 0)

        carried, seen0, b = list(preds or ()), seen, first
        tr._progress = (b, loss_sum, seen, lambda: carried + self._preds(seen0, seen0))
        last_epoch = tr.epoch == tr.spec.training.epochs - 1
        while b < spe:
            if not tr._gate(start):
                break
            now = time.perf_counter()
            # the run's very last batch is measured too: a run over in a fraction of a second would
            # otherwise end showing the diagnostics of its first step
            due = now - last_emit >= tr.min_interval and tr._probes_idle()  # as the eager loop
            if tr._single_stepping() or due or (last_epoch and b == spe - 1):
                if tr._before_step is not None:
                    tr._before_step(tr.model, tr.step + 1)  # the diagnostics' before-copy of the reported step
                end, deadline = b + 1, math.inf
            else:  # free running up to the next report (and short of the run's last batch)
                end, deadline = (spe - 1 if last_epoch else spe), last_emit + tr.min_interval
            step0 = tr.step
            losses = self.steps(xs, ts, bounds, b, end, deadline, interrupted)
            for i, value in enumerate(losses):
                if not math.isfinite(value):
                    tr.step = step0 + i  # as the eager loop: the steps before the bad one
                    raise self._diverged(value)
                m = bounds[b + i + 1] - bounds[b + i]
                loss_sum += value * m
                seen += m
            k = len(losses)
            tr._samples += bounds[b + k] - bounds[b]
            b += k
            tr._progress = (b, loss_sum, seen, lambda s=seen: carried + self._preds(seen0, s))  # for engine.run_state
            now = time.perf_counter()
            if (now - last_emit >= tr.min_interval and tr._probes_idle()) or tr._single_stepping():
                last_emit = now
                tr._elapsed = now - start
                tr._emit("running" if not tr.paused else "paused")
        return loss_sum, carried + self._preds(seen0, seen), seen, last_emit

    def _preds(self, lo: int, hi: int) -> list:
        """What the trainer counts the epoch's score from (outputs for regression, else classes), rows lo:hi."""
        outs = (torch.from_numpy(self.outs) if self.cpu else self.outs)[lo:hi]
        return [outs.clone() if self.tr.regression else self._to_pred(outs, self.tr.loss)]
