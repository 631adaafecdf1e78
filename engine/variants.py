"""Compare runs (issue 12), the design side: a sweep over a base design -> the variant designs.

No torch here: the Compare dock can expand, label and check a sweep before torch has loaded.
Training them batched is engine.batched (``BatchedTrainer``).

API for the Compare dock (all plain data)::

    choices = sweepable_settings(spec)            # [{"setting", "label", "type", "choices", "min", "max", "current"}]
    sweep = Sweep([Axis("training.lr", [0.01, 0.1, 1.0]), Axis("layer.dense1.units", [2, 8])])
    problems = check_sweep(spec, sweep)           # [Problem] naming compare.axes[i] and the fix; [] when fine
    variants = expand(spec, sweep)                # raises SweepError (a SpecError) with the same messages
    v = variants[k]: v.index, v.label ("lr=0.1, dense1 units=8"), v.values {setting: value},
                     v.cell (row, column) in the grid, v.spec (a normal design), v.structure_key, v.batch_key
    v.params, v.macs                              # the table's cost columns (trainable parameters, MACs per sample)
    plan = batch_groups(variants)                 # [[variant indices]]: each list trains in one BatchedTrainer
    summarize(history) -> best_val_acc, best_val_loss, best_epoch, epochs    (the table's result columns)
    pareto_front([(cost, val error), ...]) -> [bool]                         (the scatter's front)
    spec.compare = sweep                          # saved with the design (format version 3); settings, not weights

A ``setting`` path is ``training.<field>``, ``layer.<id>.<param>`` or ``layer.<id>.present``
(values true/false: the design with and without that layer; removing it joins its input to its
outputs). Variants run in row-major order of the grid: axis 0 gives the row, axis 1 the column.
At most MAX_VARIANTS variants: a bigger product is refused with a message naming the count.

``structure_key``: variants with equal keys have the same layers, parameter shapes and forward
computation - they differ only in training settings, seed or init. ``batch_key`` adds what one
batched computation must share (batch size, epochs, device): equal batch keys train together.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, fields
from typing import Any

from engine import layers as L
from engine.costs import design_macs
from engine.spec import LOSSES, OPTIMIZERS, SCHEDULES, EdgeSpec, Problem, Spec, SpecError, TrainingSpec
from engine.sweep_spec import MAX_AXES, PRESENT, Axis, Sweep
from engine.validation import errors, validate

__all__ = ["MAX_VARIANTS", "Axis", "Sweep", "SweepError", "Variant", "batch_groups", "check_sweep", "expand",
           "format_value", "pareto_front", "setting_label", "structure_key", "summarize", "sweepable_settings"]

MAX_VARIANTS = 16  # trained at once; more would not fit a grid or the 2-core machine's time
INIT_PARAMS = ("init", "init_value", "bias_init", "bias_value")  # change the starting weights, not the structure
_TRAINING_TYPES = {f.name: type(f.default) for f in fields(TrainingSpec)}
_TRAINING_CHOICES = {"optimizer": OPTIMIZERS, "loss": LOSSES, "lr_schedule": SCHEDULES}
_NOT_SWEPT = ("device",)  # one run, one device


class SweepError(SpecError):
    """A sweep that cannot be expanded; ``problems`` name the axis (compare.axes[i]) and the fix."""


@dataclass
class Variant:
    """One design of the comparison: the base with the axis values applied."""

    index: int
    values: dict[str, Any]  # setting path -> value, in axis order
    label: str  # the values that differ between variants, e.g. "lr=0.1, dense1 units=8"
    cell: tuple[int, int]  # (row, column) in the grid: index of the value on axis 0 and axis 1
    spec: Spec
    structure_key: str
    batch_key: str
    params: int = 0  # trainable parameters (the table's and the scatter's cost axis)
    macs: int = 0  # multiply-accumulates per sample (engine.costs)


# ---- names for people ----------------------------------------------------------------------

def setting_label(setting: str) -> str:
    """Short column name: "lr", "dense1 units", "dropout1" (for a present/removed layer)."""
    parts = setting.split(".")
    if parts[0] == "training":
        return parts[1]
    return parts[1] if parts[-1] == PRESENT else f"{parts[1]} {parts[2]}"


def format_value(setting: str, value: Any) -> str:
    """A value as a label shows it: 0.01, relu, with/without for a layer's presence."""
    if setting.endswith("." + PRESENT) and setting.startswith("layer."):
        return "with" if value else "without"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _label(values: dict[str, Any], differing: list[str]) -> str:
    parts = []
    for s in differing:
        v = values[s]
        if s.startswith("layer.") and s.endswith("." + PRESENT):
            parts.append(f"{format_value(s, v)} {setting_label(s)}")
        else:
            parts.append(f"{setting_label(s)}={format_value(s, v)}")
    return ", ".join(parts) or "base"


