"""Run files (``.nprun``): a design and its training state in one zip, written and read safely.

Members (all at the top level of the zip; nothing else is accepted):

    manifest.json          {"format": "neural-playground-run", "version": 1, ...}   always
    design.json            the design (engine.spec's versioned JSON)                always
    views.json             the views' options (engine.probes.Prober options)         always
    run.json               counters, optimiser/scheduler structure, history names    with a run
    weights.safetensors    the model's state dict                                    with a run
    optimizer.safetensors  the optimiser state's tensors (named in run.json)         with a run
    state.safetensors      history arrays and random generator states                with a run

No pickle anywhere: arrays are safetensors, everything else JSON. Reading is defensive (issue
15): member names that could escape a folder, archives that unpack to more than ``limit``
bytes (by their headers, and counted again while reading, so a lying header is caught), and
unknown or missing members are refused with a RunFileError naming the member and the fix.

The state is engine.run_state's plain data; this module needs numpy and safetensors, not torch.
"""
from __future__ import annotations

import io
import json
import os
import time
import zipfile
from dataclasses import dataclass, field

import numpy as np

from engine import archive as A
from engine import spec as S

FORMAT_NAME = "neural-playground-run"
FORMAT_VERSION = 1
EXTENSION = ".nprun"
MAX_UNPACKED = 2 * 1024 ** 3  # bytes all members may unpack to together
ALWAYS = ("manifest.json", "design.json", "views.json")
WITH_RUN = ("run.json", "weights.safetensors", "optimizer.safetensors", "state.safetensors")
FOLDER = "the run's folder"


class RunFileError(A.ArchiveError):
    """A run file that cannot be used; the message names the file's problem and what to do."""


@dataclass
class RunFile:
    """What a run file holds: the design (JSON text), the views' options and, when a run was
    saved, its state (engine.run_state.capture's dict: weights, optimizer, scheduler, history,
    epoch, step, epochs, rng)."""

    spec_json: str
    view_options: dict = field(default_factory=dict)
    state: dict | None = None
    manifest: dict = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"]) if self.state else 0


# ---- writing --------------------------------------------------------------------------------

def _safetensors_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in arrays.items()})


def to_bytes(spec_json: str, state: dict | None = None, view_options: dict | None = None) -> bytes:
    """The run file's bytes (see the module docstring)."""
    S.loads(spec_json)  # never write a file that would not open again
    manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "has_run": state is not None}
    members: dict[str, bytes] = {
        "design.json": spec_json.encode("utf-8"),
        "views.json": json.dumps(_json_safe(view_options or {}), indent=1).encode("utf-8"),
    }
    if state is not None:
        manifest.update(epoch=int(state["epoch"]), step=int(state["step"]))
        history = state.get("history") or {}
        rng = state.get("rng") or {}
        run = {"epoch": int(state["epoch"]), "step": int(state["step"]), "epochs": int(state.get("epochs", 0)),
               "optimizer": state["optimizer"]["structure"], "scheduler": state.get("scheduler"),
               "history": sorted(history), "rng": sorted(rng),
               "progress": {k: v for k, v in (state.get("progress") or {}).items() if k != "preds"} or None}
        members["run.json"] = json.dumps(run, indent=1).encode("utf-8")
        members["weights.safetensors"] = _safetensors_bytes(state["weights"])
        members["optimizer.safetensors"] = _safetensors_bytes(state["optimizer"]["tensors"])
        arrays = {f"history.{k}": np.asarray(v, dtype=np.float64) for k, v in history.items()}
        arrays.update({f"rng.{k}": np.asarray(v) for k, v in rng.items()})
        if state.get("progress"):
            arrays["progress.preds"] = np.asarray(state["progress"]["preds"])
        members["state.safetensors"] = _safetensors_bytes(arrays)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, indent=1))
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def write_run(path: str | os.PathLike, spec_json: str, state: dict | None = None,
              view_options: dict | None = None) -> int:
    """Write the run file atomically (a crash never leaves half a file); returns its size in bytes."""
    data = to_bytes(spec_json, state, view_options)
    S.write_bytes_atomic(path, data)
    return len(data)


def _json_safe(value):
    """View options as JSON: numpy scalars and tuples become plain numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


# ---- reading --------------------------------------------------------------------------------

def check_member_name(name: str) -> None:
    """Refuse a member name that is not a plain relative path inside the run's folder."""
    try:
        A.check_member_name(name, FOLDER)
    except A.ArchiveError as exc:
        raise RunFileError(str(exc)) from None


