"""Autoencoders and VAEs: a trainer whose target is its input, and the probes of their views.

The design is an ordinary layer graph (engine.build) whose Output has the input's shape; the
design's ``generative`` part names the bottleneck layer and the reconstruction loss (``mse``
on standardised values, or ``bce`` on pixels in 0..1 with the Output read as logits). A VAE's
VAESample layer (engine.modules) leaves its KL term on the module; beta times it joins the loss.

``recon_mse`` in the history is the validation reconstruction's mean squared error in pixel
units (the dataset's own scale, 0..1 for digits), the figure the examples state.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.model_utils import eval_mode, model_device
from engine.modules import VAESample
from engine.probes import pca_2d
from engine.trainer import Trainer

N_SHOWN = 8  # reconstructions shown
GRID = 9  # a VAE's decoded grid: GRID x GRID images
MAX_LATENT_POINTS = 600
PROBE_INTERVAL = 0.4  # s between recomputations while running


class AutoencoderTrainer(Trainer):
    """Trainer with the reconstruction loss (+ beta * KL for a VAE); accuracy is not defined (NaN)."""

    def __init__(self, spec, data=None, **kw):
        super().__init__(spec, data, **kw)
        self.gen = self.spec.generative
        self._vae = [m for m in self.model.modules() if isinstance(m, VAESample)]
        shape = (1, -1) + (1, 1) * (self._x.dim() == 4)
        self._mean = torch.as_tensor(np.asarray(self.data.mean, np.float32)).reshape(shape).to(self.device)
        self._std = torch.as_tensor(np.asarray(self.data.std, np.float32)).reshape(shape).to(self.device)
        self.history["recon_mse"] = []
        self.history["kl"] = []
        self._kl_sum = 0.0

    def _target(self, xb: torch.Tensor) -> torch.Tensor:
        if self.gen.recon_loss == "bce":
            return (xb * self._std + self._mean).clamp(0.0, 1.0)
        return xb

    def recon_loss(self, out: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        target = self._target(xb)
        if self.gen.recon_loss == "bce":
            return F.binary_cross_entropy_with_logits(out, target)
        return F.mse_loss(out, target)

    def kl(self) -> torch.Tensor | None:
        terms = [m.kl for m in self._vae if m.kl is not None]
        return sum(terms) if terms else None

    def _forward_loss(self, xb, yb):
        out = self.model(xb)
        loss = self.recon_loss(out, xb)
        kl = self.kl()
        if kl is not None:
            # KL per sample is summed over latent dims; the reconstruction is a mean per value, so the
            # KL is divided by the values per sample to keep beta = 1 the usual balance of the ELBO
            loss = loss + self.gen.beta * kl / out[0].numel()
            self._kl_sum += float(kl.detach()) * len(xb)
        return loss, None

    def _train_accuracy(self, preds, perm, seen) -> float:
        self.history["kl"].append(self._kl_sum / seen if self._vae else math.nan)
        self._kl_sum = 0.0
        return math.nan

    def pixels(self, out: torch.Tensor) -> torch.Tensor:
        """The Output's values as a reconstruction in data units."""
        return torch.sigmoid(out) if self.gen.recon_loss == "bce" else out * self._std + self._mean

    @torch.no_grad()
    def evaluate(self, x, y):
        """(reconstruction loss, NaN); records the pixel MSE as ``recon_mse``."""
        loss_sum, sq_sum = 0.0, 0.0
        with eval_mode(self.model):
            for i in range(0, len(x), 2048):
                xb = x[i:i + 2048]
                out = self.model(xb)
                loss_sum += self.recon_loss(out, xb).item() * len(xb)
                raw = xb * self._std + self._mean
                sq_sum += float(((self.pixels(out) - raw) ** 2).mean()) * len(xb)
        n = max(1, len(x))
        if x is self._xv:
            self.history["recon_mse"].append(sq_sum / n)
        return loss_sum / n, math.nan


# ---- the model's parts: encoder and decoder -----------------------------------------------------

def encode(model, bottleneck: str, x: torch.Tensor) -> torch.Tensor:
    """The bottleneck's output (a VAE's means in eval mode), flattened to (N, k)."""
    return model.forward_all(x, keep=True)[bottleneck].flatten(1)


