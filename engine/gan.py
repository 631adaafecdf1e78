"""GANs on 2-D data: a generator and a discriminator trained in alternation (GAN Lab style).

The design holds both networks in one layer graph (engine.generative_spec names each by its
Input); each is built as a GraphNet of its own. Per iteration the discriminator takes
``d_steps`` steps on a batch of real points and as many generated ones, then the generator
takes ``g_steps`` steps. Losses, written out:

* discriminator: L_D = -mean(log D(x_real)) - mean(log(1 - D(G(z))))
* generator (non-saturating): L_G = -mean(log D(G(z)))

with D the sigmoid of the discriminator's logit (computed stably with BCE-with-logits).
GanTrainer shares Trainer's control interface (pause/resume/step_once/stop/set_hyper/
call_soon/report) and emits the same Snapshot: train_loss is L_D, val_loss is L_G, the
accuracies are NaN, and history gains d_loss, g_loss, fake_to_real (mean distance of a
generated point to its nearest real point) and real_to_fake (the reverse: it stays high when
the generator covers only some modes - mode collapse) and, for the ring, ring_error
(mean |r - R| / R of generated points).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine import layers as L
from engine.build import GraphNet, build
from engine.datasets.gan_targets import PLANE, RING_RADIUS
from engine.gan_data import load_gan_data
from engine.generative_spec import sub_spec
from engine.model_utils import eval_mode
from engine.protocol import HISTORY_KEYS, Result, Snapshot
from engine.trainer import Diverged, Trainer, choose_device, device_name

GAN_HISTORY = ("d_loss", "g_loss", "fake_to_real", "real_to_fake", "ring_error")
N_EVAL = 500  # generated points for the epoch metrics and the views
HEAT_RES = 48
N_ARROWS = 120


class GanPair(nn.Module):
    """Generator and discriminator together; ``forward`` is the generator (noise -> point), so an
    export of the pair is the generator's graph, and its state_dict holds both networks' weights."""

    def __init__(self, generator: GraphNet, discriminator: GraphNet):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.shapes, self.input_id, self.output_id = generator.shapes, generator.input_id, generator.output_id

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)


def build_gan(spec, seed: int | None = None) -> GanPair:
    infos = L.gan_subnet_infos(spec.generative)
    seed = spec.training.seed if seed is None else seed
    g = build(sub_spec(spec, "generator"), infos["generator"], seed=seed)
    d = build(sub_spec(spec, "discriminator"), infos["discriminator"], seed=seed + 1)
    return GanPair(g, d)


def d_loss_fn(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
            + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))


def g_loss_fn(d_fake: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))


def _optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))  # beta1 0.5: the usual GAN setting


def ring_error(points: np.ndarray, radius: float = RING_RADIUS) -> float:
    """mean |r - R| / R of 2-D points."""
    return float(np.mean(np.abs(np.hypot(points[:, 0], points[:, 1]) - radius)) / radius)


def _nearest(a: np.ndarray, b: np.ndarray) -> float:
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return float(np.sqrt(d.min(1)).mean())


class GanTrainer(Trainer):
    """Trains a GAN design; same control interface and Snapshot as Trainer."""

    def __init__(self, spec, data=None, *, device: str | None = None, epochs: int | None = None,
                 seed: int | None = None, on_snapshot: Callable[[Snapshot], None] | None = None,
                 probe: Callable[[Any], dict] | None = None, max_rate: float = 30.0, model: GanPair | None = None):
        self.spec = spec.copy()
        t = self.spec.training
        if epochs is not None:
            t.epochs = int(epochs)
        if seed is not None:
            t.seed = int(seed)
        self.gen = self.spec.generative
        self.data = data if data is not None else load_gan_data(self.spec)
        self.device = choose_device(device or t.device)
        self.model = model if model is not None else build_gan(self.spec)
        self.model.to(self.device)
        self.on_snapshot, self.probe = on_snapshot, probe
        self.min_interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self.loss = "bce"
        self._x = torch.as_tensor(self.data.x_train, device=self.device)
        self._xv = torch.as_tensor(self.data.x_val, device=self.device)
        self.batch_size = max(2, min(t.batch_size, len(self._x)))
        self.steps_per_epoch = max(1, len(self._x) // self.batch_size)
        g = self.gen
        self.g_opt = _optimizer(g.g_optimizer, self.model.generator.parameters(), g.g_lr)
        self.d_opt = _optimizer(g.d_optimizer, self.model.discriminator.parameters(), g.d_lr)
        self.optimizer = self.g_opt  # the lr a Snapshot reports
        self.scheduler = None
        self._gen = torch.Generator().manual_seed(t.seed)
        self._noise_gen = torch.Generator(device=self.device).manual_seed(t.seed + 7)
        self._probe_thread = None  # its probes run on the training thread (Trainer.close reads this)
        self._init_control()
        for k in GAN_HISTORY:
            self.history[k] = []
        self.eval_noise = torch.randn(N_EVAL, g.noise_dim, generator=torch.Generator().manual_seed(t.seed + 11))

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.gen.noise_dim, generator=self._noise_gen, device=self.device)

    def _apply_hyper(self) -> None:
        """lr sets both sides' learning rates; g_lr and d_lr one side each."""
        with self._lock:
            pending, self._pending_hyper = self._pending_hyper, {}
        for key, value in pending.items():
            opts = {"lr": (self.g_opt, self.d_opt), "g_lr": (self.g_opt,), "d_lr": (self.d_opt,)}.get(key, ())
            for opt in opts:
                for grp in opt.param_groups:
                    grp["lr"] = float(value)

    def run_with_cpu_fallback(self, notify=None) -> Result:
        return self.run()

    def train_iteration(self) -> tuple[float, float]:
        """d_steps discriminator steps, then g_steps generator steps; returns (L_D, L_G) of the last ones."""
        G, D, n = self.model.generator, self.model.discriminator, self.batch_size
        d_value = g_value = math.nan
        for _ in range(self.gen.d_steps):
            idx = torch.randint(0, len(self._x), (n,), generator=self._gen).to(self.device)
            with torch.no_grad():
                fake = G(self.noise(n))
            loss = d_loss_fn(D(self._x[idx]), D(fake))
            d_value = loss.item()
            if not math.isfinite(d_value):
                raise Diverged(d_value)
            self.d_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.d_opt.step()
        for _ in range(self.gen.g_steps):
            loss = g_loss_fn(D(G(self.noise(n))))
            g_value = loss.item()
            if not math.isfinite(g_value):
                raise Diverged(g_value)
            self.g_opt.zero_grad(set_to_none=True)
            loss.backward()  # D's grads are computed too but never stepped; d_opt clears them first
            self.g_opt.step()
        return d_value, g_value

    def run(self) -> Result:
        t = self.spec.training
        start = time.perf_counter()
        last_emit = 0.0
        state = "running"
        try:
            while self.epoch < t.epochs and not self._stop.is_set():
                d_sum = g_sum = 0.0
                done = 0
                self.model.train()
                for _ in range(self.steps_per_epoch):
                    if not self._gate(start):
                        break
                    d_value, g_value = self.train_iteration()
                    d_sum, g_sum, done = d_sum + d_value, g_sum + g_value, done + 1
                    self.step += 1
                    self._samples += self.batch_size
                    now = time.perf_counter()
                    if now - last_emit >= self.min_interval or self._single_stepping():
                        last_emit = now
                        self._elapsed = now - start
                        self._emit("running" if not self.paused else "paused")
                if self._stop.is_set() or done < self.steps_per_epoch:
                    break
                self.epoch += 1
                self._end_gan_epoch(d_sum / done, g_sum / done)
            state, self.stop_reason = (("stopped", "stopped by the user") if self._stop.is_set()
                                       else ("finished", "finished all epochs"))
        except Diverged as exc:
            state = "diverged"
            self.stop_reason = (f"a loss became {exc.args[0]} at epoch {self.epoch + 1} - lower the learning rates "
                                f"(generator {self.gen.g_lr:g}, discriminator {self.gen.d_lr:g})")
        self._elapsed = time.perf_counter() - start
        self.ended = state
        self._emit(state, message=self.stop_reason)
        return self.result()

    @torch.no_grad()
    def generate(self, noise: torch.Tensor | None = None) -> np.ndarray:
        z = (self.eval_noise if noise is None else noise).to(self.device)
        with eval_mode(self.model):
            return self.model.generator(z).cpu().numpy().astype(np.float32)

    def _end_gan_epoch(self, d_loss: float, g_loss: float) -> None:
        fake, real = self.generate(), self.data.x_val
        h = self.history
        h["epoch"].append(self.epoch)
        h["train_loss"].append(d_loss)
        h["val_loss"].append(g_loss)
        h["train_acc"].append(math.nan)
        h["val_acc"].append(math.nan)
        h["lr"].append(self.g_opt.param_groups[0]["lr"])
        h["d_loss"].append(d_loss)
        h["g_loss"].append(g_loss)
        h["fake_to_real"].append(_nearest(fake, real))
        h["real_to_fake"].append(_nearest(real, fake))
        h["ring_error"].append(ring_error(fake) if self.gen.target == "ring" else math.nan)

    def _emit(self, state: str, message: str = "", force: bool = False) -> None:
        self._last_emit = (self.step, state)
        if self.on_snapshot is None:
            return
        if self.on_report is not None:
            self.on_report(self.epoch)
        h = self.history
        last = lambda k: h[k][-1] if h[k] else math.nan  # noqa: E731
        extras: dict[str, Any] = {}
        if self.probe is not None:
            try:
                extras = self.probe(self, force=force or state != "running") or {}
            except Exception as exc:  # a broken view must not kill training
                extras = {"problems": {"views": f"{type(exc).__name__}: {exc}"}}
        snap = Snapshot(state=state, epoch=self.epoch, step=self.step, epochs=self.spec.training.epochs,
                        steps_per_epoch=self.steps_per_epoch, train_loss=last("train_loss"), train_acc=math.nan,
                        val_loss=last("val_loss"), val_acc=math.nan, lr=float(self.g_opt.param_groups[0]["lr"]),
                        samples_per_s=self._samples / self._elapsed if self._elapsed > 0 else 0.0,
                        elapsed=self._elapsed, history={k: np.asarray(v, dtype=np.float64) for k, v in h.items()},
                        extras=extras, message=message)
        self.last_snapshot = snap
        self.on_snapshot(snap)

    def result(self) -> Result:
        h = self.history
        last = lambda k: float(h[k][-1]) if h[k] else math.nan  # noqa: E731
        return Result(epochs=self.epoch, steps=self.step, train_loss=last("d_loss"), train_accuracy=math.nan,
                      val_loss=last("g_loss"), val_accuracy=math.nan, seconds=round(self._elapsed, 3),
                      device=device_name(self.device), stopped_reason=self.stop_reason,
                      history={k: list(v) for k, v in h.items()})


