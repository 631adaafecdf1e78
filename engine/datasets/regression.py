"""Regression datasets: 1-D function fitting and TensorFlow Playground's two 2-D regression sets.

Targets are numbers (float32, shape (N, 1)), not classes; they are not standardised, so losses
and R^2 read in the data's own units. numpy only. Also the random (unstratified) split and the
R^2 every regression set is scored with.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from engine.datasets.base import COMMON_PARAMS, Data, DataInfo, DataParam, standardise
from engine.spec import DatasetSpec

FUNCTIONS = ("fit_sine", "fit_step", "fit_abs", "fit_poly")
PLANES = ("reg_plane", "reg_gaussians")
_POINTS = (DataParam("n_points", "int", 300, "Number of points generated", 20, 100000),
           DataParam("noise", "float", 0.05, "Gaussian noise added to each target", 0.0, 2.0))
PARAMS: dict[str, tuple[DataParam, ...]] = {k: _POINTS + COMMON_PARAMS for k in FUNCTIONS + PLANES}
HELP = {
    "fit_sine": "Regression: one input x, target sin(x) plus noise - fit a curve.",
    "fit_step": "Regression: a step from -1 to 1 at x = 0 - hard for smooth units.",
    "fit_abs": "Regression: |x| - two ReLUs make it exactly.",
    "fit_poly": "Regression: a noisy cubic polynomial.",
    "reg_plane": "Regression (TensorFlow Playground): the target is a tilted plane over two inputs.",
    "reg_gaussians": "Regression (TensorFlow Playground): a mixture of positive and negative Gaussian bumps.",
}


def resolve(schema: tuple[DataParam, ...], ds: DatasetSpec, choices: dict | None = None) -> dict[str, Any]:
    """Params with defaults filled in; ValueError lists every bad field, one ``dataset.params.<name>: ...`` a line."""
    out = {p.name: p.default for p in schema}
    bad: list[str] = []
    for k, v in ds.params.items():
        par = next((p for p in schema if p.name == k), None)
        where = f"dataset.params.{str(k)[:40]}"
        if par is None:
            bad.append(f"{where}: not a parameter of {ds.kind} - remove it")
        elif par.type in ("int", "float"):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(float(min(abs(v), 1e300))):
                bad.append(f"{where}: must be a number, got {v!r:.40}")
            elif par.type == "int" and isinstance(v, float) and not v.is_integer():
                bad.append(f"{where}: must be a whole number, got {v}")
            elif v < par.min or v > par.max:
                bad.append(f"{where}: {v if abs(v) < 1e15 else 'the value'} is outside {par.min:g}..{par.max:g}"
                           " - choose a value in that range")
            else:
                out[k] = int(v) if par.type == "int" else float(v)
        elif not isinstance(v, str):
            bad.append(f"{where}: must be text, got {v!r:.40}")
        elif (choices or {}).get((ds.kind, k)) and v not in choices[(ds.kind, k)]:
            bad.append(f"{where}: {v!r:.40} is not one of {', '.join(choices[(ds.kind, k)])}")
        else:
            out[k] = v
    if bad:
        raise ValueError("\n".join(bad))
    return out


def resolve_params(ds: DatasetSpec) -> dict[str, Any]:
    return resolve(PARAMS[ds.kind], ds)


def random_split(x: np.ndarray, y: np.ndarray, val_fraction: float, rng: np.random.Generator):
    """(x_train, y_train, x_val, y_val), shuffled; at least one sample on each side."""
    idx = rng.permutation(len(x))
    k = min(len(x) - 1, max(1, int(round(len(x) * val_fraction))))
    va, tr = idx[:k], idx[k:]
    return x[tr], y[tr], x[va], y[va]


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination over all targets: 1 - SSE / SST (sklearn's 'variance_weighted' for k > 1)."""
    t = np.asarray(y_true, np.float64).reshape(len(y_true), -1)
    p = np.asarray(y_pred, np.float64).reshape(t.shape)
    sst = float(((t - t.mean(axis=0)) ** 2).sum())
    sse = float(((t - p) ** 2).sum())
    return 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else 0.0)


def regression_data(info: DataInfo, x: np.ndarray, y: np.ndarray, val_fraction: float,
                    rng: np.random.Generator) -> Data:
    """Split at random and standardise the inputs (training statistics); targets stay as they are."""
    y = np.asarray(y, np.float32).reshape(len(y), -1)
    xt, yt, xv, yv = random_split(np.asarray(x, np.float32), y, val_fraction, rng)
    return standardise(info, xt, yt, xv, yv)


def describe(ds: DatasetSpec) -> DataInfo:
    resolve_params(ds)
    one = ds.kind in FUNCTIONS
    return DataInfo(ds.kind, (1,) if one else (2,), 0, [], ["x"] if one else ["x1", "x2"],
                    task="regression", n_targets=1)


def target(kind: str, x: np.ndarray) -> np.ndarray:
    """The noise-free target of each generated set at points x ((N, 1) or (N, 2))."""
    if kind == "fit_sine":
        return np.sin(x[:, 0])
    if kind == "fit_step":
        return np.where(x[:, 0] < 0, -1.0, 1.0)
    if kind == "fit_abs":
        return np.abs(x[:, 0]) - 1.5
    if kind == "fit_poly":
        return 0.1 * x[:, 0] ** 3 - 0.6 * x[:, 0]
    if kind == "reg_plane":  # as in TensorFlow Playground: (x + y) / 10 over [-6, 6]^2, here on [-1, 1]^2
        return (x[:, 0] + x[:, 1]) * 0.6
    if kind == "reg_gaussians":  # six bumps of alternating sign, as in TensorFlow Playground
        centres = np.array([[-0.65, 0.4], [0, 0.4], [0.65, 0.4], [-0.65, -0.4], [0, -0.4], [0.65, -0.4]])
        signs = np.array([-1, 1, -1, 1, -1, 1])
        d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
        return (signs * np.exp(-d2 / (2 * 0.2 ** 2))).sum(1)
    raise ValueError(kind)


def generate(kind: str, p: dict[str, Any], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = p["n_points"]
    x = rng.uniform(-3, 3, (n, 1)) if kind in FUNCTIONS else rng.uniform(-1, 1, (n, 2))
    y = target(kind, x) + rng.normal(0, p["noise"], n)
    return x.astype(np.float32), y.astype(np.float32)


def load(ds: DatasetSpec) -> Data:
    info = describe(ds)
    p = resolve_params(ds)
    rng = np.random.default_rng(p["seed"])
    x, y = generate(ds.kind, p, rng)
    return regression_data(info, x, y, p["val_fraction"], rng)
