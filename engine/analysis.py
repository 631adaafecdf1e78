"""On-demand and live analyses of a built model (engine.build.GraphNet): embeddings, ROC and
precision-recall curves, a probe's activations in every layer, unit/filter/connection
ablation masks and each layer's share of forward time.

torch and numpy only, and of the engine just model_utils, so probes may use it. Like probes,
every function runs the model in eval mode and gives every module its mode back.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from engine.model_utils import eval_mode, model_device

EMBED_POINTS = 1000  # validation samples in the embedding (bounded so PCA stays cheap at snapshot rate)
EMBED_IMAGE_POINTS = 512  # images: the samples the GUI holds pictures of (protocol.MAX_VAL_IMAGES)
MAX_PROBE_UNITS = 256


# ---- activations ---------------------------------------------------------------------------

def default_layer(model) -> str:
    """The layer that feeds the Output: the network's last representation before the head."""
    srcs = model.sources.get(model.output_id) or [model.input_id]
    return srcs[0]


def layer_activations(model, x: np.ndarray, layer: str, batch: int = 1024) -> np.ndarray:
    """float32 (N, d): ``layer``'s output for every row of ``x``, flattened per sample."""
    if layer not in model.shapes:
        raise ValueError(f"layer {layer!r} is not in the network - pick one of {', '.join(model.order)}")
    dev = model_device(model)
    parts = []
    with eval_mode(model), torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch], dtype=np.float32)).to(dev)
            parts.append(model.forward_all(xb)[layer].reshape(len(xb), -1).float().cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)


def embedding_index(data) -> np.ndarray:
    """The validation samples the embedding shows: the first ones (the split is already shuffled)."""
    n = EMBED_IMAGE_POINTS if data.info.is_image else EMBED_POINTS
    return np.arange(min(n, len(data.x_val)), dtype=np.int64)


def pca2(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, 2), explained variance ratio (2,)) of the rows of ``a`` by SVD; each axis's
    largest-magnitude loading is positive so the picture does not flip between snapshots."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    centred = a - a.mean(axis=0)
    if len(a) < 2:
        return np.zeros((len(a), 2), np.float32), np.zeros(2, np.float32)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    comps = np.zeros((2, a.shape[1]))
    comps[:min(2, len(vt))] = vt[:2]
    for r in range(2):
        if np.any(comps[r]):
            comps[r] *= np.sign(comps[r][np.abs(comps[r]).argmax()])
    var = s ** 2
    ratio = np.zeros(2)
    if var.sum() > 0:
        ratio[:min(2, len(var))] = var[:2] / var.sum()
    return (centred @ comps.T).astype(np.float32), ratio.astype(np.float32)


def embedding_pca(model, data, layer: str | None) -> dict[str, Any]:
    """The live embedding: the chosen layer's activations of the embedding samples, by PCA."""
    layer = layer if layer in model.shapes else default_layer(model)
    idx = embedding_index(data)
    acts = layer_activations(model, data.x_val[idx], layer)
    pts, ratio = pca2(acts)
    out = {"points": pts, "index": idx, "layer": layer, "ratio": ratio, "method": "PCA"}
    if not data.info.is_image:  # the GUI holds no dataset: the features to show for a clicked point
        raw = data.raw_x_val[idx] if data.raw_x_val is not None else data.x_val[idx] * data.std + data.mean
        out["features"] = np.asarray(raw, np.float32)
    return out


# ---- ROC and precision-recall ---------------------------------------------------------------

def _binary_curves(score: np.ndarray, positive: np.ndarray) -> dict[str, Any]:
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], positive[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last sample of each distinct threshold
    tps = np.cumsum(t)[last]
    fps = (last + 1) - tps
    n_pos, n_neg = float(t.sum()), float(len(t) - t.sum())
    fpr = np.r_[0.0, fps / n_neg] if n_neg else np.full(len(fps) + 1, np.nan)
    tpr = np.r_[0.0, tps / n_pos] if n_pos else np.full(len(tps) + 1, np.nan)
    auc = float(np.trapezoid(tpr, fpr)) if n_pos and n_neg else float("nan")
    precision = tps / (tps + fps)
    recall = tps / n_pos if n_pos else np.full(len(tps), np.nan)
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision)) if n_pos else float("nan")
    return {"fpr": fpr.astype(np.float32), "tpr": tpr.astype(np.float32), "auc": auc,
            "recall": np.r_[0.0, recall].astype(np.float32), "precision": np.r_[1.0, precision].astype(np.float32),
            "ap": ap}


