"""What the visual docks show, computed from a GraphNet at snapshot rate (never per step).

Every function takes a built model (engine.build.build) and numpy inputs and returns numpy
arrays or Python scalars, so results can cross to the GUI thread as they are. Each one runs
the model in eval mode (dropout off, BatchNorm on running statistics) and restores every
module's previous mode afterwards; none changes parameters, buffers, ``.grad`` or the global
torch RNG state. Inputs are in the model's (standardised) input space, batch dim excluded.

Saliency methods live in engine/saliency.py; the model helpers both use in engine/model_utils.py.

Grid layout used by ``decision_grid`` and ``neuron_maps``: ``grid[i, j]`` is the point
``(xs[j], ys[i])``, i.e. rows follow y (increasing), columns follow x.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from engine import analysis
from engine.diagnostics import Diagnostics
from engine.model_utils import as_sample, eval_mode, input_shape, model_device, n_classes_of
from engine.probes_sequence import SequenceProber
from engine.saliency import saliency

LOSSES = ("cross_entropy", "bce", "mse", "mae", "huber")
MAX_NEURON_UNITS = 64  # bigger layers make unreadable neuron pictures; skip them


# ---- checks ------------------------------------------------------------------------------

def _check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r} is unknown - use one of {', '.join(LOSSES)}")


# ---- outputs -> probabilities ----------------------------------------------------------

def outputs_to_proba(out: torch.Tensor, loss: str) -> torch.Tensor:
    """Class probabilities (N, n_classes) from the Output layer's values under ``loss``.

    cross_entropy: softmax. bce: 1 unit -> [1-sigmoid, sigmoid]; k units -> sigmoid per class,
    normalised to sum 1. mse: the output read as a probability, clamped to [0, 1]
    (1 unit -> [1-p, p]; k units normalised, uniform where all are 0).
    """
    _check_loss(loss)
    out = out.float()
    if loss == "cross_entropy" and out.shape[1] > 1:
        return torch.softmax(out, dim=1)
    p = torch.clamp(out, 0.0, 1.0) if loss in ("mse", "mae", "huber") else torch.sigmoid(out)
    if out.shape[1] == 1:
        return torch.cat([1.0 - p, p], dim=1)
    total = p.sum(dim=1, keepdim=True)
    uniform = torch.full_like(p, 1.0 / p.shape[1])
    return torch.where(total > 0, p / total.clamp_min(1e-12), uniform)


def _proba_batched(model, x: np.ndarray, loss: str, batch: int) -> np.ndarray:
    dev = model_device(model)
    parts = []
    with eval_mode(model), torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch], dtype=np.float32)).to(dev)
            parts.append(outputs_to_proba(model(xb), loss).cpu().numpy())
    if not parts:
        return np.zeros((0, n_classes_of(model)), np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def predict(model, x_np: np.ndarray, loss: str, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities float32 (N, k), predicted class int64 (N,)) for a batch of inputs."""
    _check_loss(loss)
    proba = _proba_batched(model, np.asarray(x_np, np.float32), loss, batch_size)
    return proba, proba.argmax(axis=1).astype(np.int64)


# ---- planes through the input space ----------------------------------------------------

def grid_points(extent, res: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xs (res,), ys (res,), points (res*res, 2)); points[i*res + j] = (xs[j], ys[i])."""
    xmin, xmax, ymin, ymax = (float(v) for v in extent)
    res = int(res)
    if res < 2:
        raise ValueError(f"grid resolution {res} must be at least 2")
    xs = np.linspace(xmin, xmax, res, dtype=np.float32)
    ys = np.linspace(ymin, ymax, res, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)  # (res, res), row i = ys[i]
    return xs, ys, np.stack([gx.ravel(), gy.ravel()], axis=1)


def pca_2d(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (d,), components (2, d), explained_variance_ratio (2,)) of the flattened data by SVD.

    Each component's largest-magnitude entry is made positive so the plane does not flip
    between calls.
    """
    x = np.asarray(x_train, np.float64).reshape(len(x_train), -1)
    if x.shape[1] < 2 or x.shape[0] < 2:
        raise ValueError(f"PCA needs at least 2 samples and 2 features, got {x.shape[0]} x {x.shape[1]}")
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:2]
    signs = np.sign(comps[np.arange(2), np.abs(comps).argmax(axis=1)])
    comps = comps * signs[:, None]
    var = s ** 2
    ratio = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    return mean.astype(np.float32), comps.astype(np.float32), ratio.astype(np.float32)


def _is_projection(plane) -> bool:
    return isinstance(plane, (tuple, list)) and len(plane) == 2 and isinstance(plane[0], np.ndarray)


