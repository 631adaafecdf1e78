"""Sequence datasets, generated offline: sine forecasting, the adding problem, recall, parity,
next-character prediction on a small corpus, and windows of a column of the user's CSV file.

Real-valued sequences have shape (steps, features) and are standardised per feature with
training statistics; token sequences are (steps,) of ids 0..vocab-1 (float32, never scaled).
numpy only.
"""
from __future__ import annotations

import csv
import math
import os
from typing import Any

import numpy as np

from engine.datasets.base import COMMON_PARAMS, Data, DataInfo, DataParam, check_file
from engine.datasets.regression import random_split, resolve
from engine.spec import DatasetSpec

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "assets", "text", "garden.txt")
_N = DataParam("n_samples", "int", 2000, "Number of sequences generated", 20, 200000)


def _length(default: int, hi: int = 1000) -> DataParam:
    return DataParam("length", "int", default, "Steps in each sequence", 2, hi)


PARAMS: dict[str, tuple[DataParam, ...]] = {
    "sine_forecast": (_N, _length(30), DataParam("horizon", "int", 1, "How many next values to predict", 1, 50),
                      DataParam("noise", "float", 0.0, "Gaussian noise on the inputs", 0.0, 2.0)) + COMMON_PARAMS,
    "adding": (DataParam("n_samples", "int", 4000, "Number of sequences generated", 20, 200000),
               _length(50)) + COMMON_PARAMS,
    "recall": (_N, _length(20), DataParam("vocab", "int", 8, "Number of different tokens", 2, 256),
               DataParam("position", "int", 0, "The step whose token is the answer (0 = the first)", 0, 999))
    + COMMON_PARAMS,
    "parity": (_N, _length(8, 200)) + COMMON_PARAMS,
    "chars": (DataParam("path", "path", "", "Text file (UTF-8); empty = the bundled corpus"),
              _length(24), DataParam("n_samples", "int", 4000, "Windows taken from the text", 20, 200000)) + COMMON_PARAMS,
    "csv_series": (DataParam("path", "path", "", "CSV file with a header row"),
                   DataParam("column", "str", "value", "The column holding the series"),
                   _length(20), DataParam("horizon", "int", 1, "How many next values to predict", 1, 50)) + COMMON_PARAMS,
}
HELP = {
    "sine_forecast": "Sequences: windows of sine waves of random frequency; predict the next value(s). Regression.",
    "adding": "Sequences: random numbers with two marked; the target is the sum of the marked two. "
              "Long-range memory - an LSTM learns it, a plain RNN stays at the variance (0.167).",
    "recall": "Tokens: a random sequence; the class is the token at a chosen step (the first by default).",
    "parity": "Sequences of bits; the class is whether the number of ones is odd.",
    "chars": "Text: windows of characters; predict the next character, then sample new text.",
    "csv_series": "Your CSV time series: windows of one column; predict the next value(s). Regression.",
}


def resolve_params(ds: DatasetSpec) -> dict[str, Any]:
    return resolve(PARAMS[ds.kind], ds)


def _read_text(path: str) -> str:
    where = path or CORPUS
    if path:
        check_file(path, "path", "a UTF-8 text file")
    try:
        with open(where, encoding="utf-8") as fh:
            text = fh.read(4_000_000)
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"dataset.params.path: cannot read {where} as UTF-8 text ({exc})") from None
    return text


def _chars(text: str) -> list[str]:
    return sorted(set(text))


def describe(ds: DatasetSpec) -> DataInfo:
    p = resolve_params(ds)
    k, t = ds.kind, p["length"]
    if k == "sine_forecast":
        return DataInfo(k, (t, 1), 0, [], ["value"], task="regression", n_targets=p["horizon"])
    if k == "adding":
        return DataInfo(k, (t, 2), 0, [], ["value", "marker"], task="regression", n_targets=1)
    if k == "recall":
        if p["position"] >= t:
            raise ValueError(f"dataset.params.position: {p['position']} is past the last step {t - 1} - choose a smaller one")
        names = [str(i) for i in range(p["vocab"])]
        return DataInfo(k, (t,), p["vocab"], names, vocab=p["vocab"], tokens=names)
    if k == "parity":
        return DataInfo(k, (t, 1), 2, ["even", "odd"], ["bit"])
    if k == "chars":
        text = _read_text(p["path"])
        chars = _chars(text)
        if len(text) <= t + 1 or len(chars) < 2:
            raise ValueError(f"dataset.params.path: the text needs more than {t + 1} characters and two different ones")
        return DataInfo(k, (t,), len(chars), [repr(c)[1:-1] for c in chars], vocab=len(chars), tokens=chars)
    if k == "csv_series":
        _series(p)  # read the column so a bad file is reported while editing
        return DataInfo(k, (t, 1), 0, [], [p["column"]], task="regression", n_targets=p["horizon"])
    raise ValueError(f"unknown dataset kind {k!r}")


