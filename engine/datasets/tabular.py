"""Tabular datasets: generated 2-D sets, iris and digits from sklearn, and the user's CSV files.

``describe`` is cheap (no sklearn; a CSV is read for its header and classes) so shapes can be
checked while the GUI starts; ``load`` makes the arrays. Features are standardised with
training-set statistics only.
"""
from __future__ import annotations

import csv
import math
import os
from typing import Any

import numpy as np

from engine.datasets.base import COMMON_PARAMS, Data, DataInfo, DataParam, split, standardise
from engine.spec import DatasetSpec

TWO_D = ("xor", "circles", "gaussians", "spiral", "moons")
_SCALING = (DataParam("scaling", "str", "standard",
                       "How features are scaled: standard (z-score), minmax (0..1) or none (raw numbers)"),)
_TWO_D = (
    DataParam("n_points", "int", 400, "Number of points generated", 20, 100000),
    DataParam("noise", "float", 0.1, "Gaussian noise added to each point", 0.0, 2.0),
    DataParam("x2_scale", "float", 1.0, "Multiplies the second feature (e.g. 100: features of very different scales)",
              0.01, 1000.0),
)
DATASET_PARAMS: dict[str, tuple[DataParam, ...]] = {
    "xor": _TWO_D + COMMON_PARAMS + _SCALING,
    "circles": _TWO_D + COMMON_PARAMS + _SCALING,
    "moons": _TWO_D + COMMON_PARAMS + _SCALING,
    "gaussians": _TWO_D + (DataParam("classes", "int", 2, "Number of clusters / classes", 2, 8),) + COMMON_PARAMS + _SCALING,
    "spiral": _TWO_D + (DataParam("classes", "int", 2, "Number of spiral arms / classes", 2, 8),) + COMMON_PARAMS + _SCALING,
    "iris": COMMON_PARAMS + _SCALING,
    "digits": COMMON_PARAMS + _SCALING,
    "csv": (DataParam("path", "path", "", "CSV file with a header row"),
            DataParam("label_column", "str", "label", "Name of the column holding the class (or the target)"),
            DataParam("task", "str", "classification",
                      "classification (the column holds classes) or regression (it holds numbers to predict)"))
    + COMMON_PARAMS + _SCALING,
}
SCALINGS = ("standard", "minmax", "none")
CHOICES = {(kind, "scaling"): SCALINGS for kind in DATASET_PARAMS}
DATASET_HELP = {
    "xor": "Four quadrants; opposite corners share a class. Needs a hidden layer.",
    "circles": "A ring around a disc. Needs a non-linear boundary.",
    "gaussians": "Separate Gaussian blobs, one per class.",
    "spiral": "Interleaved spiral arms - the hard one.",
    "moons": "Two interleaving half-moons.",
    "iris": "Fisher's iris flowers: 4 measurements, 3 species (150 samples).",
    "digits": "8x8 images of hand-written digits, 10 classes (1797 samples).",
    "csv": "Your own CSV: numeric feature columns plus a label column.",
}


def resolve_params(ds: DatasetSpec) -> dict[str, Any]:
    """A tabular dataset's params with defaults filled in (``ds.kind`` is one of DATASET_PARAMS).

    ValueError lists every bad field, one ``dataset.params.<name>: <what to do>`` per line.
    """
    schema = DATASET_PARAMS[ds.kind]
    out = {p.name: p.default for p in schema}
    bad: list[str] = []
    for k, v in ds.params.items():
        par = next((p for p in schema if p.name == k), None)
        where = f"dataset.params.{str(k)[:40]}"
        if par is None:
            bad.append(f"{where}: not a parameter of {ds.kind} - remove it")
            continue
        if par.type in ("int", "float"):
            # ints are compared exactly (float() of a huge int would overflow)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or isinstance(v, float) and not math.isfinite(v):
                bad.append(f"{where}: must be a number, got {v!r:.40}")
                continue
            if par.type == "int" and isinstance(v, float) and not v.is_integer():
                bad.append(f"{where}: must be a whole number, got {v}")
                continue
            if v < par.min or v > par.max:
                bad.append(f"{where}: {v if abs(v) < 1e15 else 'the value'} is outside {par.min:g}..{par.max:g}"
                           " - choose a value in that range")
                continue
            v = int(v) if par.type == "int" else float(v)
        elif not isinstance(v, str):
            bad.append(f"{where}: must be text, got {v!r:.40}")
            continue
        elif k == "scaling" and v not in SCALINGS:
            bad.append(f"{where}: {v!r:.40} is not one of {', '.join(SCALINGS)}")
            continue
        out[k] = v
    if out.get("task", "classification") not in ("classification", "regression"):
        bad.append(f"dataset.params.task: {out['task']!r:.40} is not one of classification, regression")
    if bad:
        raise ValueError("\n".join(bad))
    return out