def project_points(x: np.ndarray, plane) -> np.ndarray:
    """Data (N, d) into the plane the grids use: ``plane`` is dims (i, j) or a projection (mean, components)."""
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    if _is_projection(plane):
        mean, comps = plane
        return ((x - mean) @ comps.T).astype(np.float32)
    i, j = (int(d) for d in plane)
    return np.ascontiguousarray(x[:, [i, j]])


def plane_to_inputs(model, points: np.ndarray, dims=(0, 1), base=None, project=None) -> np.ndarray:
    """Map (P, 2) plane points to full flat inputs (P, d) for the model."""
    shape = input_shape(model)
    if len(shape) != 1:
        raise ValueError(f"a decision grid needs flat (tabular) inputs, but the Input is {'x'.join(map(str, shape))}")
    d = shape[0]
    if project is not None:
        mean, comps = project
        if comps.shape != (2, d):
            raise ValueError(f"projection components have shape {comps.shape}, expected (2, {d})")
        return (np.asarray(mean, np.float32) + points @ np.asarray(comps, np.float32)).astype(np.float32)
    i, j = (int(v) for v in dims)
    if not (0 <= i < d and 0 <= j < d) or i == j:
        raise ValueError(f"plane dims {dims} must be two different features among 0..{d - 1}")
    base_v = np.zeros(d, np.float32) if base is None else np.asarray(base, np.float32).reshape(d)
    full = np.repeat(base_v[None], len(points), axis=0)
    full[:, i] = points[:, 0]
    full[:, j] = points[:, 1]
    return full


def decision_grid(model, loss: str, extent=(-1.0, 1.0, -1.0, 1.0), res: int = 100, base=None, dims=(0, 1),
                  project=None) -> np.ndarray:
    """Class probabilities float32 (res, res, n_classes) over a plane of the standardised input space.

    2-D data: dims=(0, 1). More features: vary dims[0], dims[1] and hold the rest at ``base``
    (zeros = the training mean), or pass ``project=(mean, components)`` from pca_2d so the
    grid lies in the plane of the first two principal components.
    """
    _, _, pts = grid_points(extent, res)
    full = plane_to_inputs(model, pts, dims, base, project)
    proba = _proba_batched(model, full, loss, batch=65536)  # one forward for a 100x100 grid
    return proba.reshape(int(res), int(res), -1)


def neuron_maps(model, loss: str, extent=(-1.0, 1.0, -1.0, 1.0), res: int = 40, dims=(0, 1), base=None,
                project=None) -> dict[str, np.ndarray]:
    """TF-Playground neuron pictures: {layer id: float32 (units, res, res)} over the input plane.

    Every Dense layer and every Activation whose input is flat, up to 64 units each.
    """
    _, _, pts = grid_points(extent, res)
    full = plane_to_inputs(model, pts, dims, base, project)
    wanted = [lid for lid in model.order
              if (model.kinds.get(lid) == "Dense" or (model.kinds.get(lid) == "Activation" and len(model.shapes[lid]) == 1))
              and model.shapes[lid][0] <= MAX_NEURON_UNITS]
    if not wanted:
        return {}
    dev = model_device(model)
    with eval_mode(model), torch.no_grad():
        vals = model.forward_all(torch.from_numpy(full).to(dev))
        return {lid: vals[lid].T.reshape(-1, int(res), int(res)).float().cpu().numpy().copy() for lid in wanted}


# ---- weights and maps ------------------------------------------------------------------

def dense_weights(model) -> dict[str, np.ndarray]:
    """{layer id: float32 (out, in)} for Dense and Output layers."""
    return {lid: model.layers[lid].weight.detach().float().cpu().numpy().copy()
            for lid in model.order if model.kinds.get(lid) in ("Dense", "Output")}


def conv_filters(model) -> dict[str, np.ndarray]:
    """{layer id: float32 (filters, in_channels, k, k)}: the Conv2d weights as they are."""
    return {lid: model.layers[lid].weight.detach().float().cpu().numpy().copy()
            for lid in model.order if model.kinds.get(lid) == "Conv2d"}


def feature_maps(model, x_np: np.ndarray) -> dict[str, np.ndarray]:
    """{layer id: float32 (C', H', W')} for every node whose output is an image, in model.order.

    ``x_np`` is one sample (C, H, W) (or (H, W) for one channel).
    """
    x = as_sample(model, x_np)
    image_ids = [lid for lid in model.order if lid != model.input_id and len(model.shapes[lid]) == 3]
    if not image_ids:
        return {}
    dev = model_device(model)
    with eval_mode(model), torch.no_grad():
        vals = model.forward_all(torch.from_numpy(x[None]).to(dev))
        return {lid: vals[lid][0].float().cpu().numpy().copy() for lid in image_ids}


