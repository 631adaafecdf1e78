"""The comparison a design carries (issue 12, "Compare runs"): which settings vary, and their values.

Plain data only, importing nothing of the engine, so engine.spec can read and write it. What a
sweep means - the variant designs, their labels, which of them train batched - lives in
engine.variants, which also checks a sweep against its design (a layer may have been deleted
since the sweep was saved: the design still opens, the comparison shows the problem).

On disk, inside the design (format version 3)::

    "compare": {"axes": [{"setting": "training.lr", "values": [0.01, 0.1, 1.0]},
                         {"setting": "layer.dense1.units", "values": [2, 8]}]}

A ``setting`` is a path: ``training.<field>`` (a engine.spec.TrainingSpec field such as lr,
optimizer, batch_size, seed), ``layer.<id>.<param>`` (a parameter of that layer: units,
function, rate, init, kernel, filters ...) or ``layer.<id>.present`` with values true/false
(the design with and without that layer).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MAX_AXES = 2  # a comparison is a grid: rows x columns
MAX_VALUES = 16  # per axis; the product is capped in engine.variants (MAX_VARIANTS)
PRESENT = "present"  # layer.<id>.present: the layer kept (true) or removed (false)


@dataclass
class Axis:
    """One setting to vary and the values it takes (in the order the user gave them)."""

    setting: str
    values: list[Any] = field(default_factory=list)


@dataclass
class Sweep:
    """One or two axes; their product is the set of variants."""

    axes: list[Axis] = field(default_factory=list)


def to_dict(s: Sweep) -> dict:
    return {"axes": [{"setting": a.setting, "values": list(a.values)} for a in s.axes]}


def _plain(v: Any) -> bool:
    if isinstance(v, (bool, str)):
        return len(v) <= 200 if isinstance(v, str) else True
    if isinstance(v, int):
        return abs(v) <= 2**53
    return isinstance(v, float) and math.isfinite(v)


def from_dict(raw: Any) -> tuple[Sweep | None, list[tuple[str, str]]]:
    """(sweep, [(where, message)]); hostile input gets messages, never exceptions.

    Only the shape is checked here; whether the settings exist in the design is
    engine.variants.check_sweep's job.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("axes"), list):
        return None, [("compare", 'must be an object such as {"axes": [{"setting": "training.lr", "values": [0.01, 0.1]}]}')]
    axes = raw["axes"]
    bad: list[tuple[str, str]] = []
    if len(axes) > MAX_AXES:
        return None, [("compare.axes", f"has {len(axes)} settings but a comparison varies at most {MAX_AXES} - remove one")]
    sweep = Sweep()
    for i, a in enumerate(axes):
        where = f"compare.axes[{i}]"
        if not isinstance(a, dict) or not isinstance(a.get("setting"), str) or not isinstance(a.get("values"), list):
            bad.append((where, 'must be {"setting": "training.lr" or "layer.<id>.<param>", "values": [...]}'))
            continue
        setting, values = a["setting"], a["values"]
        parts = setting.split(".")
        if len(setting) > 200 or not (len(parts) == 2 and parts[0] == "training" or len(parts) == 3 and parts[0] == "layer"):
            bad.append((f"{where}.setting", f"{setting[:40]!r} must read training.<setting> or layer.<layer id>.<param>"))
            continue
        if not values or len(values) > MAX_VALUES or not all(_plain(v) for v in values):
            bad.append((f"{where}.values", f"must be 1 to {MAX_VALUES} numbers, texts or true/false"))
            continue
        sweep.axes.append(Axis(setting, list(values)))
    return (None if bad else sweep), bad