def decode(model, bottleneck: str, z: torch.Tensor) -> torch.Tensor:
    """Run the layers after the bottleneck from the latent values ``z``; ValueError if the decoder
    also reads layers before the bottleneck (a skip connection across it)."""
    vals = {bottleneck: z.reshape(len(z), *model.shapes[bottleneck])}
    start = model.order.index(bottleneck)
    for lid in model.order[start + 1:]:
        srcs = model.sources[lid]
        if all(s in vals for s in srcs):
            mod = model.layers[lid]
            vals[lid] = mod(*[vals[s] for s in srcs]) if len(srcs) > 1 else mod(vals[srcs[0]])
    if model.output_id not in vals:
        raise ValueError(f"the decoder after {bottleneck} also reads layers before it - remove the skip connection "
                         "across the bottleneck to decode latent points")
    return vals[model.output_id]


class AutoencoderProbe:
    """Extras for the autoencoder views: reconstructions, the latent plane, a VAE's decoded grid.

    Keys: ae_inputs / ae_recon (N_SHOWN, C, H, W or d) in data units; ae_latent (N, 2) with
    ae_latent_labels; ae_latent_extent (xmin, xmax, ymin, ymax); ae_latent_dim k; when k > 2,
    ae_pca_mean / ae_pca_components map a plane point to a latent code; ae_grid (GRID*GRID, ...)
    for a VAE. ``options`` may hold ``generative: False`` to skip everything.
    """

    def __init__(self, data, spec, trainer_ref, options: dict | None = None):
        self.data, self.gen, self.options = data, spec.generative, dict(options or {})
        self.trainer_ref = trainer_ref  # () -> AutoencoderTrainer (pixels() needs its statistics)
        self._at = -math.inf
        self._last: dict[str, Any] = {}
        self.plane: tuple[np.ndarray, np.ndarray] | None = None  # (mean, components) when the latent has > 2 dims

    def __call__(self, model, force: bool = False) -> dict[str, Any]:
        if self.options.get("generative") is False:
            return {}
        now = time.perf_counter()
        if not force and now - self._at < PROBE_INTERVAL:
            return dict(self._last)
        self._at = now
        tr = self.trainer_ref()
        dev = model_device(model)
        xv = torch.as_tensor(self.data.x_val[:MAX_LATENT_POINTS], device=dev)
        with eval_mode(model), torch.no_grad():
            recon = tr.pixels(model(xv[:N_SHOWN])).cpu().numpy()
            z = encode(model, self.gen.bottleneck, xv).cpu().numpy().astype(np.float32)
        raw = self.data.raw_x_val if self.data.raw_x_val is not None else self.data.x_val
        out: dict[str, Any] = {"ae_inputs": np.asarray(raw[:N_SHOWN], np.float32), "ae_recon": recon.astype(np.float32),
                               "ae_latent_labels": np.asarray(self.data.y_val[:len(z)]), "ae_latent_dim": z.shape[1]}
        if z.shape[1] > 2:
            mean, comps, _ = pca_2d(z)
            self.plane = (mean, comps)
            out["ae_pca_mean"], out["ae_pca_components"] = mean, comps
            xy = (z - mean) @ comps.T
        elif z.shape[1] == 2:
            self.plane = None
            xy = z
        else:
            self.plane = None
            xy = np.concatenate([z, np.zeros_like(z)], 1)
        out["ae_latent"] = xy.astype(np.float32)
        lo, hi = np.percentile(xy, 1, axis=0), np.percentile(xy, 99, axis=0)
        pad = 0.15 * np.maximum(hi - lo, 1e-3)
        extent = (float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1]))
        out["ae_latent_extent"] = np.asarray(extent, np.float32)
        if self.gen.kind == "vae" or z.shape[1] == 2:
            gx = np.linspace(extent[0], extent[1], GRID, dtype=np.float32)
            gy = np.linspace(extent[3], extent[2], GRID, dtype=np.float32)  # top row = largest y
            pts = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
            out["ae_grid"] = self.decode_points(model, pts)
        self._last = out
        return dict(out)

    def latent_of(self, points: np.ndarray) -> np.ndarray:
        """Plane points (P, 2) as latent codes (P, k)."""
        pts = np.asarray(points, np.float32).reshape(-1, 2)
        if self.plane is not None:
            mean, comps = self.plane
            return (mean + pts @ comps).astype(np.float32)
        return pts

    def decode_points(self, model, points: np.ndarray) -> np.ndarray:
        """Decoded images (data units) of plane points (P, 2)."""
        z = self.latent_of(points)
        k = int(np.prod(model.shapes[self.gen.bottleneck]))
        if z.shape[1] != k:
            z = z[:, :k] if z.shape[1] > k else np.concatenate([z, np.zeros((len(z), k - z.shape[1]), np.float32)], 1)
        tr = self.trainer_ref()
        with eval_mode(model), torch.no_grad():
            out = decode(model, self.gen.bottleneck, torch.as_tensor(z, device=model_device(model)))
            return tr.pixels(out).cpu().numpy().astype(np.float32)
