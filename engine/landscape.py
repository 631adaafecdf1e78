"""The loss landscape around the current weights (Li et al., 2018, "Visualizing the Loss
Landscape of Neural Nets"): a 2-D slice along two filter-normalised random directions, the
optimiser's path projected onto it, and the 1-D line from the initial to the current weights.

Each direction has, per filter (row of a weight tensor), the norm of that filter of the
weights, so the slice has the same scale for every layer; biases and normalisation
parameters (1-d tensors) are left out, as in the paper. The loss is measured in eval mode on
a fixed subsample of the training set, without L1/L2 penalties.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from engine.model_utils import eval_mode, model_device
from engine.trainer import loss_fn

TRAIL_MAX = 48  # weight snapshots kept for the path; thinned by half when full
TRAIL_BYTES = 64 << 20
SUBSAMPLE = 512
TIME_BUDGET = 60.0  # s: the grid is made coarser when one evaluation is slow


class Cancelled(Exception):
    pass


def flat_params(model) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1).float().cpu() for p in model.parameters()]).numpy().copy()


class Trail:
    """A bounded record of the weights as training goes (one per epoch, thinned when full)."""

    def __init__(self, max_items: int = TRAIL_MAX):
        self.max_items = max_items
        self.items: list[tuple[int, np.ndarray]] = []

    def observe(self, model, epoch: int) -> None:
        if self.items and self.items[-1][0] == epoch:
            return
        vec = flat_params(model)
        cap = max(4, min(self.max_items, TRAIL_BYTES // max(1, vec.nbytes)))
        self.items.append((epoch, vec))
        if len(self.items) > cap:  # keep the first (the initial weights), then every other one
            self.items = self.items[:1] + self.items[1:][1::2]

    def snapshot(self) -> list[tuple[int, np.ndarray]]:
        return list(self.items)


def directions(model, seed: int = 0) -> list[list[torch.Tensor]]:
    """Two filter-normalised random directions, one tensor per parameter (zeros for 1-d ones)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(2):
        ds = []
        for p in model.parameters():
            w = p.detach().float().cpu()
            if w.ndim <= 1:
                ds.append(torch.zeros_like(w))
                continue
            d = torch.randn(w.shape, generator=gen)
            dn = d.reshape(d.shape[0], -1).norm(dim=1).clamp_min(1e-12)
            wn = w.reshape(w.shape[0], -1).norm(dim=1)
            ds.append((d.reshape(d.shape[0], -1) * (wn / dn)[:, None]).reshape(w.shape))
        out.append(ds)
    return out


def path_directions(model, trail: list[tuple[int, np.ndarray]]) -> tuple[list, list, float, np.ndarray]:
    """The two principal directions of the path (theta_t - theta*), as Li et al. do for
    trajectories (random directions in millions of dimensions are almost orthogonal to it);
    returns (d1, d2, span covering the path, explained variance ratio (2,))."""
    centre = _flat([p.detach().float().cpu() for p in model.parameters()])
    diffs = np.stack([v.astype(np.float64) for _, v in trail]) - centre
    if len(diffs) < 2 or not np.any(diffs):
        raise ValueError("the path needs at least two epochs of training - train longer or use random directions")
    _, s, vt = np.linalg.svd(diffs, full_matrices=False)
    vecs = [vt[0], vt[1] if len(vt) > 1 else np.zeros_like(vt[0])]
    out = []
    for v in vecs:
        ts, i = [], 0
        for p in model.parameters():
            ts.append(torch.from_numpy(v[i:i + p.numel()].astype(np.float32)).reshape(p.shape))
            i += p.numel()
        out.append(ts)
    coords = diffs @ np.stack(vecs, axis=1)
    ratio = (s[:2] ** 2) / max(float((s ** 2).sum()), 1e-30)
    return out[0], out[1], float(np.abs(coords).max()) * 1.25, np.pad(ratio, (0, 2 - len(ratio)))


def _flat(ts: list[torch.Tensor]) -> np.ndarray:
    return torch.cat([t.reshape(-1) for t in ts]).numpy().astype(np.float64)


def _set_params(model, base: list[torch.Tensor], d1, d2, a: float, b: float) -> None:
    with torch.no_grad():
        for p, w, u, v in zip(model.parameters(), base, d1, d2, strict=True):
            p.copy_((w + a * u + b * v).to(p.device, p.dtype))


