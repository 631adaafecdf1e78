"""The training loop: plain Python, no Qt. Cooperative pause/step/stop, bounded-rate snapshots.

A GUI runs ``Trainer.run()`` in a worker thread and calls ``pause``/``resume``/``step_once``/
``stop``/``set_hyper`` from its own thread; these only set flags that the loop reads between
batches. Snapshots carry numpy arrays and Python scalars only.
"""
from __future__ import annotations

import collections
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine import datasets
from engine.build import GraphNet, build
from engine.protocol import HISTORY_KEYS, Result, Snapshot
from engine.spec import Spec

__all__ = ["HISTORY_KEYS", "Result", "Snapshot", "Trainer", "choose_device", "device_name"]

def choose_device(requested: str = "auto") -> torch.device:
    """cuda > mps > cpu for "auto"; an explicit request that is unavailable raises ValueError."""
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("training.device: CUDA was asked for but no CUDA GPU is available - use auto or cpu")
    if requested == "mps" and not mps_ok:
        raise ValueError("training.device: MPS was asked for but is not available - use auto or cpu")
    if requested not in ("cpu", "cuda", "mps"):
        raise ValueError(f"training.device: unknown device {requested!r} - use auto, cpu, cuda or mps")
    return torch.device(requested)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA {torch.cuda.get_device_name(device)}"
    return "Apple MPS" if device.type == "mps" else "CPU"


def available_devices() -> list[str]:
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    return out


def outputs_to_pred(out: torch.Tensor, loss: str) -> torch.Tensor:
    """Predicted class from the Output layer's values under the given loss."""
    if out.shape[1] == 1:
        return (out[:, 0] > (0.0 if loss == "bce" else 0.5)).long()
    return out.argmax(1)