def _series(p: dict) -> np.ndarray:
    name = check_file(p["path"], "path", "a CSV file")
    try:
        with open(p["path"], newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"dataset.params.path: cannot read {p['path']} as CSV ({exc})") from None
    header = [h.strip() for h in rows[0]] if rows else []
    if p["column"] not in header:
        raise ValueError(f"dataset.params.column: {name} has no column '{p['column']}' (columns: {', '.join(header)})")
    i = header.index(p["column"])
    vals = []
    for n, row in enumerate(rows[1:], start=2):
        try:
            v = float(row[i])
        except (ValueError, IndexError):
            raise ValueError(f"{name} row {n}, column '{p['column']}': not a number - fix or drop the row") from None
        if not math.isfinite(v):
            raise ValueError(f"{name} row {n}, column '{p['column']}': not a finite number - fix or drop the row")
        vals.append(v)
    need = p["length"] + p["horizon"] + 1
    if len(vals) < need:
        raise ValueError(f"dataset.params.length: {name} has {len(vals)} values but windows need at least {need} - "
                         "shorten length or horizon")
    return np.asarray(vals, np.float32)


# ---- generators ------------------------------------------------------------------------------

def _windows(series: np.ndarray, t: int, horizon: int, n: int | None, rng) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(len(series) - t - horizon + 1)
    if n is not None and n < len(starts):
        starts = np.sort(rng.choice(starts, n, replace=False))
    idx = starts[:, None] + np.arange(t + horizon)[None]
    w = series[idx]
    return w[:, :t], w[:, t:]


def generate(kind: str, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) before the split: x (N, T, F) or (N, T) token ids, y int64 classes or float32 (N, k)."""
    t = p["length"]
    if kind == "sine_forecast":
        n, h = p["n_samples"], p["horizon"]
        freq = rng.uniform(0.1, 0.4, (n, 1))
        phase = rng.uniform(0, 2 * np.pi, (n, 1))
        amp = rng.uniform(0.5, 1.0, (n, 1))
        s = amp * np.sin(freq * np.arange(t + h)[None] + phase)
        x = s[:, :t] + rng.normal(0, p["noise"], (n, t))
        return x[..., None].astype(np.float32), s[:, t:].astype(np.float32)
    if kind == "adding":
        n = p["n_samples"]
        values = rng.uniform(0, 1, (n, t))
        marks = np.zeros((n, t))
        half = max(1, t // 2)
        a = rng.integers(0, half, n)
        b = rng.integers(half, t, n)
        marks[np.arange(n), a] = 1
        marks[np.arange(n), b] = 1
        y = values[np.arange(n), a] + values[np.arange(n), b]
        return np.stack([values, marks], -1).astype(np.float32), y[:, None].astype(np.float32)
    if kind == "recall":
        x = rng.integers(0, p["vocab"], (p["n_samples"], t))
        return x.astype(np.float32), x[:, p["position"]].astype(np.int64)
    if kind == "parity":
        x = rng.integers(0, 2, (p["n_samples"], t))
        return x[..., None].astype(np.float32), (x.sum(1) % 2).astype(np.int64)
    if kind == "chars":
        text = _read_text(p["path"])
        index = {c: i for i, c in enumerate(_chars(text))}
        ids = np.fromiter((index[c] for c in text), np.int64, len(text))
        x, y = _windows(ids, t, 1, p["n_samples"], rng)
        return x.astype(np.float32), y[:, 0]
    if kind == "csv_series":
        x, y = _windows(_series(p), t, p["horizon"], None, rng)
        return x[..., None], y
    raise ValueError(kind)


def load(ds: DatasetSpec) -> Data:
    info = describe(ds)
    p = resolve_params(ds)
    rng = np.random.default_rng(p["seed"])
    x, y = generate(ds.kind, p, rng)
    xt, yt, xv, yv = random_split(x, y, p["val_fraction"], rng)
    if info.vocab:  # token ids are indices: never scaled
        mean, std = np.zeros(1, np.float32), np.ones(1, np.float32)
    else:  # one mean and spread per feature over all samples and steps
        mean = xt.mean(axis=(0, 1)).astype(np.float32)
        std = xt.std(axis=(0, 1)).astype(np.float32)
        std = np.where(std < 1e-8, 1.0, std).astype(np.float32)
    norm = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    return Data(info, norm(xt), yt, norm(xv), yv, mean, std, xt, xv)