# ---- what can be swept -----------------------------------------------------------------------

def sweepable_settings(spec: Spec) -> list[dict[str, Any]]:
    """Every setting the Compare dock can offer, with its type and current value.

    Each item: setting (path), label, type ("float" | "int" | "bool" | "choice"), choices,
    min, max (None when open) and current. Layers come in design order; "present" items only
    for layers that can be removed (one input, not Input/Output).
    """
    out: list[dict[str, Any]] = []
    t = spec.training
    for name, typ in _TRAINING_TYPES.items():
        if name in _NOT_SWEPT:
            continue
        kind = "choice" if name in _TRAINING_CHOICES else {float: "float", int: "int", bool: "bool"}[typ]
        out.append({"setting": f"training.{name}", "label": name, "type": kind,
                    "choices": tuple(_TRAINING_CHOICES.get(name, ())), "min": None, "max": None,
                    "current": getattr(t, name)})
    for lay in spec.layers:
        kind = L.REGISTRY.get(lay.kind)
        if kind is None or lay.kind == "Input":
            continue
        current = kind.resolve(lay.params)
        for p in kind.params:
            path = f"layer.{lay.id}.{p.name}"
            out.append({"setting": path, "label": setting_label(path), "type": p.type, "choices": tuple(p.choices),
                        "min": p.min, "max": p.max, "current": current[p.name]})
        if _removal_problem(spec, lay.id) is None:
            path = f"layer.{lay.id}.{PRESENT}"
            out.append({"setting": path, "label": lay.id, "type": "bool", "choices": (), "min": None, "max": None,
                        "current": True})
    return out


def _removal_problem(spec: Spec, layer_id: str) -> str | None:
    lay = spec.layer(layer_id)
    if lay.kind in ("Input", "Output"):
        return f"the {lay.kind} layer cannot be removed - vary another layer"
    n_in = len(spec.inputs_of(layer_id))
    if n_in != 1:
        return f"{layer_id} has {n_in} inputs - only a layer with one input can be removed (its input takes its place)"
    return None


def _value_problem(spec: Spec, setting: str, value: Any) -> str | None:
    """None if ``value`` can be given to ``setting`` of ``spec``, else what is wrong and what to do."""
    parts = setting.split(".")
    if parts[0] == "training":
        name = parts[1]
        typ = _TRAINING_TYPES.get(name)
        if typ is None or name in _NOT_SWEPT:
            names = ", ".join(n for n in _TRAINING_TYPES if n not in _NOT_SWEPT)
            return f"training.{name[:40]} is not a training setting to vary - use one of {names}"
        if typ is bool:
            ok = isinstance(value, bool)
        elif typ is int:
            ok = not isinstance(value, bool) and (isinstance(value, int) or isinstance(value, float) and value.is_integer())
        elif typ is float:
            ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
        else:
            ok = isinstance(value, str)
        if not ok:
            return f"{value!r:.40} is not a {typ.__name__} for training.{name}"
        if name in _TRAINING_CHOICES and value not in _TRAINING_CHOICES[name]:
            return f"{value!r:.40} is not one of {', '.join(_TRAINING_CHOICES[name])}"
        return None  # ranges (lr > 0, batch size >= 1 ...) are engine.validation's, checked on each variant
    lid, pname = parts[1], parts[2]
    lay = spec.layer(lid)
    if lay is None:
        return f"the design has no layer {lid[:40]} - pick a layer that exists (was it deleted?)"
    if pname == PRESENT:
        if not isinstance(value, bool):
            return f"{value!r:.40} must be true (keep {lid}) or false (remove it)"
        return _removal_problem(spec, lid) if value is False else None
    kind = L.REGISTRY.get(lay.kind)
    par = kind.param_map.get(pname) if kind else None
    if par is None:
        names = ", ".join(kind.param_map) if kind else ""
        return f"{lay.kind} {lid} has no parameter {pname[:40]}" + (f" - use one of {names}" if names else "")
    msg = par.check(value)
    return f"{pname} {msg}" if msg else None