def loss_fn(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "cross_entropy":
        return F.cross_entropy(out, y)
    if y.is_floating_point():  # regression: the targets are the numbers themselves
        target = y
    elif out.shape[1] == 1:  # binary head: one unit, targets 0/1
        target = y.to(out.dtype).unsqueeze(1)
    else:
        target = F.one_hot(y, out.shape[1]).to(out.dtype)
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(out, target)
    if loss == "mae":
        return F.l1_loss(out, target)
    if loss == "huber":
        return F.huber_loss(out, target)
    return F.mse_loss(out, target)


def score(out: torch.Tensor, y: torch.Tensor, loss: str) -> float:
    """The task's score of outputs against targets: accuracy for classes, R^2 for regression."""
    if y.is_floating_point():
        sst = float(((y - y.mean(dim=0)) ** 2).sum())
        sse = float(((y - out) ** 2).sum())
        return 1.0 - sse / sst if sst > 0 else math.nan
    return float((outputs_to_pred(out, loss) == y).float().mean()) if len(y) else math.nan


def _accepts_force(fn) -> bool:
    import inspect

    try:
        return "force" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _fused(cls, params: list, **kw) -> torch.optim.Optimizer:
    """The optimiser with torch's fused update where the device has one: the same algorithm in one
    kernel instead of a Python loop over the parameters (bench/engine_overhead.py: Adam on the xor
    MLP +45 % samples/s, on the digits CNN +4 %; results equal the loop's to float rounding)."""
    try:
        return cls(params, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):  # a device or dtype without a fused kernel
        return cls(params, **kw)


class Diverged(Exception):
    pass


def is_device_error(exc: BaseException) -> bool:
    """A failure of the accelerator (out of memory, lost device) rather than of the design."""
    text = str(exc).lower()
    return (type(exc).__name__ == "OutOfMemoryError" or "out of memory" in text or "cuda" in text
            or "device-side" in text or "mps" in text)


class Trainer:
    """Trains one design on one dataset; drive it with ``run()`` (blocking) from any thread."""

    use_fused = True  # small plain nets train on engine.fused (same results, no autograd); False: always eager
    _fused = None  # engine.fused's runner while run() uses it

    def __init__(self, spec: Spec, data: datasets.Data | None = None, *, device: str | None = None,
                 epochs: int | None = None, seed: int | None = None,
                 on_snapshot: Callable[[Snapshot], None] | None = None,
                 probe: Callable[[GraphNet], dict] | None = None, max_rate: float = 30.0,
                 model: GraphNet | None = None, probes_beside: bool = False):
        self.spec = spec.copy()
        t = self.spec.training
        if epochs is not None:
            t.epochs = int(epochs)
        if seed is not None:
            t.seed = int(seed)
        self.data = data if data is not None else datasets.load(self.spec.dataset)
        self.device = choose_device(device or t.device)
        self.model = model if model is not None else build(self.spec, self.data.info)
        self.model.to(self.device)
        self.on_snapshot = on_snapshot
        self.probe = probe
        self._before_step = getattr(probe, "before_step", None)  # engine.diagnostics: update/weight ratios
        # the views' arrays on a second core (engine.probe_thread), for probes that only read the model given
        self._probe_thread = None
        if probes_beside and probe is not None and getattr(probe, "beside_training", False) and on_snapshot is not None:
            from engine.probe_thread import ProbeThread
            from engine.probes import BESIDE_BUDGET

            self._probe_thread = ProbeThread(probe, on_snapshot)
            probe.budget = BESIDE_BUDGET
        self.min_interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self.loss = t.loss
        # regression: the history's train_acc/val_acc hold R^2 and val_mae the validation MAE
        self.regression = getattr(self.data.info, "task", "classification") == "regression"
        self._x = torch.as_tensor(self.data.x_train, device=self.device)
        self._y = torch.as_tensor(self.data.y_train, device=self.device)
        self._xv = torch.as_tensor(self.data.x_val, device=self.device)
        self._yv = torch.as_tensor(self.data.y_val, device=self.device)
        self.batch_size = max(1, min(t.batch_size, len(self._x)))
        self.steps_per_epoch = math.ceil(len(self._x) / self.batch_size)
        if len(self._x) % self.batch_size == 1 and self.steps_per_epoch > 1:
            # a last batch of one sample breaks BatchNorm ("expected more than 1 value per channel")
            # and makes a noisy step: it joins the batch before it instead
            self.steps_per_epoch -= 1
        self.optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()
        # L1/L2 act on the weights of Dense/Conv/Output layers, not on biases or normalisation gains
        self._penalised = [m.weight for m in self.model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
        self._gen = torch.Generator().manual_seed(t.seed)
        self._epoch_rng: torch.Tensor | None = None  # _gen's state before the epoch in progress drew its order
        # (batches done, loss sum, samples seen, predictions) of the epoch in progress, and the same of a saved
        # run to go on from (engine.run_state)
        self._progress: tuple | None = None
        self._resume_progress: tuple | None = None
        self._init_control()

    def _init_control(self) -> None:
        """The control flags, counters and task queue (shared with engine.gan.GanTrainer)."""
        # control flags, written by other threads
        self._stop = threading.Event()
        self._run_gate = threading.Event()
        self._run_gate.set()
        self._steps_allowed = -1  # -1: free running; n >= 0: steps left before pausing
        self._lock = threading.Lock()
        self._pending_hyper: dict[str, float] = {}
        self._pace_interval = 0.0  # s between optimiser steps when the speed is capped (set_pace); 0: full speed
        self._pace_next = 0.0
        self.stop_reason = ""
        self.epoch = 0
        self.step = 0
        self.history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
        self._good_state: dict[str, torch.Tensor] | None = None
        self._elapsed = 0.0
        self._samples = 0
        self._last_emit: tuple[int, str] = (-1, "")  # (step, state) of the last report
        self.last_snapshot: Snapshot | None = None
        self.last_mae = math.nan
        self.on_report: Callable[[int], None] | None = None  # training thread, at each snapshot: (epoch)
        self.on_epoch_end: Callable[[], None] | None = None  # training thread, after each epoch (engine.timeline_host)
        self.ended = ""  # the final state once run() has returned: finished | stopped | diverged
        # work other threads hand to the training thread (probes, exports, weight copies): run
        # between batches, while paused, or after the run, so it never sees a half-done step
        self._tasks: collections.deque[Callable[[], None]] = collections.deque()
        self._task_event = threading.Event()

    # ---- construction ----------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        t = self.spec.training
        params = list(self.model.parameters())
        wd = t.weight_decay
        if t.optimizer == "sgd":
            return _fused(torch.optim.SGD, params, lr=t.lr, momentum=t.momentum, nesterov=t.nesterov, weight_decay=wd)
        if t.optimizer == "adam":
            return _fused(torch.optim.Adam, params, lr=t.lr, weight_decay=wd)
        if t.optimizer == "adamw":
            return _fused(torch.optim.AdamW, params, lr=t.lr, weight_decay=wd)
        if t.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=t.lr, momentum=t.momentum, weight_decay=wd)
        if t.optimizer == "adagrad":
            return _fused(torch.optim.Adagrad, params, lr=t.lr, weight_decay=wd)
        raise ValueError(f"training.optimizer: unknown optimiser {t.optimizer!r}")

    def _make_scheduler(self):
        t = self.spec.training
        o = self.optimizer
        if t.lr_schedule == "step":
            return torch.optim.lr_scheduler.StepLR(o, step_size=t.step_size, gamma=t.gamma)
        if t.lr_schedule == "exponential":
            return torch.optim.lr_scheduler.ExponentialLR(o, gamma=t.gamma)
        if t.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=max(1, t.epochs))
        return None

    # ---- control (any thread) ----------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        self._run_gate.set()

    # the gate is set/cleared under the lock together with _steps_allowed, so the two never disagree
    def pause(self) -> None:
        with self._lock:
            self._steps_allowed = 0
            self._run_gate.clear()

    def resume(self) -> None:
        with self._lock:
            self._steps_allowed = -1
            self._run_gate.set()

    def step_once(self) -> None:
        """While paused: run exactly one batch, report, and pause again (each call adds one batch)."""
        with self._lock:
            self._steps_allowed = max(self._steps_allowed, 0) + 1
            self._run_gate.set()

    @property
    def paused(self) -> bool:
        return not self._run_gate.is_set()

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` on the training thread at the next safe point (any thread may call this)."""
        self._tasks.append(fn)
        self._task_event.set()

    def _run_tasks(self) -> None:
        while self._tasks:
            self._tasks.popleft()()

    def serve_tasks(self, until: threading.Event) -> None:
        """After run(): keep running handed-over work until ``until`` is set."""
        while not until.is_set():
            self._task_event.wait(0.1)
            self._task_event.clear()
            self._run_tasks()

    def report(self) -> None:
        """Emit a snapshot of the current model with every probe recomputed (training thread)."""
        state = self.ended or ("paused" if self.paused else "running")
        self._emit(state, message=self.stop_reason if self.ended else "", force=True)

    def set_hyper(self, **values: float) -> None:
        """Change lr, momentum or weight_decay; applied before the next batch."""
        with self._lock:
            self._pending_hyper.update(values)

    def set_pace(self, epochs_per_s: float = 0.0, slow_motion: bool = False) -> None:
        """Cap the speed so a fast run can be watched (any thread): at most ``epochs_per_s`` epochs a
        second (0: full speed), or ``slow_motion``: one batch per snapshot interval, each one reported."""
        if slow_motion:
            interval = max(self.min_interval, 1 / 30)
        elif epochs_per_s > 0:
            interval = 1.0 / (epochs_per_s * max(1, getattr(self, "steps_per_epoch", 1)))
        else:
            interval = 0.0
        self._pace_interval = interval

    def _pace_wait(self) -> None:
        """Before a batch while the speed is capped: wait for its turn, still serving stop and handed-over work."""
        while not self._stop.is_set() and self._steps_allowed == -1:  # a pause ends the wait (the gate pauses)
            left = self._pace_next - time.perf_counter()
            if left <= 0:
                break
            self._task_event.wait(min(left, 0.02))
            self._task_event.clear()
            if self._tasks:
                self._run_tasks()
        self._pace_next = max(self._pace_next, time.perf_counter() - self._pace_interval) + self._pace_interval

    def _apply_hyper(self) -> None:
        with self._lock:
            pending, self._pending_hyper = self._pending_hyper, {}
        for key, value in pending.items():
            for i, g in enumerate(self.optimizer.param_groups):
                if key == "lr":
                    g["lr"] = float(value)
                    if self.scheduler is not None:  # the schedule continues from the new base
                        self.scheduler.base_lrs[i] = float(value)
                elif key == "momentum" and "momentum" in g:
                    g["momentum"] = float(value)
                elif key == "weight_decay" and "weight_decay" in g:
                    g["weight_decay"] = float(value)
            if key in ("lr", "momentum", "weight_decay"):
                setattr(self.spec.training, key, float(value))

    # ---- the loop ----------------------------------------------------------------------
    def run_with_cpu_fallback(self, notify: Callable[[str], None] | None = None) -> Result:
        """run(), and if the GPU fails (out of memory, lost device) go on from the last epoch on the CPU."""
        while True:
            try:
                return self.run()
            except RuntimeError as exc:
                if self.device.type == "cpu" or not is_device_error(exc):
                    raise
                first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
                self._restore_good()  # the failed step may have left the weights half-updated
                self._move_to(torch.device("cpu"))
                if notify is not None:
                    notify(f"GPU error ({first}) - continuing on the CPU from epoch {self.epoch + 1}")

    def _move_to(self, device: torch.device) -> None:
        self.model.to(device)  # parameters move in place, so the optimiser keeps them
        for state in self.optimizer.state.values():
            for k, v in state.items():
                if torch.is_tensor(v):
                    state[k] = v.to(device)
        self._x, self._y, self._xv, self._yv = (t.to(device) for t in (self._x, self._y, self._xv, self._yv))
        self._good_state = None
        self.device = device
        if self._probe_thread is not None:
            self._probe_thread.forget_model()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def run(self) -> Result:
        """Train until the epochs are done, stop() is called, or the loss diverges."""
        t = self.spec.training
        start = time.perf_counter()
        last_emit = 0.0
        state = "running"
        self._remember_good()
        fused = self._fused = self._fused_runner()
        try:
            while self.epoch < t.epochs and not self._stop.is_set():
                # Per-step bookkeeping kept to one extra tensor op (argmax): the loss is read with
                # .item() anyway for the NaN check, and accuracy is counted once per epoch from the
                # collected predictions. Accumulating both as tensors every step (5 small ops) made
                # the xor MLP ~8 % slower (bench/engine_overhead.py).
                first, loss_sum, preds, seen = self._resume_epoch()  # 0, 0.0, [], 0 unless a saved run goes on mid-epoch
                if fused is None:  # the fused path has no train/eval difference (it takes no Dropout/BatchNorm)
                    self.model.train()
                self._epoch_rng = self._gen.get_state()  # engine.run_state: an epoch in progress restarts from here
                perm = torch.randperm(len(self._x), generator=self._gen).to(self._x.device)
                self._progress = (first, loss_sum, seen, preds)
                if fused is not None:  # the same batches, reports and control as the loop below
                    loss_sum, preds, seen, last_emit = fused.run_epoch(perm, start, last_emit, first, loss_sum, preds, seen)
                for b in range(first, self.steps_per_epoch if fused is None else 0):
                    if not self._gate(start):
                        break
                    last = b == self.steps_per_epoch - 1  # the last batch takes the rest (see __init__)
                    idx = perm[b * self.batch_size:None if last else (b + 1) * self.batch_size]
                    xb, yb = self._x[idx], self._y[idx]
                    loss, pred = self._forward_loss(xb, yb)
                    if t.l1 or t.l2:
                        loss = loss + self._penalty()
                    value = loss.item()  # one sync per step, as before (the NaN check needs it)
                    if not math.isfinite(value):
                        raise Diverged(value)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if t.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
                    report = self._single_stepping() or (time.perf_counter() - last_emit >= self.min_interval
                                                         and self._probes_idle())
                    if report and self._before_step is not None:
                        self._before_step(self.model, self.step + 1)  # only the step the next snapshot reports
                    self.optimizer.step()
                    self.step += 1
                    n = len(idx)
                    seen += n
                    self._samples += n
                    loss_sum += value * n
                    preds.append(pred)
                    self._progress = (b + 1, loss_sum, seen, preds)  # engine.run_state saves a run mid-epoch
                    if report:
                        last_emit = now = time.perf_counter()
                        self._elapsed = now - start
                        self._emit("running" if not self.paused else "paused")
                if self._stop.is_set() or seen < len(self._x):
                    break
                self.epoch += 1
                self._epoch_rng = self._progress = None  # no epoch in progress: the generator's own state is the next one's
                self._end_epoch(loss_sum / seen, self._train_accuracy(preds, perm, seen))
                if self.scheduler is not None:
                    self.scheduler.step()
                self._remember_good()
                if self.on_epoch_end is not None:
                    self.on_epoch_end()
            if self._stop.is_set():
                state, self.stop_reason = "stopped", "stopped by the user"
            else:
                state, self.stop_reason = "finished", "finished all epochs"
        except Diverged as exc:
            self._restore_good()
            self._progress = None  # back at the epoch's start: a saved run replays the whole epoch
            state = "diverged"
            self.stop_reason = (f"the loss became {exc.args[0]} at epoch {self.epoch + 1}, step {self.step + 1} - "
                                f"lower the learning rate (now {self.optimizer.param_groups[0]['lr']:g}), "
                                "add gradient clipping or normalisation; the last good weights were kept")
        self._elapsed = time.perf_counter() - start
        self.ended = state
        self._emit(state, message=self.stop_reason)
        return self.result()

    def _resume_epoch(self) -> tuple[int, float, list, int]:
        """(first batch, loss sum, predictions, samples seen) to start the epoch with: a saved run's
        partial epoch once (engine.run_state), else nothing done yet."""
        resume, self._resume_progress = self._resume_progress, None
        return resume if resume is not None else (0, 0.0, [], 0)

    def _fused_runner(self):
        """engine.fused's runner when this plain trainer's design allows it, else None (eager)."""
        if not self.use_fused or type(self) is not Trainer:  # subclasses replace hooks it does not call
            return None
        if os.environ.get("NP_FUSED") == "0":  # benchmarks and bug hunts: the eager loop everywhere
            return None
        from engine.fused import plan

        return plan(self, Diverged, outputs_to_pred, score)

    # the two hooks a trainer of another task (engine.autoencoder) replaces
    def _forward_loss(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """(loss, what _train_accuracy counts) for one batch: the outputs for regression, else the classes."""
        out = self.model(xb)
        return loss_fn(out, yb, self.loss), out.detach() if self.regression else outputs_to_pred(out.detach(), self.loss)

    def _train_accuracy(self, preds: list, perm: torch.Tensor, seen: int) -> float:
        """The epoch's score: accuracy, or R^2 of the outputs for regression (preds follow perm's order)."""
        if self.regression:
            return score(torch.cat(preds), self._y[perm], self.loss)
        return int((torch.cat(preds) == self._y[perm]).sum()) / seen

    def _gate(self, start: float) -> bool:
        """Between batches: apply hyperparameter changes and handed-over work, honour pause/step/stop."""
        if self._pending_hyper:
            self._apply_hyper()
        if self._tasks:
            self._run_tasks()
        if self._pace_interval and self._steps_allowed == -1:  # capped speed; Step while paused is not delayed
            self._pace_wait()
        with self._lock:
            allowed = self._steps_allowed
            if allowed > 0:
                self._steps_allowed = allowed - 1
                if self._steps_allowed == 0:
                    self._run_gate.clear()
                return not self._stop.is_set()
        if allowed == 0:
            # paused: report once (unless this step was already reported as paused), then wait
            # without spinning; a "running" report of this same step does not count, or the GUI
            # would never learn that the run paused
            self._elapsed = time.perf_counter() - start
            if self._last_emit != (self.step, "paused"):
                self._emit("paused")
            while not self._stop.is_set():
                if not self._run_gate.wait(0.02):
                    if self._tasks:
                        self._run_tasks()
                    continue
                if self._pending_hyper:
                    self._apply_hyper()
                with self._lock:
                    if self._steps_allowed == 0:  # paused again before this thread woke: keep waiting
                        self._run_gate.clear()
                        continue
                    if self._steps_allowed > 0:
                        self._steps_allowed -= 1
                        if self._steps_allowed == 0:
                            self._run_gate.clear()
                break
        return not self._stop.is_set()

    def _single_stepping(self) -> bool:
        """Every step is reported: paused after a Step, or in slow motion (set_pace)."""
        return self._steps_allowed == 0 or self._pace_interval >= self.min_interval > 0

    def _probes_idle(self) -> bool:
        """False while the probe thread still computes the last snapshot (the next one waits for it)."""
        return self._probe_thread is None or self._probe_thread.idle()

    def close(self) -> None:
        """End the probe thread (the run is closed)."""
        if self._probe_thread is not None:
            self._probe_thread.close()

    def _penalty(self) -> torch.Tensor:
        t = self.spec.training
        total = torch.zeros((), device=self.device)
        for p in self._penalised:
            if t.l1:
                total = total + t.l1 * p.abs().sum()
            if t.l2:
                total = total + t.l2 * (p * p).sum()
        return total

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """(loss, accuracy - R^2 for regression) in eval mode, in chunks so big validation sets fit in memory."""
        if self._fused is not None and x is self._xv:  # the same numbers without module calls (engine.fused)
            return self._fused.evaluate()
        was = self.model.training
        self.model.eval()
        loss_sum, correct, outs = 0.0, 0, []
        for i in range(0, len(x), 2048):
            out = self.model(x[i:i + 2048])
            yb = y[i:i + 2048]
            loss_sum += loss_fn(out, yb, self.loss).item() * len(yb)
            if self.regression:
                outs.append(out)
            else:
                correct += int((outputs_to_pred(out, self.loss) == yb).sum())
        self.model.train(was)
        n = max(1, len(x))
        if self.regression:
            out = torch.cat(outs) if outs else y[:0]
            self.last_mae = float((out - y).abs().mean()) if len(y) else math.nan
            return loss_sum / n, score(out, y, self.loss)
        return loss_sum / n, correct / n

    def _end_epoch(self, train_loss: float, train_acc: float) -> None:
        val_loss, val_acc = self.evaluate(self._xv, self._yv) if len(self._xv) else (math.nan, math.nan)
        if len(self._xv) and not math.isfinite(val_loss):
            self.epoch -= 1  # this epoch's weights are thrown away
            raise Diverged(val_loss)
        h = self.history
        h["epoch"].append(self.epoch)
        h["train_loss"].append(train_loss)
        h["train_acc"].append(train_acc)
        h["val_loss"].append(val_loss)
        h["val_acc"].append(val_acc)
        h["val_mae"].append(self.last_mae if self.regression and len(self._xv) else math.nan)
        h["lr"].append(self.optimizer.param_groups[0]["lr"])

    def _remember_good(self) -> None:
        self._good_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _restore_good(self) -> None:
        if self._good_state is not None:
            self.model.load_state_dict(self._good_state)

    # ---- reporting ---------------------------------------------------------------------
    def _emit(self, state: str, message: str = "", force: bool = False) -> None:
        self._last_emit = (self.step, state)
        if self.on_snapshot is None:
            return
        if self.on_report is not None:
            self.on_report(self.epoch)
        h = self.history
        last = lambda k: h[k][-1] if h[k] else math.nan  # noqa: E731
        snap = Snapshot(
            state=state, epoch=self.epoch, step=self.step, epochs=self.spec.training.epochs,
            steps_per_epoch=self.steps_per_epoch,
            train_loss=last("train_loss"), train_acc=last("train_acc"),
            val_loss=last("val_loss"), val_acc=last("val_acc"),
            lr=float(self.optimizer.param_groups[0]["lr"]),
            samples_per_s=self._samples / self._elapsed if self._elapsed > 0 else 0.0,
            elapsed=self._elapsed,
            history={k: np.asarray(v, dtype=np.float64) for k, v in h.items()},
            message=message,
        )
        pt = self._probe_thread
        if pt is not None:
            if state == "running" and not force and pt.idle():
                pt.submit(self.model, snap)  # delivered by the probe thread, with its extras
                return
            pt.wait_idle()  # this one shows the current model exactly: computed here, after the last
        extras: dict[str, Any] = {}
        if self.probe is not None:
            try:
                # a paused or final report must show the current model, so a rate-limited probe
                # (engine.probes.Prober) is told to recompute everything
                if (force or state != "running") and _accepts_force(self.probe):
                    extras = self.probe(self.model, force=True) or {}
                else:
                    extras = self.probe(self.model) or {}
            except Exception as exc:  # a broken view must not kill training
                extras = {"problems": {"views": f"{type(exc).__name__}: {exc}"}}
        snap.extras = extras
        self.last_snapshot = snap
        self.on_snapshot(snap)

    def result(self) -> Result:
        h = self.history
        last = lambda k: float(h[k][-1]) if h[k] else math.nan  # noqa: E731
        return Result(epochs=self.epoch, steps=self.step, train_loss=last("train_loss"),
                      train_accuracy=last("train_acc"), val_loss=last("val_loss"), val_accuracy=last("val_acc"),
                      seconds=round(self._elapsed, 3), device=device_name(self.device),
                      stopped_reason=self.stop_reason, history={k: list(v) for k, v in h.items()})