class GanProbe:
    """Extras for the GAN view: gan_real, gan_fake (fixed noise, so points can be followed),
    gan_heat (D's probability of "real" over the plane, rows = y), gan_extent, gan_arrows
    (the direction the generator's loss moves its first N_ARROWS samples: -dL_G/dx, unit scaled)."""

    def __init__(self, options: dict | None = None):
        self.options = dict(options or {})
        self._at = -math.inf
        self._last: dict[str, Any] = {}

    def __call__(self, trainer: GanTrainer, force: bool = False) -> dict[str, Any]:
        if self.options.get("generative") is False:
            return {}
        now = time.perf_counter()
        if not force and now - self._at < 0.1:
            return dict(self._last)
        self._at = now
        pair, dev = trainer.model, trainer.device
        fake = trainer.generate()
        xs = np.linspace(PLANE[0], PLANE[1], HEAT_RES, dtype=np.float32)
        ys = np.linspace(PLANE[2], PLANE[3], HEAT_RES, dtype=np.float32)
        grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
        with eval_mode(pair):
            with torch.no_grad():
                heat = torch.sigmoid(pair.discriminator(torch.as_tensor(grid, device=dev))).cpu().numpy()
            pts = torch.as_tensor(fake[:N_ARROWS], device=dev).requires_grad_(True)
            grad, = torch.autograd.grad(g_loss_fn(pair.discriminator(pts)), pts)
        move = -grad.cpu().numpy()
        norm = np.linalg.norm(move, axis=1, keepdims=True)
        scale = 0.15 / max(float(np.percentile(norm, 90)), 1e-12)  # the longest arrows about 0.15 long
        out = {"gan_real": np.asarray(trainer.data.x_val, np.float32), "gan_fake": fake,
               "gan_heat": heat.reshape(HEAT_RES, HEAT_RES).astype(np.float32),
               "gan_extent": np.asarray(PLANE, np.float32),
               "gan_arrows": np.concatenate([fake[:N_ARROWS], (move * scale).astype(np.float32)], 1)}
        self._last = out
        return dict(out)


__all__ = ["GAN_HISTORY", "GanPair", "GanProbe", "GanTrainer", "HISTORY_KEYS", "build_gan", "d_loss_fn", "g_loss_fn"]