def check_sweep(spec: Spec, sweep: Sweep | None = None, cap: int = MAX_VARIANTS) -> list[Problem]:
    """Every problem with the sweep against ``spec`` (default: spec.compare), each naming its axis.

    More than ``cap`` variants is a problem at "compare" naming the count and the cap."""
    sweep = sweep if sweep is not None else spec.compare
    if sweep is None:
        return []
    probs: list[Problem] = []
    if len(sweep.axes) > MAX_AXES:
        probs.append(Problem("compare.axes", f"{len(sweep.axes)} settings vary but a comparison takes at most {MAX_AXES} "
                                             "- remove one"))
    seen: set[str] = set()
    for i, axis in enumerate(sweep.axes):
        where = f"compare.axes[{i}]"
        if axis.setting in seen:
            probs.append(Problem(where, f"{axis.setting} is varied twice - join its values into one setting"))
        seen.add(axis.setting)
        if not axis.values:
            probs.append(Problem(where, f"{setting_label(axis.setting)} has no values - give at least one"))
        keys = [json.dumps(v) for v in axis.values]
        if len(set(keys)) != len(keys):
            probs.append(Problem(where, f"{setting_label(axis.setting)} lists a value twice - remove the repeat"))
        for v in axis.values:
            if (msg := _value_problem(spec, axis.setting, v)) is not None:
                probs.append(Problem(where, f"{setting_label(axis.setting)}: {msg}"))
                break
    count = math.prod(len(a.values) for a in sweep.axes)
    if count > cap:
        sizes = " x ".join(f"{len(a.values)} {setting_label(a.setting)}" for a in sweep.axes)
        probs.append(Problem("compare", f"{sizes} values = {count} variants, more than the {cap} a comparison trains "
                                        f"at once - remove values until the product is {cap} or less"))
    return probs


# ---- expansion -----------------------------------------------------------------------------

def apply_setting(spec: Spec, setting: str, value: Any) -> None:
    """Set one swept value on ``spec`` in place (values already checked by check_sweep)."""
    parts = setting.split(".")
    if parts[0] == "training":
        typ = _TRAINING_TYPES[parts[1]]
        setattr(spec.training, parts[1], typ(value))
        return
    lid, pname = parts[1], parts[2]
    if pname == PRESENT:
        if not value:
            remove_layer(spec, lid)
        return
    lay = spec.layer(lid)
    if lay is not None:  # a param of a layer another axis removed: nothing to set
        lay.params[pname] = value


def remove_layer(spec: Spec, layer_id: str) -> None:
    """Remove a one-input layer, joining its input to each of its outputs."""
    (src,) = spec.inputs_of(layer_id)
    outs = spec.outputs_of(layer_id)
    spec.edges = [e for e in spec.edges if layer_id not in (e.src, e.dst)]
    have = {(e.src, e.dst) for e in spec.edges}
    spec.edges += [EdgeSpec(src, d) for d in outs if (src, d) not in have]
    spec.layers = [lay for lay in spec.layers if lay.id != layer_id]