# ---- validation summary ----------------------------------------------------------------

def confusion(model, x_val: np.ndarray, y_val: np.ndarray, loss: str, n_classes: int) -> dict[str, Any]:
    """Confusion matrix [true, pred] and friends on a labelled set.

    per_class_accuracy is NaN for a class with no samples; misclassified lists up to 64
    indices, most confident mistakes first, and confidence the probability of each one's
    (wrong) predicted class.
    """
    y = np.asarray(y_val, np.int64).reshape(-1)
    k = int(n_classes)
    proba, pred = predict(model, x_val, loss)
    if len(y) != len(pred):
        raise ValueError(f"{len(pred)} samples but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must be in 0..{k - 1}")
    pred_c = np.clip(pred, 0, k - 1)  # a head wider than n_classes cannot index past the matrix
    matrix = np.bincount(y * k + pred_c, minlength=k * k).reshape(k, k).astype(np.int64)
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(support > 0, np.diag(matrix) / np.maximum(support, 1), np.nan).astype(np.float32)
    wrong = np.flatnonzero(pred != y)
    conf = proba[wrong, pred[wrong]] if len(wrong) else np.zeros(0, np.float32)
    order = np.argsort(-conf, kind="stable")
    shown = wrong[order][:64]
    return {
        "matrix": matrix,
        "per_class_accuracy": per_class,
        "accuracy": float((pred == y).mean()) if len(y) else float("nan"),
        "misclassified": shown.astype(np.int64),
        "confidence": proba[shown, pred[shown]].astype(np.float32),
        "predicted": pred.astype(np.int64),
    }


# ---- the snapshot bundle ---------------------------------------------------------------

PROBE_BUDGET = 0.05  # share of wall time the live views may take from training (bench/ui_latency.py)
# ... and of the probe thread's wall time when they run beside training (engine.probe_thread): the
# GUI process shares that core, so not all of it
BESIDE_BUDGET = 0.4
MAX_STALE = 10.0  # s; a very slow part is still refreshed this often, budget or not


class _Cached:
    """One part's last result: recomputed when its key changes, else only when time allows.

    ``get`` recomputes when at least ``max(interval, factor * last duration)`` seconds (but
    no more than MAX_STALE) have passed; with factor = (1 - budget) / budget per part this
    keeps the part's share of the training thread below the budget however often snapshots
    are taken.
    """

    def __init__(self) -> None:
        self.key: Any = object()
        self.value: Any = None
        self.done_at = -1e18
        self.took = 0.0

    def get(self, key, compute, interval: float = 0.0, factor: float = 0.0, force: bool = False):
        now = time.perf_counter()
        wait = max(interval, min(factor * self.took, MAX_STALE))
        if not force and key == self.key and now - self.done_at < wait:
            return self.value
        self.value = compute()
        self.key = key
        self.done_at = time.perf_counter()
        self.took = self.done_at - now
        return self.value


def _sample_key(sample) -> Any:
    if sample is None or isinstance(sample, (int, np.integer)):
        return sample
    arr = np.asarray(sample, np.float32)
    return (arr.shape, hash(arr.tobytes()))