def _json_member(name: str, data: bytes):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFileError(f"member {name!r} is not valid JSON ({exc}) - the file is damaged; "
                           "open an older copy or the autosave") from None


def _arrays_member(name: str, data: bytes) -> dict[str, np.ndarray]:
    from safetensors.numpy import load

    try:
        return load(data)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise RunFileError(f"member {name!r} is not a valid safetensors file ({exc}) - the file is damaged; "
                           "open an older copy or the autosave") from None


def read_run(path: str | os.PathLike, limit: int = MAX_UNPACKED) -> RunFile:
    """Read a run file; raises RunFileError (never another exception for a bad file)."""
    name = os.path.basename(os.fspath(path))
    try:
        raw = A.read_zip(path, limit, what="run file", extension=EXTENSION, folder=FOLDER,
                         fix="open an older copy or the autosave", check_names=_check_names)
    except A.ArchiveError as exc:
        raise RunFileError(str(exc)) from None
    try:
        return _read(raw)
    except RunFileError as exc:
        raise RunFileError(f"{name}: {exc}") from None


def _check_names(names: list[str]) -> None:
    unknown = [n for n in names if n not in ALWAYS + WITH_RUN]
    if unknown:
        raise RunFileError(f"unknown member {unknown[0]!r} - a run file holds only {', '.join(ALWAYS + WITH_RUN)}; "
                           "it may come from a newer version of Neural Playground (update it) or another program")
    for n in ALWAYS:
        if n not in names:
            raise RunFileError(f"member {n!r} is missing - the file is incomplete; open an older copy or the autosave")


def _read(raw: dict[str, bytes]) -> RunFile:
    manifest = _json_member("manifest.json", raw["manifest.json"])
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise RunFileError(f"member 'manifest.json' does not name the format {FORMAT_NAME!r} - "
                           "this is not a Neural Playground run file")
    version = manifest.get("version")
    if not isinstance(version, int) or version < 1:
        raise RunFileError(f"member 'manifest.json': version must be a whole number like {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise RunFileError(f"file version {version} is newer than this app reads ({FORMAT_VERSION}) - "
                           "update Neural Playground to open it")
    try:
        spec_json = raw["design.json"].decode("utf-8")
        S.loads(spec_json)
    except UnicodeDecodeError:
        raise RunFileError("member 'design.json' is not UTF-8 text - the file is damaged") from None
    except S.SpecError as exc:
        raise RunFileError("member 'design.json' is not a usable design:\n" + str(exc)) from None
    views = _json_member("views.json", raw["views.json"])
    out = RunFile(spec_json, views if isinstance(views, dict) else {}, None, manifest)
    present = [n for n in WITH_RUN if n in raw]
    if not present:
        return out
    missing = [n for n in WITH_RUN if n not in raw]
    if missing:
        raise RunFileError(f"member {missing[0]!r} is missing (the run's other parts are there) - the file is "
                           "incomplete; open an older copy or the autosave, or open the design alone with File > Open")
    run = _json_member("run.json", raw["run.json"])
    if not isinstance(run, dict) or not all(isinstance(run.get(k), int) for k in ("epoch", "step")):
        raise RunFileError("member 'run.json' lacks the epoch and step counters - the file is damaged")
    arrays = _arrays_member("state.safetensors", raw["state.safetensors"])
    history = {k[len("history."):]: v for k, v in arrays.items() if k.startswith("history.")}
    rng = {k[len("rng."):]: v for k, v in arrays.items() if k.startswith("rng.")}
    progress = run.get("progress")
    if progress is not None:
        if not isinstance(progress, dict) or "progress.preds" not in arrays:
            raise RunFileError("member 'run.json': the epoch in progress lacks its predictions - the file is damaged")
        progress = dict(progress, preds=arrays["progress.preds"])
    out.state = {
        "progress": progress,
        "weights": _arrays_member("weights.safetensors", raw["weights.safetensors"]),
        "optimizer": {"structure": run.get("optimizer") or {},
                      "tensors": _arrays_member("optimizer.safetensors", raw["optimizer.safetensors"])},
        "scheduler": run.get("scheduler"),
        "history": history, "rng": rng,
        "epoch": run["epoch"], "step": run["step"], "epochs": int(run.get("epochs", 0)),
    }
    return out