def roc_pr(proba: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """ROC and precision-recall curves with AUC and average precision from class probabilities.

    Two classes: one curve, class 1 positive. More: one-vs-rest per class, plus the macro
    means. ``classes`` names the positive class of each curve.
    """
    proba = np.asarray(proba, np.float64)
    y = np.asarray(y, np.int64).reshape(-1)
    k = proba.shape[1]
    classes = [1] if k == 2 else list(range(k))
    curves = [_binary_curves(proba[:, c], y == c) for c in classes]
    aucs = np.array([c["auc"] for c in curves])
    aps = np.array([c["ap"] for c in curves])
    return {"classes": np.asarray(classes, np.int64), "curves": curves,
            "macro_auc": float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan"),
            "macro_ap": float(np.nanmean(aps)) if np.isfinite(aps).any() else float("nan")}


# ---- what-if probe ------------------------------------------------------------------------

def probe_activations(model, x: np.ndarray) -> dict[str, np.ndarray]:
    """{layer id: float32 values} for one input: flat layers their units, image layers each
    channel's mean (up to MAX_PROBE_UNITS)."""
    dev = model_device(model)
    with eval_mode(model), torch.no_grad():
        vals = model.forward_all(torch.from_numpy(np.asarray(x, np.float32)[None]).to(dev))
    out = {}
    for lid in model.order:
        v = vals[lid][0].float()
        v = v.reshape(v.shape[0], -1).mean(dim=1) if v.ndim == 3 else v.reshape(-1)
        out[lid] = v[:MAX_PROBE_UNITS].cpu().numpy().copy()
    return out


# ---- ablation ------------------------------------------------------------------------------

def mask_key(target: dict) -> tuple:
    """("unit", layer, i) for a unit or filter; ("link", src, dst, i, j) for the weight unit i -> unit j."""
    if "src" in target:
        return ("link", str(target["src"]), str(target["dst"]), int(target["i"]), int(target["j"]))
    return ("unit", str(target["layer"]), int(target["unit"]))


def describe_mask(key: tuple) -> str:
    if key[0] == "link":
        return f"connection {key[1]}[{key[3]}] → {key[2]}[{key[4]}]"
    return f"{key[1]} unit {key[2]}"


class Ablations:
    """Switched-off units/filters (their output zeroed) and connections (their weight's share
    taken out of the sum), as forward hooks: the design and the weights stay as they are."""

    def __init__(self) -> None:
        self.keys: set[tuple] = set()
        self._handles: list = []

    def check(self, model, key: tuple) -> None:
        if key[0] == "unit":
            _, lid, i = key
            shape = model.shapes.get(lid)
            if shape is None or lid == model.input_id or lid == model.output_id:
                raise ValueError(f"{lid} has no units to switch off - pick a hidden layer")
            if not 0 <= i < shape[0]:
                raise ValueError(f"{lid} has {shape[0]} units; unit {i} does not exist")
        else:
            _, src, dst, i, j = key
            mod = model.layers[dst] if dst in model.layers else None
            if not isinstance(mod, torch.nn.Linear) or model.sources.get(dst) != [src]:
                raise ValueError(f"{src} → {dst} is not a connection into a Dense layer - pick a weight line")
            if not (0 <= i < mod.in_features and 0 <= j < mod.out_features):
                raise ValueError(f"{src}[{i}] → {dst}[{j}] is outside the {mod.out_features}x{mod.in_features} weights")

    def toggle(self, model, key: tuple, on: bool | None = None) -> bool:
        """Switch ``key`` off (on=False) or on again (on=True; None flips); returns True if it is now off."""
        self.check(model, key)
        off = (key not in self.keys) if on is None else not on
        self.keys.add(key) if off else self.keys.discard(key)
        self.install(model)
        return off

    def clear(self, model) -> None:
        self.keys.clear()
        self.install(model)

    def install(self, model) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        units: dict[str, list[int]] = {}
        links: dict[str, list[tuple[int, int]]] = {}
        for key in sorted(self.keys):
            if key[0] == "unit":
                units.setdefault(key[1], []).append(key[2])
            else:
                links.setdefault(key[2], []).append((key[3], key[4]))
        for lid, idx in units.items():
            self._handles.append(model.layers[lid].register_forward_hook(_UnitMask(idx)))
        for lid, pairs in links.items():
            self._handles.append(model.layers[lid].register_forward_hook(_LinkMask(pairs)))


class _UnitMask:
    def __init__(self, idx: list[int]):
        self.idx = list(idx)

    def __call__(self, module, inputs, out):
        keep = torch.ones(out.shape[1], dtype=out.dtype, device=out.device)
        keep[self.idx] = 0
        return out * keep.reshape(1, -1, *([1] * (out.ndim - 2)))


class _LinkMask:
    def __init__(self, pairs: list[tuple[int, int]]):
        self.pairs = list(pairs)

    def __call__(self, module, inputs, out):
        x = inputs[0]
        delta = torch.zeros_like(out)
        for i, j in self.pairs:
            delta[:, j] = delta[:, j] + x[:, i] * module.weight[j, i]
        return out - delta


# ---- cost -----------------------------------------------------------------------------------

def layer_costs(model, x: np.ndarray, repeats: int = 5) -> dict[str, dict[str, float]]:
    """{layer id: {"time_share", "seconds", "act_bytes"}}: each layer's share of a timed forward
    pass over ``x`` (the best of ``repeats``) and its output's memory per sample."""
    dev = model_device(model)
    xb = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(dev)
    start: dict[str, float] = {}
    took: dict[str, float] = {lid: 0.0 for lid in model.layers}
    best: dict[str, float] = {lid: float("inf") for lid in model.layers}
    handles = []
    for lid, mod in model.layers.items():
        handles.append(mod.register_forward_pre_hook(lambda _m, _i, lid=lid: start.__setitem__(lid, time.perf_counter())))
        handles.append(mod.register_forward_hook(
            lambda _m, _i, _o, lid=lid: took.__setitem__(lid, took[lid] + time.perf_counter() - start[lid])))
    try:
        with eval_mode(model), torch.no_grad():
            model(xb)  # warm-up
            for _ in range(repeats):
                for lid in took:
                    took[lid] = 0.0
                model(xb)
                for lid in took:
                    best[lid] = min(best[lid], took[lid])
    finally:
        for h in handles:
            h.remove()
    total = sum(best.values()) or 1.0
    out = {}
    for lid in model.order:
        elems = int(np.prod(model.shapes[lid]))
        out[lid] = {"time_share": best.get(lid, 0.0) / total, "seconds": best.get(lid, 0.0) / max(1, len(x)),
                    "act_bytes": float(elems * 4)}
    return out