class Prober:
    """Everything the docks ask for in one snapshot; call it from the training thread.

    ``options`` may be replaced (never mutated) by the GUI thread at any time. Keys:
    boundary (bool), grid_res (int), dims ((i, j) or "pca"; default (0, 1) for 2-D data and
    "pca" for more features), neurons, neuron_res, weights, filters, confusion (bools),
    feature_sample (index into x_val, a (C, H, W) / (features,) array, or None),
    saliency (None or {"method", "target": int | None = predicted, "layer": id | None}),
    slow_interval (s between recomputations of smoothgrad/IG/Grad-CAM and of confusion on
    more than 2000 samples), health (bool: badges), gradients (bool: history), distributions
    (None or weights | biases | activations | gradients) - see engine/diagnostics.py.

    The result holds numpy arrays, Python scalars/strings and dicts of those: boundary
    (res, res, k), boundary_extent (4,) = (xmin, xmax, ymin, ymax), boundary_xlabel/ylabel,
    points_train/points_val (N, 2), neurons, weights, filters, feature_maps, saliency,
    saliency_target, saliency_input, pred, proba, confusion, and problems {part: message}
    for parts that could not be computed (a bad choice in a dock never stops training).

    To keep training at >= 90% of its speed, the grid, neuron, sample and confusion parts
    are recomputed only while their share of wall time stays under PROBE_BUDGET; in between,
    the previous arrays are returned (the same objects, so a view may skip redrawing).
    A changed option recomputes at once; ``force=True`` recomputes everything (use it for
    the last snapshot of a run and when paused, so the picture matches the final model).
    """

    DEFAULTS: dict[str, Any] = {"boundary": True, "grid_res": 100, "neurons": True, "neuron_res": 40, "weights": True,
                                "filters": True, "confusion": True, "feature_sample": 0, "saliency": None,
                                "slow_interval": 0.5, "health": True, "gradients": False, "distributions": None}

    beside_training = True  # reads only the model it is given: may run on a copy, on another thread

    def __init__(self, data, loss: str, options: dict | None = None):
        self.budget = PROBE_BUDGET  # the trainer sets BESIDE_BUDGET when the probes have a thread of their own
        # more keys (engine.analysis): embedding ({"layer": id | None} or None: PCA of the
        # validation activations), roc (bool: ROC and precision-recall curves)
        _check_loss(loss)
        self.data = data
        self.loss = loss
        self.options: dict = dict(options or {})
        info = data.info
        self.is_image = len(info.input_shape) == 3
        # regression and sequence sets have their own parts (engine.probes_sequence)
        self.regression = getattr(info, "task", "classification") == "regression"
        self.seq = SequenceProber(data) if self.regression or getattr(info, "is_sequence", False) else None
        self.is_tabular = len(info.input_shape) == 1 and info.input_shape[0] >= 2 and self.seq is None
        self._pca = pca_2d(data.x_train) if self.is_tabular and info.input_shape[0] > 2 else None
        self._planes: dict[Any, tuple] = {}
        self._cache = {name: _Cached() for name in ("boundary", "neurons", "sample", "saliency", "confusion", "health",
                                                    "embedding", "roc", "fit", "hidden", "attention", "seq_pred",
                                                    "text")}
        self.diag = Diagnostics(data.x_val)  # health, gradients, distributions (engine/diagnostics.py)

    def before_step(self, model, step: int) -> None:
        """The trainer calls this before the optimiser step it will report (for update/weight ratios)."""
        self.diag.before_step(model, step)

    # the plane (dims or PCA), its extent, labels and the projected data - cached per choice
    def _plane(self, dims_opt):
        if dims_opt == "pca":
            key = "pca" if self._pca is not None else (0, 1)  # 2-D data: the plane is the data itself
        else:
            key = tuple(int(d) for d in dims_opt)
        if key not in self._planes:
            names = list(self.data.info.feature_names) or [f"x{i + 1}" for i in range(self.data.info.input_shape[0])]
            if key == "pca":
                mean, comps, ratio = self._pca
                plane, labels = (mean, comps), [f"PC{i + 1} ({100 * r:.0f}% of variance)" for i, r in enumerate(ratio)]
            else:
                plane, labels = key, [names[key[0]] if key[0] < len(names) else f"x{key[0] + 1}",
                                      names[key[1]] if key[1] < len(names) else f"x{key[1] + 1}"]
            pts_tr = project_points(self.data.x_train, plane)
            pts_va = project_points(self.data.x_val, plane)
            both = np.concatenate([pts_tr, pts_va]) if len(pts_va) else pts_tr
            m = float(np.abs(both).max()) * 1.1 if both.size else 1.0  # symmetric, square, 10% margin
            m = m if m > 0 else 1.0
            extent = np.array([-m, m, -m, m], np.float32)
            self._planes[key] = (key, plane, extent, labels, pts_tr, pts_va)
        return self._planes[key]

    def _sample(self, opt):
        s = opt.get("feature_sample")
        if s is None:
            return None
        if isinstance(s, (int, np.integer)):
            if not len(self.data.x_val):
                return None
            return self.data.x_val[int(s) % len(self.data.x_val)]
        return np.asarray(s, np.float32)

    def __call__(self, model, force: bool = False) -> dict[str, Any]:
        opt = {**self.DEFAULTS, **self.options}  # read the dict once; the GUI may swap it meanwhile
        out: dict[str, Any] = {}
        problems: dict[str, str] = {}
        sample = None if self.regression else self._sample(opt)
        parts = [self.is_tabular and opt.get("boundary"), self.is_tabular and opt.get("neurons"), sample is not None,
                 sample is not None and bool(opt.get("saliency")), bool(opt.get("confusion")),
                 bool(opt.get("health") or opt.get("distributions")),
                 opt.get("embedding") is not None, bool(opt.get("roc")), self.seq is not None]
        # each cached part gets an equal slice of the budget; one more slice is left for the
        # parts that are always fresh (weights, filters, projected points)
        factor = (1.0 - self.budget) / self.budget * (1 + sum(bool(p) for p in parts))
        slow = float(opt["slow_interval"])

        def part(name: str, fn) -> None:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - a bad choice in a dock must not stop training; say what broke
                problems[name] = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"

        def cached(name: str, key, compute, interval: float = 0.0):
            return self._cache[name].get((id(model), key), compute, interval, factor, force)

        if self.is_tabular:
            part("boundary", lambda: self._tabular(model, opt, out, cached))
        if opt.get("weights"):
            part("weights", lambda: out.__setitem__("weights", dense_weights(model)))
        if self.is_image and opt.get("filters"):
            part("filters", lambda: out.__setitem__("filters", conv_filters(model)))
        if sample is not None:
            part("sample", lambda: out.update(cached("sample", _sample_key(opt.get("feature_sample")),
                                                     lambda: self._sample_parts(model, sample))))
            if opt.get("saliency") and "saliency_input" in out:
                part("saliency", lambda: self._saliency(model, opt, out, cached, slow))
        if self.seq is not None:
            part("sequence", lambda: out.update(self.seq(model, opt, cached, slow)))
        if opt.get("confusion") and len(self.data.y_val) and not self.regression:
            part("confusion", lambda: out.__setitem__("confusion", cached(
                "confusion", None, lambda: self._confusion(model), slow if len(self.data.y_val) > 2000 else 0.0)))
        part("health", lambda: out.update(self.diag.extras(model, opt, cached)))
        if opt.get("embedding") is not None and len(self.data.y_val):  # {"layer": id | None}: PCA of its activations
            layer = opt["embedding"].get("layer")
            part("embedding", lambda: out.__setitem__("embedding", cached(
                "embedding", layer, lambda: analysis.embedding_pca(model, self.data, layer))))
        if opt.get("roc") and len(self.data.y_val):
            part("roc", lambda: out.__setitem__("roc", cached("roc", None, lambda: analysis.roc_pr(
                predict(model, self.data.x_val, self.loss)[0], self.data.y_val), slow if len(self.data.y_val) > 2000 else 0.0)))
        out["problems"] = problems
        return out

    def _confusion(self, model) -> dict[str, Any]:
        c = confusion(model, self.data.x_val, self.data.y_val, self.loss, self.data.info.n_classes)
        if self.is_image:  # the GUI holds no dataset: send the mistakes' pictures, in data units
            raw = self.data.raw_x_val if self.data.raw_x_val is not None else self.data.x_val
            c["misclassified_images"] = np.ascontiguousarray(raw[c["misclassified"]])
        return c

    def _tabular(self, model, opt, out, cached) -> None:
        dims_opt = opt.get("dims") or ("pca" if self._pca is not None else (0, 1))
        key, plane, extent, labels, pts_tr, pts_va = self._plane(dims_opt)
        proj = plane if _is_projection(plane) else None
        dims = (0, 1) if proj is not None else plane
        out["points_train"], out["points_val"] = pts_tr, pts_va
        out["boundary_extent"] = extent
        out["boundary_xlabel"], out["boundary_ylabel"] = labels
        if opt.get("boundary"):
            res = int(opt["grid_res"])
            out["boundary"] = cached("boundary", (key, res),
                                     lambda: decision_grid(model, self.loss, extent, res, dims=dims, project=proj))
        if opt.get("neurons"):
            res = int(opt["neuron_res"])
            out["neurons"] = cached("neurons", (key, res),
                                    lambda: neuron_maps(model, self.loss, extent, res, dims=dims, project=proj))

    def _sample_parts(self, model, sample) -> dict[str, Any]:
        x = as_sample(model, sample)
        proba, pred = predict(model, x[None], self.loss)
        res = {"proba": proba[0], "pred": int(pred[0]), "saliency_input": x}
        if self.is_image:
            res["feature_maps"] = feature_maps(model, x)
        return res

    def _saliency(self, model, opt, out, cached, slow: float) -> None:
        sal = opt["saliency"]
        method = sal.get("method", "gradient")
        target = sal.get("target")
        target = out["pred"] if target is None else target
        layer = sal.get("layer")
        key = (method, target, layer, _sample_key(opt.get("feature_sample")))
        # the plain gradient is one backward pass; the others are rate-limited on top of the budget
        interval = 0.0 if method == "gradient" else slow
        if method != "gradient":
            import captum.attr  # noqa: F401  - the first import takes a second; keep it out of the part's timing
        x = out["saliency_input"]
        out["saliency"] = cached("saliency", key,
                                 lambda: saliency(model, x, target, method, layer_id=layer, loss=self.loss), interval)
        out["saliency_target"] = target
