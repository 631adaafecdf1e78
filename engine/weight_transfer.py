"""Carry trained weights over a structural edit of the design (numpy only: the GUI may import it).

After the user adds, removes, widens or re-wires a layer, the new model is built with fresh
weights and ``transfer`` fills in what the old model had learnt, layer by layer (matched by the
layer id in the state-dict key, ``layers.<id>.<param>``):

* same key, same shape -> the trained array is kept as it is;
* Dense / Output ``weight (out, in)`` and ``bias (out,)`` of another size -> the overlapping block
  ``[:min_out, :min_in]`` is copied into the fresh init, so a widened layer keeps its old units
  and the layer after it keeps the columns of the old inputs; the rest stays freshly initialised;
* Conv2d / ConvTranspose2d ``weight (c0, c1, kh, kw)`` -> the same over the channels, when the
  kernel size is unchanged; BatchNorm's affine parameters and running statistics -> per channel;
* anything else of another shape (a new kernel size, a resized LSTM whose gates are interleaved,
  an embedding...) starts fresh.

The optimiser's state (momenta, Adam's moments) belongs to the old parameters and is not carried:
the continued run starts a fresh optimiser, and the report says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DENSE_LIKE = ("Dense", "Output")
CONV_LIKE = ("Conv2d", "ConvTranspose2d")
PER_CHANNEL = ("BatchNorm",)
# what the leading dimensions of a resizable weight count, in the words of the layer's inspector
DIM_NAMES = {"Dense": ("units", "inputs"), "Output": ("units", "inputs"), "Conv2d": ("filters", "input channels"),
             "ConvTranspose2d": ("input channels", "filters"), "BatchNorm": ("channels",)}


@dataclass
class LayerOutcome:
    """What happened to one layer's parameters: kept | partly | fresh (shape changed) | new."""

    layer: str
    status: str
    detail: str = ""  # for "partly": e.g. "widened 4 -> 8 (old units kept)"


@dataclass
class TransferReport:
    """Per layer (in the new model's order) what was kept; plain data, sent to the GUI."""

    layers: list[LayerOutcome] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    optimiser_restarted: bool = True

    def ids(self, status: str) -> list[str]:
        return [o.layer for o in self.layers if o.status == status]

    def summary(self) -> str:
        """One line for the status bar, e.g. "Kept the weights of dense1, out1; dense2 widened 4 -> 8
        (old units kept); new: dense3; optimiser restarted"."""
        kept = self.ids("kept")
        parts = [f"Kept the weights of {', '.join(kept)}" if kept else "Kept no layer's weights whole"]
        parts += [f"{o.layer} {o.detail}" for o in self.layers if o.status == "partly"]
        if self.ids("fresh"):
            parts.append(f"started fresh (shape changed): {', '.join(self.ids('fresh'))}")
        if self.ids("new"):
            parts.append(f"new: {', '.join(self.ids('new'))}")
        if self.removed:
            parts.append(f"removed: {', '.join(self.removed)}")
        if self.optimiser_restarted:
            parts.append("optimiser restarted")
        return "; ".join(parts)


def layer_of(key: str) -> str:
    """The layer id in a state-dict key: ``layers.dense1.weight`` -> dense1 (``layers.out.0.weight`` -> out);
    keys outside a ``layers`` dict are grouped by everything before their last part."""
    parts = key.split(".")
    if "layers" in parts[:-1]:
        i = parts.index("layers")
        if i + 1 < len(parts) - 1:
            return parts[i + 1]
    return key.rsplit(".", 1)[0] if "." in key else key


def _kinds(spec) -> dict[str, str] | None:
    return None if spec is None else {lay.id: lay.kind for lay in getattr(spec, "layers", [])}


