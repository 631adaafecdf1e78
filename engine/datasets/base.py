"""What every dataset shares: the parameter schema, DataInfo/Data, the split, standardisation,
and the checks and limits for data read from users' files.

numpy only and imports nothing of the engine, so every dataset module can build on it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_PIXELS = 40_000_000  # one image; larger ones are refused before decoding (decompression bombs)
MAX_BYTES = 2**31  # float32 dataset in memory


@dataclass(frozen=True)
class DataParam:
    """One setting of a dataset kind: type, default, allowed range and one-line help."""

    name: str
    type: str  # "int" | "float" | "str" | "path"
    default: Any
    help: str
    min: float | None = None
    max: float | None = None


COMMON_PARAMS = (
    DataParam("val_fraction", "float", 0.2, "Share of points held out for validation", 0.05, 0.9),
    DataParam("seed", "int", 0, "Random seed for generating and splitting", 0, 2**31 - 1),
)


@dataclass
class DataInfo:
    """What a model needs to know about a dataset before its data is loaded."""

    kind: str
    input_shape: tuple[int, ...]
    n_classes: int
    class_names: list[str]
    feature_names: list[str] = field(default_factory=list)
    task: str = "classification"  # "regression": y is float32 (N, n_targets) and there are no classes
    n_targets: int = 1
    vocab: int = 0  # > 0: inputs are token ids 0..vocab-1 (as float32) and ``tokens`` names them
    tokens: list[str] = field(default_factory=list)

    @property
    def is_regression(self) -> bool:
        return self.task == "regression"

    @property
    def is_sequence(self) -> bool:
        return len(self.input_shape) == 2 or self.vocab > 0

    @property
    def is_2d(self) -> bool:
        return self.input_shape == (2,) and not self.vocab

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3


@dataclass
class Data:
    """Arrays ready to train on: x float32, y int64 class indices (float32 (N, n_targets) for regression)."""

    info: DataInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    mean: np.ndarray  # standardisation statistics (training set) so raw points can be mapped
    std: np.ndarray
    raw_x_train: np.ndarray | None = None  # before standardisation, for plots in data units
    raw_x_val: np.ndarray | None = None


def split(x: np.ndarray, y: np.ndarray, val_fraction: float, rng: np.random.Generator):
    """(x_train, y_train, x_val, y_val), stratified so every class appears in both parts."""
    val_idx = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        # at least one of each class on both sides (a class of one sample can only train)
        k = min(len(idx) - 1, max(1, int(round(len(idx) * val_fraction))))
        val_idx.extend(idx[:k])
    mask = np.zeros(len(y), bool)
    mask[np.asarray(val_idx, int)] = True
    tr, va = np.flatnonzero(~mask), np.flatnonzero(mask)
    rng.shuffle(tr)
    rng.shuffle(va)
    return x[tr], y[tr], x[va], y[va]


def standardise(info: DataInfo, xt, yt, xv, yv, scaling: str = "standard") -> Data:
    """Zero mean, unit variance per feature (per channel for images), training set only.

    ``scaling`` "minmax" maps the training range to 0..1 instead and "none" keeps the raw numbers
    (the lessons compare them); ``mean``/``std`` always describe the mapping used.
    """
    axes = (0, 2, 3) if xt.ndim == 4 else (0,)
    if scaling == "none":
        mean = np.zeros_like(xt.mean(axis=axes, keepdims=True))
        std = np.ones_like(mean)
    elif scaling == "minmax":
        mean = xt.min(axis=axes, keepdims=True)
        std = xt.max(axis=axes, keepdims=True) - mean
    else:
        mean = xt.mean(axis=axes, keepdims=True)
        std = xt.std(axis=axes, keepdims=True)
    std = np.where(std < 1e-8, 1.0, std)
    norm = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    return Data(info, norm(xt), yt, norm(xv), yv, mean.squeeze(0), std.squeeze(0), xt, xv)


def check_file(path: str, field: str, what: str) -> str:
    """The file's base name; ValueError naming ``dataset.params.<field>`` if there is no such file."""
    if not path:
        raise ValueError(f"dataset.params.{field}: choose {what}")
    if not os.path.isfile(path):
        raise ValueError(f"dataset.params.{field}: no file at {path} - choose {what}")
    return os.path.basename(path)


def scale_pixels(a: np.ndarray, name: str, field: str) -> np.ndarray:
    """float32: 8/16-bit integers to 0..1, other numbers as they are; NaN and inf refused."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    out = a.astype(np.float32)
    bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
    if bad:
        raise ValueError(f"{field}: {name} has {bad} NaN or infinite values (or numbers too large for float32) - "
                         "clean the data")
    return out