def describe(ds: DatasetSpec) -> DataInfo:
    """Input shape and classes without generating data (a CSV's header is read)."""
    p = resolve_params(ds)
    k = ds.kind
    if k in TWO_D:
        n = p.get("classes", 2)
        return DataInfo(k, (2,), n, [f"class {i}" for i in range(n)], ["x1", "x2"])
    if k == "iris":
        return DataInfo(k, (4,), 3, ["setosa", "versicolor", "virginica"],
                        ["sepal length", "sepal width", "petal length", "petal width"])
    if k == "digits":
        return DataInfo(k, (1, 8, 8), 10, [str(i) for i in range(10)])
    if k == "csv" and p["task"] == "regression":
        header, _, _ = _read_csv(p["path"], p["label_column"], numeric=True)
        return DataInfo(k, (len(header),), 0, [], header, task="regression")
    if k == "csv":
        header, labels, _ = _read_csv(p["path"], p["label_column"])
        return DataInfo(k, (len(header),), len(labels), labels, header)
    raise ValueError(f"unknown dataset kind {k!r}")


# ---- generators ---------------------------------------------------------------------------

def _two_d(kind: str, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, noise = p["n_points"], p["noise"]
    if kind == "xor":
        x = rng.uniform(-1, 1, size=(n, 2))
        # keep points off the axes a little so the four quadrants read clearly
        x += np.sign(x) * 0.1
        # as in TensorFlow Playground, the label follows the noisy point, so noise blurs
        # the quadrants' edges without making the set inseparable
        x = x + rng.normal(0, noise * 0.3, size=x.shape)
        y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)
    elif kind == "circles":
        y = _balanced(n, 2, rng)
        r = np.where(y == 0, rng.uniform(0, 0.5, n), rng.uniform(0.7, 1.0, n))
        t = rng.uniform(0, 2 * np.pi, n)
        x = np.stack([r * np.cos(t), r * np.sin(t)], 1) + rng.normal(0, noise * 0.5, (n, 2))
    elif kind == "gaussians":
        c = p["classes"]
        y = _balanced(n, c, rng)
        ang = 2 * np.pi * np.arange(c) / c + np.pi / 4
        centres = np.stack([np.cos(ang), np.sin(ang)], 1) * 0.8
        x = centres[y] + rng.normal(0, 0.25 + noise, (n, 2))
    elif kind == "spiral":
        c = p["classes"]
        y = _balanced(n, c, rng)
        t = rng.uniform(0, 1, n)
        r = 0.1 + 0.9 * t
        ang = t * 3.5 * np.pi + 2 * np.pi * y / c
        x = np.stack([r * np.sin(ang), r * np.cos(ang)], 1) + rng.normal(0, noise * 0.2, (n, 2))
    elif kind == "moons":
        y = _balanced(n, 2, rng)
        t = rng.uniform(0, np.pi, n)
        x = np.where(y[:, None] == 0,
                     np.stack([np.cos(t), np.sin(t)], 1),
                     np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
        x = (x - [0.5, 0.25]) / 1.2 + rng.normal(0, noise * 0.5, (n, 2))
    else:
        raise ValueError(kind)
    return x.astype(np.float32), y.astype(np.int64)


def _balanced(n: int, classes: int, rng: np.random.Generator) -> np.ndarray:
    """Labels with every class equally often (to one), shuffled: no class can come out empty."""
    return rng.permutation(np.arange(n) % classes).astype(np.int64)


def _read_csv(path: str, label_column: str,
              numeric: bool = False) -> tuple[list[str], list[str], tuple[np.ndarray, np.ndarray]]:
    """(feature names, class names, (x, y)); ValueError with row/column on bad values.

    ``numeric``: the label column holds regression targets - y is float32 (N, 1), no class names.
    """
    if not path:
        raise ValueError("dataset.params.path: choose a CSV file")
    if not os.path.isfile(path):
        raise ValueError(f"dataset.params.path: no file at {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            # keep each row's line number in the file: blank lines are dropped below
            rows = [(reader.line_num, r) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"dataset.params.path: cannot read {path} as CSV ({exc})") from None
    rows = [(ln, r) for ln, r in rows if any(c.strip() for c in r)]
    if len(rows) < 3:
        raise ValueError(f"{os.path.basename(path)}: needs a header row and at least two data rows")
    header = [h.strip() for h in rows[0][1]]
    if label_column not in header:
        raise ValueError(f"{os.path.basename(path)}: no column named '{label_column}' "
                         f"(columns: {', '.join(header)}) - set dataset.params.label_column")
    li = header.index(label_column)
    feats = [h for i, h in enumerate(header) if i != li]
    if not feats:
        raise ValueError(f"{os.path.basename(path)}: no feature columns besides '{label_column}'")
    xs, labels = [], []
    for rn, row in rows[1:]:
        if len(row) != len(header):
            raise ValueError(f"{os.path.basename(path)} line {rn}: {len(row)} values but the header has {len(header)} - "
                             "fix or drop the row")
        vals = []
        for i, cell in enumerate(row):
            if i == li:
                continue
            cell = cell.strip()
            if cell == "":
                raise ValueError(f"{os.path.basename(path)} line {rn}, column '{header[i]}': missing value - "
                                 "fill or drop the row")
            try:
                v = float(cell)
            except ValueError:
                raise ValueError(f"{os.path.basename(path)} line {rn}, column '{header[i]}': "
                                 f"'{cell}' is not a number - features must be numeric") from None
            if not math.isfinite(v) or abs(v) > 1e30:  # features are float32: larger values become inf
                raise ValueError(f"{os.path.basename(path)} line {rn}, column '{header[i]}': '{cell}' is not a finite "
                                 "number of usable size - replace it")
            vals.append(v)
        lab = row[li].strip()
        if lab == "":
            raise ValueError(f"{os.path.basename(path)} line {rn}: missing label in '{label_column}' - fill or drop the row")
        xs.append(vals)
        labels.append(lab)
    if numeric:
        try:
            y = np.asarray([float(v) for v in labels], np.float64)
        except ValueError:
            bad = next(v for v in labels if _num_key(v) == math.inf)
            raise ValueError(f"{os.path.basename(path)}: '{bad}' in '{label_column}' is not a number - a regression "
                             "target must be numeric (or set dataset.params.task to classification)") from None
        if not np.isfinite(y).all():
            raise ValueError(f"{os.path.basename(path)}: '{label_column}' has non-finite values - clean the data")
        return feats, [], (np.asarray(xs, np.float32), y.astype(np.float32)[:, None])
    names = sorted(set(labels), key=lambda s: (_num_key(s), s))
    if len(names) < 2:
        raise ValueError(f"{os.path.basename(path)}: column '{label_column}' has only one class")
    if len(names) > 1000:
        raise ValueError(f"{os.path.basename(path)}: {len(names)} classes in '{label_column}' - is it the right column?")
    index = {n: i for i, n in enumerate(names)}
    return feats, names, (np.asarray(xs, np.float32), np.asarray([index[s] for s in labels], np.int64))


def _num_key(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        return math.inf


def load(ds: DatasetSpec) -> Data:
    """Generate or read the dataset, split it, and standardise with training statistics."""
    info = describe(ds)
    p = resolve_params(ds)
    rng = np.random.default_rng(p["seed"])
    if ds.kind in TWO_D:
        x, y = _two_d(ds.kind, p, rng)
    elif ds.kind == "iris":
        from sklearn.datasets import load_iris
        b = load_iris()
        x, y = b.data.astype(np.float32), b.target.astype(np.int64)
    elif ds.kind == "digits":
        from sklearn.datasets import load_digits
        b = load_digits()
        x, y = (b.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), b.target.astype(np.int64)
    elif p["task"] == "regression":
        from engine.datasets.regression import regression_data

        _, _, (x, y) = _read_csv(p["path"], p["label_column"], numeric=True)
        return regression_data(info, x, y, p["val_fraction"], rng)
    else:  # csv
        _, _, (x, y) = _read_csv(p["path"], p["label_column"])
    if "x2_scale" in p:
        x[:, 1] *= np.float32(p["x2_scale"])
    xt, yt, xv, yv = split(x, y, p["val_fraction"], rng)
    return standardise(info, xt, yt, xv, yv, p["scaling"])