def _resizable(kind: str | None, old: np.ndarray, new: np.ndarray) -> bool:
    """Whether an array of another shape may keep its overlapping block (see the module docstring)."""
    if old.ndim != new.ndim:
        return False
    if kind in DENSE_LIKE:
        return new.ndim in (1, 2)
    if kind in CONV_LIKE:
        return new.ndim == 1 or (new.ndim == 4 and old.shape[2:] == new.shape[2:])
    if kind in PER_CHANNEL:
        return new.ndim == 1
    return False


def _overlap(old: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    out = np.array(fresh, copy=True)
    block = tuple(slice(0, min(a, b)) for a, b in zip(old.shape, fresh.shape, strict=True))
    out[block] = old[block]
    return out


def _describe(kind: str | None, old_shape: tuple, new_shape: tuple) -> str:
    names = DIM_NAMES.get(kind, ())
    words = []
    for i, (a, b) in enumerate(zip(old_shape[:len(names)], new_shape[:len(names)], strict=True)):
        if a == b:
            continue
        name = names[i]
        if name == "units":
            words.append(f"widened {a} -> {b} (old units kept)" if b > a else f"narrowed {a} -> {b} (first {b} units kept)")
        else:
            words.append(f"{name} {a} -> {b} (old {name} kept)" if b > a else f"{name} {a} -> {b} (first {b} {name} kept)")
    return ", ".join(words) or f"{old_shape} -> {new_shape}"


def transfer(old_state: dict, new_fresh_state: dict, old_spec=None, new_spec=None) -> tuple[dict, TransferReport]:
    """(state, report): ``new_fresh_state`` (the new model's freshly initialised arrays) with every
    trained array of ``old_state`` that fits, by the rules of the module docstring.

    The specs name each layer's kind (which shapes may be resized); without them only arrays of
    an identical shape are kept. A layer whose kind changed under the same id starts fresh."""
    old_kinds, new_kinds = _kinds(old_spec), _kinds(new_spec)
    old_layers = {layer_of(k) for k in old_state}
    state: dict[str, np.ndarray] = {}
    per_layer: dict[str, dict[str, list]] = {}  # layer -> {"kept"/"overlap"/"fresh": [(key, old shape, new shape)]}
    for key, fresh in new_fresh_state.items():
        fresh = np.asarray(fresh)
        lid = layer_of(key)
        kind = new_kinds.get(lid) if new_kinds is not None else None
        same_kind = old_kinds is None or new_kinds is None or old_kinds.get(lid) == kind
        old = np.asarray(old_state[key]) if key in old_state else None
        how = "fresh"
        if old is not None and same_kind:
            if old.shape == fresh.shape:
                state[key], how = old.astype(fresh.dtype, copy=True), "kept"
            elif _resizable(kind, old, fresh):
                state[key], how = _overlap(old.astype(fresh.dtype), fresh), "overlap"
        if how == "fresh":
            state[key] = np.array(fresh, copy=True)
        shapes = (key, old.shape if old is not None else None, fresh.shape)
        per_layer.setdefault(lid, {"kept": [], "overlap": [], "fresh": []})[how].append(shapes)

    report = TransferReport(removed=sorted(old_layers - set(per_layer)))
    for lid, got in per_layer.items():
        if not got["overlap"] and not got["fresh"]:
            report.layers.append(LayerOutcome(lid, "kept"))
        elif not got["overlap"] and not got["kept"]:
            report.layers.append(LayerOutcome(lid, "fresh" if lid in old_layers else "new"))
        else:
            kind = new_kinds.get(lid) if new_kinds is not None else None
            fresh_names = ", ".join(k.rsplit(".", 1)[-1] for k, _o, _n in got["fresh"])
            if got["overlap"]:
                _key, old_shape, new_shape = max(got["overlap"], key=lambda s: len(s[2]))  # the weight, not the bias
                detail = _describe(kind, old_shape, new_shape) + (f" ({fresh_names} fresh)" if fresh_names else "")
            else:
                detail = f"kept in part ({fresh_names} fresh)"
            report.layers.append(LayerOutcome(lid, "partly", detail))
    return state, report
