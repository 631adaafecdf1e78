"""The network design as plain data and its versioned JSON form.

Nothing here imports torch, Qt or any other engine module: the GUI reads designs before torch
has loaded, and every other engine module builds on this one. Checking a design against the
layer registry and the dataset lives in engine.validation.
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
import reprlib
import tempfile
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from engine.generative_spec import GenerativeSpec
from engine.generative_spec import from_dict as _generative_from_dict
from engine.generative_spec import to_dict as _generative_to_dict
from engine.sweep_spec import Sweep
from engine.sweep_spec import from_dict as _sweep_from_dict
from engine.sweep_spec import to_dict as _sweep_to_dict

FORMAT_NAME = "neural-playground-design"
FORMAT_VERSION = 3  # 2: optional "generative" part (autoencoder, VAE, GAN); designs without it are still written as 1
# 3: optional "compare" part (engine.sweep_spec); designs without it are written as 2 or 1, as before

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
LOSSES = ("cross_entropy", "bce", "mse", "mae", "huber")
SCHEDULES = ("none", "step", "exponential", "cosine")
DEVICES = ("auto", "cpu", "cuda", "mps")
_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class SpecError(ValueError):
    """A design that cannot be read or used; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem] | list[str]):
        self.problems = [p if isinstance(p, Problem) else Problem("design", str(p)) for p in problems]
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a design: where (a layer id or a field path) and what to do."""

    where: str
    message: str
    severity: str = "error"  # "error" blocks training; "warning" is only shown

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class LayerSpec:
    id: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    pos: tuple[float, float] = (0.0, 0.0)


@dataclass
class EdgeSpec:
    src: str
    dst: str


@dataclass
class DatasetSpec:
    kind: str = "xor"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingSpec:
    optimizer: str = "adam"
    lr: float = 0.01
    momentum: float = 0.9  # SGD and RMSprop
    nesterov: bool = False  # SGD
    weight_decay: float = 0.0  # the optimiser's own decay (decoupled for AdamW)
    batch_size: int = 32
    epochs: int = 100
    loss: str = "cross_entropy"
    l1: float = 0.0
    l2: float = 0.0
    lr_schedule: str = "none"
    step_size: int = 30  # epochs between decays for the "step" schedule
    gamma: float = 0.5  # decay factor for "step" and "exponential"
    grad_clip: float = 0.0  # max global grad norm; 0 disables
    seed: int = 0
    device: str = "auto"


@dataclass
class Spec:
    """A whole design: the single source of truth the GUI edits and the engine trains."""

    name: str = "untitled"
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    layers: list[LayerSpec] = field(default_factory=list)
    edges: list[EdgeSpec] = field(default_factory=list)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    notes: str = ""
    generative: GenerativeSpec | None = None  # None: a classifier (engine.generative_spec)
    compare: Sweep | None = None  # the saved comparison (engine.sweep_spec, engine.variants); None: none

    # ---- convenience -------------------------------------------------------------
    def layer(self, layer_id: str) -> LayerSpec | None:
        return next((lay for lay in self.layers if lay.id == layer_id), None)

    def inputs_of(self, layer_id: str) -> list[str]:
        return [e.src for e in self.edges if e.dst == layer_id]

    def outputs_of(self, layer_id: str) -> list[str]:
        return [e.dst for e in self.edges if e.src == layer_id]

    def new_id(self, kind: str) -> str:
        """A fresh id such as ``dense3`` that no layer uses yet."""
        base = re.sub(r"[^a-z0-9]", "", kind.lower()) or "layer"
        used = {lay.id for lay in self.layers}
        i = 1
        while f"{base}{i}" in used:
            i += 1
        return f"{base}{i}"

    def copy(self) -> Spec:
        return copy.deepcopy(self)

    def to_dict(self) -> dict:
        return spec_to_dict(self)

    def to_json(self) -> str:
        return dumps(self)


# ---- JSON ----------------------------------------------------------------------------

def spec_to_dict(spec: Spec) -> dict:
    """Plain dict in the on-disk layout (stable key order)."""
    out = {
        "format": FORMAT_NAME,
        # the lowest version that holds the design, so older apps still open designs without the newer parts
        "version": 3 if spec.compare is not None else 2 if spec.generative is not None else 1,
        "name": spec.name,
        "notes": spec.notes,
        "dataset": {"kind": spec.dataset.kind, "params": dict(sorted(spec.dataset.params.items()))},
        "layers": [
            {"id": lay.id, "kind": lay.kind, "params": dict(sorted(lay.params.items())),
             "pos": [round(float(lay.pos[0]), 2), round(float(lay.pos[1]), 2)]}
            for lay in spec.layers
        ],
        "edges": [{"from": e.src, "to": e.dst} for e in spec.edges],
        "training": _typed(asdict(spec.training)),
    }
    if spec.generative is not None:
        out["generative"] = _generative_to_dict(spec.generative)
    if spec.compare is not None:
        out["compare"] = _sweep_to_dict(spec.compare)
    return out


def _typed(training: dict) -> dict:
    """Training values in their declared types, so lr=1 is written 1.0 and reads back the same."""
    defaults = asdict(TrainingSpec())
    return {k: float(v) if isinstance(defaults[k], float) and isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in training.items()}


def dumps(spec: Spec) -> str:
    return json.dumps(spec_to_dict(spec), indent=2, sort_keys=False, allow_nan=False) + "\n"


def _expect(cond: bool, problems: list[Problem], where: str, msg: str) -> bool:
    if not cond:
        problems.append(Problem(where, msg))
    return cond


_MAX_INT = 2**53  # beyond this a JSON integer is no longer exact as a float; no setting needs more
_TYPE_WORDS = {float: "number", int: "whole number", bool: "true or false", str: "text"}
_REPR = reprlib.Repr()  # short and never deep, so a hostile value cannot flood or recurse
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong, _REPR.maxlist, _REPR.maxdict = 2, 40, 40, 40, 4, 4
_brief = _REPR.repr


def _key(k: Any) -> str:
    """A JSON key for a message, cut short so a hostile file cannot flood the error text."""
    k = str(k)
    return k if len(k) <= 40 else k[:37] + "..."


def _is_number(v: Any) -> bool:
    """A finite int or float (not a bool) of a size a design can use."""
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return -_MAX_INT <= v <= _MAX_INT
    return isinstance(v, float) and math.isfinite(v)


def _is_plain_value(v: Any) -> bool:
    return isinstance(v, (bool, str)) or v is None or _is_number(v)


def spec_from_dict(data: Any) -> Spec:
    """Read a design dict, raising SpecError listing every structural problem.

    Hostile input is expected: anything that is not the documented shape is refused
    with a message, never passed on.
    """
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise SpecError([Problem("file", "the top level must be a JSON object {...}")])
    fmt = data.get("format")
    if fmt != FORMAT_NAME:
        problems.append(Problem("format", f'expected "{FORMAT_NAME}", got {_brief(fmt)} - is this a Neural Playground design?'))
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(Problem("version", f"must be a positive whole number like {FORMAT_VERSION}, got {_brief(version)}"))
    elif version > FORMAT_VERSION:
        shown = version if version < _MAX_INT else "from the future"
        problems.append(Problem("version", f"file version {shown} is newer than this app reads ({FORMAT_VERSION}); "
                                           "update Neural Playground"))
    if problems:
        raise SpecError(problems)
    data = _migrate(data, version)

    spec = Spec()
    name = data.get("name", "untitled")
    if _expect(isinstance(name, str), problems, "name", "must be text"):
        spec.name = name[:200]
    notes = data.get("notes", "")
    if _expect(isinstance(notes, str), problems, "notes", "must be text"):
        spec.notes = notes

    ds = data.get("dataset", {})
    if _expect(isinstance(ds, dict), problems, "dataset", "must be an object with kind and params"):
        kind = ds.get("kind", "xor")
        params = ds.get("params", {})
        if _expect(isinstance(kind, str), problems, "dataset.kind", "must be text such as \"xor\""):
            spec.dataset.kind = kind
        if _expect(isinstance(params, dict), problems, "dataset.params", "must be an object"):
            for k, v in params.items():
                if _expect(_is_plain_value(v), problems, f"dataset.params.{_key(k)}",
                           f"must be a finite number, text or true/false, got {_brief(v)}"):
                    spec.dataset.params[str(k)] = v

    layers = data.get("layers", [])
    if _expect(isinstance(layers, list), problems, "layers", "must be a list"):
        if len(layers) > 500:
            problems.append(Problem("layers", f"{len(layers)} layers is more than the 500 this app handles"))
            layers = []
        for i, raw in enumerate(layers):
            where = f"layers[{i}]"
            if not _expect(isinstance(raw, dict), problems, where, "must be an object with id, kind, params"):
                continue
            lid, kind = raw.get("id"), raw.get("kind")
            if not _expect(isinstance(lid, str) and bool(_ID_RE.match(lid)), problems, where,
                           f"id {_brief(lid)} must be a name like dense1 (letters, digits, _; not starting with a digit)"):
                continue
            if not _expect(isinstance(kind, str), problems, lid, f"kind must be text such as \"Dense\", got {_brief(kind)}"):
                continue
            params = raw.get("params", {})
            clean: dict[str, Any] = {}
            if _expect(isinstance(params, dict), problems, f"{lid}.params", "must be an object"):
                for k, v in params.items():
                    if _expect(_is_plain_value(v), problems, f"{lid}.{_key(k)}",
                               f"must be a finite number, text or true/false, got {_brief(v)}"):
                        clean[str(k)] = v
            pos = raw.get("pos", [0, 0])
            if not (isinstance(pos, (list, tuple)) and len(pos) == 2 and all(_is_number(p) for p in pos)):
                problems.append(Problem(f"{lid}.pos", f"must be [x, y] numbers, got {_brief(pos)}"))
                pos = [0, 0]
            spec.layers.append(LayerSpec(lid, kind, clean, (float(pos[0]), float(pos[1]))))

    edges = data.get("edges", [])
    if _expect(isinstance(edges, list), problems, "edges", "must be a list"):
        if len(edges) > 5000:
            problems.append(Problem("edges", f"{len(edges)} edges is more than the 5000 this app handles"))
            edges = []
        for i, raw in enumerate(edges):
            if (isinstance(raw, dict) and isinstance(raw.get("from"), str) and isinstance(raw.get("to"), str)):
                spec.edges.append(EdgeSpec(raw["from"], raw["to"]))
            else:
                problems.append(Problem(f"edges[{i}]", f'must be {{"from": layer id, "to": layer id}}, got {_brief(raw)}'))

    tr = data.get("training", {})
    if _expect(isinstance(tr, dict), problems, "training", "must be an object"):
        kinds = {f.name: type(getattr(spec.training, f.name)) for f in fields(TrainingSpec)}
        for k, v in tr.items():
            want = kinds.get(k)  # the dataclass fields only: never dunders such as __dict__
            if want is None:
                problems.append(Problem(f"training.{_key(k)}", "unknown setting - remove it"))
                continue
            if want is float and _is_number(v):
                v = float(v)
            elif want is int and isinstance(v, float) and math.isfinite(v) and v.is_integer():
                v = int(v)  # 32.0 written by another tool means 32
            if not isinstance(v, want) or isinstance(v, bool) != (want is bool) or (want in (int, float) and not _is_number(v)):
                problems.append(Problem(f"training.{k}", f"must be a finite {_TYPE_WORDS[want]}, got {_brief(v)}"))
                continue
            setattr(spec.training, k, v)
    if "generative" in data:
        spec.generative, bad = _generative_from_dict(data["generative"])
        problems += [Problem(where, msg) for where, msg in bad]
    if "compare" in data:
        spec.compare, bad = _sweep_from_dict(data["compare"])
        problems += [Problem(where, msg) for where, msg in bad]
    if problems:
        raise SpecError(problems)
    return spec


def _migrate(data: dict, version: int) -> dict:
    """Bring an older file up to FORMAT_VERSION: versions 2 and 3 only added the optional "generative"
    and "compare" parts, so an older file reads as it is (a key its version did not know is ignored,
    as it always was)."""
    unknown = {"generative", "compare"} if version == 1 else {"compare"} if version == 2 else set()
    if unknown & set(data):
        data = {k: v for k, v in data.items() if k not in unknown}
    return data


def loads(text: str) -> Spec:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # ValueError covers JSONDecodeError and over-long integers
        raise SpecError([Problem("file", f"not valid JSON ({exc}) - was the file truncated or edited by hand?")]) from None
    return spec_from_dict(data)


MAX_FILE_BYTES = 5_000_000


def load(path: str | os.PathLike) -> Spec:
    """Read a design file; raises SpecError (never anything else for bad content)."""
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise SpecError([Problem("file", f"{size} bytes is too large for a design file "
                                             f"(the limit is {MAX_FILE_BYTES}) - choose a .json design")])
        with open(path, encoding="utf-8-sig") as fh:  # -sig: files saved by Notepad start with a BOM
            text = fh.read()
    except UnicodeDecodeError:
        raise SpecError([Problem("file", "not a text file - choose a .json design")]) from None
    except OSError as exc:
        raise SpecError([Problem("file", f"cannot read {path}: {exc.strerror or exc}")]) from None
    return loads(text)


def save(spec: Spec, path: str | os.PathLike) -> None:
    """Write atomically: a temporary file in the same folder, then rename over the target."""
    write_text_atomic(path, dumps(spec))


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Temporary file in the same folder, fsync, then rename over the target."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".np-", suffix=".tmp", dir=folder)
    try:
        # mkstemp makes the file private (0600); designs and exports are ordinary files, so
        # keep the old file's mode or use the usual rw-r--r--
        os.chmod(tmp, os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
