"""Arrays for the data panel's preview, computed from engine.datasets.load (numpy only here)."""
from __future__ import annotations

import numpy as np

from engine import datasets
from engine.spec import DatasetSpec

MAX_IMAGES = 64


def preview(ds: DatasetSpec) -> dict:
    """{"kind": "points"|"images", arrays, class_names, summary}; ValueError for bad data.

    Points are in data units (before standardisation); more than two features are shown
    as their first two principal components. Image sets are only sampled: the GUI never
    loads a whole image set (the worker does, when training starts).
    """
    if datasets.is_image_kind(ds.kind):
        x, y, names, total = datasets.images.sample(ds, MAX_IMAGES)
        c, h, w = x.shape[1:]
        return {"kind": "images", "images": x, "y": y, "class_names": names,
                "summary": f"{total} images, {len(names)} classes; images {c}x{h}x{w}"}
    data = datasets.load(ds)
    info = data.info
    xt = data.raw_x_train if data.raw_x_train is not None else data.x_train
    xv = data.raw_x_val if data.raw_x_val is not None else data.x_val
    if info.task == "regression" or info.is_sequence:
        return _preview_numbers(data, xt)
    n_classes = f"{info.n_classes} classes"
    summary = f"{len(data.y_train)} training + {len(data.y_val)} validation samples, {n_classes}"
    if xt.ndim == 4:
        c, h, w = xt.shape[1:]
        return {"kind": "images", "images": xt[:MAX_IMAGES], "y": data.y_train[:MAX_IMAGES],
                "class_names": info.class_names, "summary": f"{summary}; images {c}x{h}x{w}"}
    x = np.concatenate([xt, xv]).reshape(len(xt) + len(xv), -1).astype(float)
    y = np.concatenate([data.y_train, data.y_val])
    if x.shape[1] == 1:
        x = np.concatenate([x, np.zeros_like(x)], 1)
    elif x.shape[1] > 2:
        x = pca_2d(x)
        summary += f"; first two principal components of {xt.shape[1]} features"
    return {"kind": "points", "x": x, "y": y, "class_names": info.class_names, "summary": summary}


def _preview_numbers(data, xt: np.ndarray) -> dict:
    """Regression: the points (1-D: x against the target; 2-D: coloured by the target's sign).
    Sequences: the first few samples as (step, value) points, one colour per sample."""
    info = data.info
    n = f"{len(data.y_train)} training + {len(data.y_val)} validation samples"
    if info.is_sequence:
        k = min(4, len(xt))
        first = xt[:k] if xt.ndim == 2 else xt[:k, :, 0]
        steps = np.tile(np.arange(first.shape[1]), k)
        x = np.stack([steps, first.ravel()], 1).astype(float)
        y = np.repeat(np.arange(k), first.shape[1])
        what = "token ids" if info.vocab else f"{info.input_shape[1]} feature(s) per step"
        summary = f"{n}; sequences of {info.input_shape[0]} steps, {what}"
        if info.tokens:
            summary += "; e.g. “" + "".join(info.tokens[int(t)] for t in xt[0]).replace("\n", " ") + "”"
        return {"kind": "points", "x": x, "y": y, "class_names": [f"sample {i + 1}" for i in range(k)], "summary": summary}
    target = np.asarray(data.y_train)[:, 0]
    summary = f"{n}; target {target.min():.3g} .. {target.max():.3g} (regression)"
    if xt.shape[1] == 1:
        return {"kind": "points", "x": np.stack([xt[:, 0], target], 1).astype(float), "y": np.zeros(len(xt), int),
                "class_names": ["target over x"], "summary": summary}
    x = xt.reshape(len(xt), -1).astype(float)
    x = x if x.shape[1] == 2 else pca_2d(x)
    return {"kind": "points", "x": x, "y": (target > 0).astype(int), "class_names": ["target < 0", "target > 0"],
            "summary": summary}


def pca_2d(x: np.ndarray) -> np.ndarray:
    """Project standardised rows onto their two main axes (SVD; sign fixed for stable plots)."""
    std = x.std(0)
    z = (x - x.mean(0)) / np.where(std < 1e-12, 1.0, std)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    axes = vt[:2]
    axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(1)])[:, None]
    return z @ axes.T