def expand(base: Spec, sweep: Sweep | None = None, *, data_info: Any | None = None,
           cap: int = MAX_VARIANTS) -> list[Variant]:
    """The variants of ``sweep`` (default: base.compare) over ``base``, in row-major grid order.

    Raises SweepError naming each problem: a bad axis, more than ``cap`` variants, or a variant
    that is not a valid design (e.g. removing a layer breaks the shapes) - checked against
    ``data_info`` (default: the design's dataset, looked up without loading it).
    """
    sweep = sweep if sweep is not None else (base.compare or Sweep())
    probs = check_sweep(base, sweep, cap)
    if probs:
        raise SweepError(probs)
    differing = [a.setting for a in sweep.axes if len(a.values) > 1]
    out: list[Variant] = []
    for index, combo in enumerate(itertools.product(*[list(enumerate(a.values)) for a in sweep.axes])):
        values = {a.setting: v for a, (_, v) in zip(sweep.axes, combo, strict=True)}
        spec = base.copy()
        spec.compare = None  # a variant is a plain design
        # params first, then removals: a param of a layer that another axis removes is moot
        for s, v in sorted(values.items(), key=lambda sv: sv[0].endswith("." + PRESENT)):
            apply_setting(spec, s, v)
        label = _label(values, differing)
        spec.name = f"{base.name} [{label}]"
        cell = (combo[0][0] if combo else 0, combo[1][0] if len(combo) > 1 else 0)
        out.append(Variant(index, values, label, cell, spec, structure_key(spec), ""))
    for v in out:
        bad = errors(validate(v.spec, data_info))
        if bad:
            probs.append(Problem("compare", f"variant {v.label}: {bad[0]}"))
            continue
        v.batch_key = batch_key(v.spec, v.index)
        if v.spec.generative is None:
            report = L.infer(v.spec, data_info if data_info is not None else _describe(v.spec))
            v.params, v.macs = report.total_params, sum(design_macs(v.spec, report).values())
    if probs:
        raise SweepError(probs)
    return out


def _describe(spec: Spec):
    from engine import datasets  # no torch: the dataset's description only

    return datasets.describe(spec.dataset)


# ---- grouping --------------------------------------------------------------------------------

def structure_key(spec: Spec) -> str:
    """Equal for designs that differ only in training settings (loss aside), seed or init.

    Covers the dataset, the loss (it shapes the Output), the layers with their resolved params
    minus the init ones, and the edges; canvas positions and names do not count.
    """
    lays = []
    for lay in spec.layers:
        kind = L.REGISTRY.get(lay.kind)
        params = kind.resolve(lay.params) if kind else dict(lay.params)
        lays.append([lay.id, lay.kind, {k: v for k, v in sorted(params.items()) if k not in INIT_PARAMS}])
    shape = {"dataset": [spec.dataset.kind, dict(sorted(spec.dataset.params.items()))], "loss": spec.training.loss,
             "layers": lays, "edges": sorted([e.src, e.dst] for e in spec.edges),
             "generative": spec.generative is not None}
    return hashlib.sha1(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]


def batch_key(spec: Spec, index: int = 0) -> str:
    """Equal for designs one batched computation can train: same structure, batch size, epochs, device.

    Generative designs (autoencoders, GANs) have trainers of their own: each is its own group.
    """
    if spec.generative is not None:
        return f"solo-{index}"
    t = spec.training
    return f"{structure_key(spec)}/b{t.batch_size}/e{t.epochs}/{t.device}"


def batch_groups(variants: list[Variant]) -> list[list[int]]:
    """Indices of the variants that train together, groups in order of their first variant."""
    groups: dict[str, list[int]] = {}
    for v in variants:
        groups.setdefault(v.batch_key, []).append(v.index)
    return list(groups.values())


# ---- the table -------------------------------------------------------------------------------

def summarize(history: dict[str, Any]) -> dict[str, float]:
    """The table's numbers from a run's history (engine.protocol.HISTORY_KEYS, lists or arrays):
    best_val_acc, best_val_loss, best_epoch (1-based epoch of the best validation loss), epochs.
    NaN where there is no validation yet."""
    losses = [float(x) for x in history.get("val_loss", [])]
    accs = [float(x) for x in history.get("val_acc", [])]
    finite = [(x, i) for i, x in enumerate(losses) if math.isfinite(x)]
    best_loss, best_i = min(finite) if finite else (math.nan, -1)
    good_accs = [a for a in accs if math.isfinite(a)]
    return {"best_val_loss": best_loss, "best_val_acc": max(good_accs) if good_accs else math.nan,
            "best_epoch": float(best_i + 1) if best_i >= 0 else math.nan, "epochs": float(len(losses))}


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For (cost, error) points: True where no other point is at least as good in both and better
    in one (the front of the error-vs-cost scatter). NaN points are never on it."""
    ok = [all(math.isfinite(v) for v in p) for p in points]
    out = []
    for i, (c, e) in enumerate(points):
        dominated = any(ok[j] and j != i and points[j][0] <= c and points[j][1] <= e and points[j] != (c, e)
                        for j in range(len(points)))
        out.append(ok[i] and not dominated)
    return out