def _set_flat(model, vec: np.ndarray) -> None:
    i = 0
    with torch.no_grad():
        for p in model.parameters():
            n = p.numel()
            p.copy_(torch.from_numpy(vec[i:i + n]).reshape(p.shape).to(p.device, p.dtype))
            i += n


def subsample(x: np.ndarray, y: np.ndarray, n: int = SUBSAMPLE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The fixed training subsample the landscape is measured on."""
    idx = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[idx], y[idx]


def model_loss(model, x: np.ndarray, y: np.ndarray, loss: str) -> float:
    dev = model_device(model)
    with eval_mode(model), torch.no_grad():
        xb = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(dev)
        yb = torch.from_numpy(np.asarray(y, np.int64)).to(dev)
        return float(loss_fn(model(xb), yb, loss))


def landscape(model, x: np.ndarray, y: np.ndarray, loss: str, trail: list[tuple[int, np.ndarray]], *,
              res: int = 21, span: float = 1.0, seed: int = 0, budget: float = TIME_BUDGET, along: str = "random",
              progress: Callable[[float, str], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> dict:
    """The slice, path and line; ``model`` is changed (pass a copy). Raises Cancelled when asked to stop.

    ``along``: "random" (two filter-normalised random directions, ``span`` in their units) or
    "path" (the path's two principal directions, the span chosen to cover it).
    """
    cancelled = cancelled or (lambda: False)
    progress = progress or (lambda f, m: None)
    base = [p.detach().float().cpu().clone() for p in model.parameters()]
    centre_vec = _flat(base)
    ratio = np.zeros(2)
    if along == "path":
        d1, d2, span, ratio = path_directions(model, trail)
    elif along == "random":
        d1, d2 = directions(model, seed)
    else:
        raise ValueError(f"directions {along!r} are unknown - use random or path")
    t0 = time.perf_counter()
    centre = model_loss(model, x, y, loss)
    one = max(time.perf_counter() - t0, 1e-4)
    n_interp = 25
    res = int(res) | 1  # odd: the centre is a grid point
    while res > 7 and (res * res + n_interp) * one > budget:
        res -= 2
    coords = np.linspace(-span, span, res)
    grid = np.zeros((res, res), np.float32)  # grid[i, j]: beta = coords[i], alpha = coords[j]
    total = res * res + n_interp
    done = 0
    for i, b in enumerate(coords):
        for j, a in enumerate(coords):
            if cancelled():
                raise Cancelled()
            _set_params(model, base, d1, d2, float(a), float(b))
            grid[i, j] = model_loss(model, x, y, loss)
        done += res
        progress(done / total, f"slice row {i + 1} of {res}")
    grid[res // 2, res // 2] = centre  # the same weights; exact even where copy_ rounds
    # the optimiser's path: least-squares coordinates of (theta_t - theta*) in the two directions
    basis = np.stack([_flat(d1), _flat(d2)], axis=1)
    path = np.zeros((0, 2), np.float32)
    epochs = np.zeros(0, np.int64)
    if trail and trail[0][1].shape == centre_vec.shape:
        diffs = np.stack([v.astype(np.float64) for _, v in trail], axis=1) - centre_vec[:, None]
        coef, *_ = np.linalg.lstsq(basis, diffs, rcond=None)
        path = np.concatenate([coef.T, np.zeros((1, 2))]).astype(np.float32)  # ends at the current weights
        epochs = np.array([e for e, _ in trail] + [-2], np.int64)
    # the line from the initial weights (alpha 0) to the current ones (alpha 1)
    alphas = np.linspace(-0.25, 1.25, n_interp)
    line = np.full(n_interp, np.nan, np.float32)
    if trail and trail[0][1].shape == centre_vec.shape:
        start = trail[0][1].astype(np.float64)
        for k, a in enumerate(alphas):
            if cancelled():
                raise Cancelled()
            _set_flat(model, (start + a * (centre_vec - start)).astype(np.float32))
            line[k] = model_loss(model, x, y, loss)
            progress((res * res + k + 1) / total, "line from the initial weights")
    _set_flat(model, centre_vec.astype(np.float32))
    return {"coords": coords.astype(np.float32), "loss": grid, "centre_loss": centre, "path": path,
            "path_epochs": epochs, "line_alpha": alphas.astype(np.float32), "line_loss": line,
            "n_samples": len(x), "along": along, "path_ratio": np.asarray(ratio, np.float32)}
