"""The open design: its Spec, file path, undo stack and every undoable edit.

Each edit is a QUndoCommand holding a copy of the Spec before and after: designs are
small, so copies are cheap and undo restores the design exactly.
"""
from __future__ import annotations

import os
import re

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine import datasets, validation
from engine import layers as L
from engine import spec as S
from engine.spec import EdgeSpec, LayerSpec, Problem, Spec, SpecError

PASTE_OFFSET = 40.0
STEP_DOWN = 132.0  # one row / column of the canvas layout (widgets.editor.layout spacing)
STEP_ACROSS = 228.0
LAYER_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")  # the rule engine.spec applies when reading files


class SpecCommand(QUndoCommand):
    """Replace the document's Spec with ``after``; undo puts ``before`` back."""

    def __init__(self, doc: Document, before: Spec, after: Spec, text: str, merge_key: tuple | None = None):
        super().__init__(text)
        self.doc = doc
        self.before = before
        self.after = after
        self.merge_key = merge_key

    def id(self) -> int:
        # one id for every mergeable command; mergeWith compares the exact key
        return 1 if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SpecCommand) or other.merge_key != self.merge_key:
            return False
        self.after = other.after
        self.setText(other.text())
        if self.after.to_dict() == self.before.to_dict():
            self.setObsolete(True)  # typed back to the old value: nothing to undo
        return True

    def redo(self) -> None:
        self.doc._set_spec(self.after)

    def undo(self) -> None:
        self.doc._set_spec(self.before)


class Document(QObject):
    """The design being edited. Views listen to ``spec_changed``; edits go through the methods."""

    spec_changed = Signal()
    path_changed = Signal(str)  # "" while untitled
    modified_changed = Signal(bool)

    def __init__(self, spec: Spec | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.spec = spec.copy() if spec is not None else Spec()
        self.path: str | None = None
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_undo_stack_clean_changed)

    # ---- state -----------------------------------------------------------------------
    def is_modified(self) -> bool:
        return not self.undo_stack.isClean()

    def display_name(self) -> str:
        return self.spec.name or (os.path.splitext(os.path.basename(self.path))[0] if self.path else "untitled")

    def _set_spec(self, spec: Spec) -> None:
        self.spec = spec.copy()  # the command keeps its own copy untouched
        self.spec_changed.emit()

    def _on_undo_stack_clean_changed(self, clean: bool) -> None:
        self.modified_changed.emit(not clean)

    def reset(self, spec: Spec, path: str | None = None) -> None:
        """Replace the whole design (New, Open): history cleared, not modified."""
        was_modified = self.is_modified()
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.spec = spec.copy()
        self.path = os.path.abspath(path) if path else None
        self.path_changed.emit(self.path or "")
        self.spec_changed.emit()
        if was_modified:
            self.modified_changed.emit(False)

    def save(self, path: str | None = None) -> None:
        """Write atomically to ``path`` (default: the current file); raises OSError."""
        target = path or self.path
        if not target:
            raise ValueError("no file name - use Save As")
        S.save(self.spec, target)
        self.undo_stack.setClean()
        if self.path != os.path.abspath(target):
            self.path = os.path.abspath(target)
            self.path_changed.emit(self.path)

    # ---- the one way to change the design ------------------------------------------
    def apply(self, after: Spec, text: str, merge_key: tuple | None = None) -> bool:
        """Push an undoable edit replacing the Spec with ``after``; False if nothing changed."""
        if after.to_dict() == self.spec.to_dict():
            return False
        self.undo_stack.push(SpecCommand(self, self.spec.copy(), after.copy(), text, merge_key))
        return True

    # ---- layers ----------------------------------------------------------------------
    def add_layer(self, kind: str, params: dict | None = None, pos: tuple[float, float] = (0.0, 0.0)) -> str:
        """Add an unconnected layer; returns its new id."""
        after = self.spec.copy()
        lid = after.new_id(kind)
        after.layers.append(LayerSpec(lid, kind, dict(params or {}), (float(pos[0]), float(pos[1]))))
        self.apply(after, f"Add {kind}")
        return lid

    def insert_after(self, selected: str | None, kind: str, params: dict | None = None,
                     fallback_pos: tuple[float, float] = (0.0, 0.0)) -> str:
        """Add a layer wired after ``selected``, between it and its old successors.

        Selecting the Output inserts before it instead, which is what adding a layer to a
        finished network means. Downstream layers shift one step to make room.
        """
        after = self.spec.copy()
        lid = after.new_id(kind)
        sel = after.layer(selected) if selected else None
        takes_input = L.REGISTRY.get(kind) is None or L.REGISTRY[kind].max_inputs > 0
        if sel is None or not takes_input:
            after.layers.append(LayerSpec(lid, kind, dict(params or {}), fallback_pos))
            self.apply(after, f"Add {kind}")
            return lid
        dx, dy = _flow_step(after)
        if sel.kind == "Output" and kind != "Output" and not after.inputs_of(sel.id):
            # an unconnected Output: the new layer goes above it, feeding it
            after.layers.append(LayerSpec(lid, kind, dict(params or {}), (sel.pos[0] - dx, sel.pos[1] - dy)))
            after.edges.append(EdgeSpec(lid, sel.id))
            self.apply(after, f"Insert {kind} before {sel.id}")
            return lid
        if sel.kind == "Output" and kind != "Output":
            pred, succs = after.inputs_of(sel.id)[0], [sel.id]
        else:
            pred, succs = sel.id, after.outputs_of(sel.id)
        src = after.layer(pred)
        after.layers.append(LayerSpec(lid, kind, dict(params or {}), (src.pos[0] + dx, src.pos[1] + dy)))
        if succs:
            for lay_id in _descendants(after, succs):
                lay = after.layer(lay_id)
                lay.pos = (lay.pos[0] + dx, lay.pos[1] + dy)
        after.edges = [e for e in after.edges if not (e.src == pred and e.dst in succs)]
        after.edges.append(EdgeSpec(pred, lid))
        after.edges.extend(EdgeSpec(lid, s) for s in succs)
        self.apply(after, f"Insert {kind} after {pred}")
        return lid

    def delete_layers(self, ids: list[str]) -> None:
        """Delete layers and every edge touching them."""
        gone = set(ids) & {lay.id for lay in self.spec.layers}
        if not gone:
            return
        after = self.spec.copy()
        after.layers = [lay for lay in after.layers if lay.id not in gone]
        after.edges = [e for e in after.edges if e.src not in gone and e.dst not in gone]
        self.apply(after, f"Delete {next(iter(gone))}" if len(gone) == 1 else f"Delete {len(gone)} layers")

    def move_layers(self, positions: dict[str, tuple[float, float]], text: str | None = None) -> None:
        after = self.spec.copy()
        moved = []
        for lid, (x, y) in positions.items():
            lay = after.layer(lid)
            if lay is not None and (round(lay.pos[0], 2), round(lay.pos[1], 2)) != (round(x, 2), round(y, 2)):
                lay.pos = (float(x), float(y))
                moved.append(lid)
        if moved:
            self.apply(after, text or (f"Move {moved[0]}" if len(moved) == 1 else f"Move {len(moved)} layers"))

    def connect(self, src: str, dst: str) -> str | None:
        """Add the edge src -> dst; returns why not (and changes nothing) if it cannot be."""
        why = connection_problem(self.spec, src, dst)
        if why:
            return why
        after = self.spec.copy()
        after.edges.append(EdgeSpec(src, dst))
        self.apply(after, f"Connect {src} -> {dst}")
        return None

    def disconnect(self, pairs: list[tuple[str, str]]) -> None:
        drop = {(s, d) for s, d in pairs}
        after = self.spec.copy()
        after.edges = [e for e in after.edges if (e.src, e.dst) not in drop]
        if len(after.edges) == len(self.spec.edges):
            return
        n = len(self.spec.edges) - len(after.edges)
        s, d = next(iter(drop))
        self.apply(after, f"Disconnect {s} -> {d}" if n == 1 else f"Disconnect {n} edges")

    def set_param(self, lid: str, name: str, value) -> str | None:
        """Set one layer parameter; returns the reason if the value is refused."""
        lay = self.spec.layer(lid)
        kind = L.REGISTRY.get(lay.kind) if lay else None
        if kind is None or name not in kind.param_map:
            return f"{lid} has no parameter '{name}'"
        why = kind.param_map[name].check(value)
        if why:
            return f"{lid}.{name} {why}"
        after = self.spec.copy()
        after.layer(lid).params[name] = value
        self.apply(after, f"Set {lid} {name} to {_fmt(value)}", ("param", lid, name))
        return None

    def rename_layer(self, old: str, new: str) -> str | None:
        """Change a layer id (and its edges); returns why not if the id is invalid or taken."""
        if new == old:
            return None
        if self.spec.layer(old) is None:
            return f"there is no layer '{old}' any more"
        if not LAYER_ID_RE.match(new):
            return f"'{new}' is not a valid id - use letters, digits and _, not starting with a digit"
        if self.spec.layer(new) is not None:
            return f"'{new}' is already used by another layer"
        after = self.spec.copy()
        after.layer(old).id = new
        for e in after.edges:
            e.src = new if e.src == old else e.src
            e.dst = new if e.dst == old else e.dst
        self.apply(after, f"Rename {old} to {new}")
        return None

    # ---- design-wide settings ------------------------------------------------------
    def set_dataset(self, kind: str, params: dict) -> None:
        after = self.spec.copy()
        old = self.spec.dataset
        after.dataset = S.DatasetSpec(kind, dict(params))
        if kind != old.kind:
            self.apply(after, f"Set dataset to {kind}")
            return
        changed = [k for k in set(params) | set(old.params) if params.get(k) != old.params.get(k)]
        if len(changed) == 1:
            k = changed[0]
            self.apply(after, f"Set dataset {k} to {_fmt(params.get(k))}", ("dataset", kind, k))
        else:
            self.apply(after, f"Set {kind} settings")

    def set_training(self, field: str, value) -> None:
        if not hasattr(self.spec.training, field):
            raise AttributeError(f"training has no setting {field!r}")
        after = self.spec.copy()
        setattr(after.training, field, value)
        self.apply(after, f"Set {field.replace('_', ' ')} to {_fmt(value)}", ("training", field))

    def set_name(self, name: str) -> None:
        after = self.spec.copy()
        after.name = name.strip()[:200] or "untitled"
        self.apply(after, f"Rename design to {after.name}", ("name",))

    # ---- clipboard -------------------------------------------------------------------
    def paste(self, payload: dict, offset: float = PASTE_OFFSET) -> list[str]:
        """Add copied layers (from ``copy_payload``) with fresh ids, shifted by ``offset``."""
        after = self.spec.copy()
        mapping: dict[str, str] = {}
        for raw in payload.get("layers", []):
            nid = after.new_id(raw["kind"])
            mapping[raw["id"]] = nid
            x, y = raw.get("pos", (0.0, 0.0))
            after.layers.append(LayerSpec(nid, raw["kind"], dict(raw.get("params", {})), (x + offset, y + offset)))
        for src, dst in payload.get("edges", []):
            if src in mapping and dst in mapping:
                after.edges.append(EdgeSpec(mapping[src], mapping[dst]))
        if mapping:
            n = len(mapping)
            self.apply(after, f"Paste {next(iter(mapping.values()))}" if n == 1 else f"Paste {n} layers")
        return list(mapping.values())


# ---- helpers (no Qt) ---------------------------------------------------------------------

def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _flow_step(spec: Spec) -> tuple[float, float]:
    """One step along the direction the design already flows (down by default)."""
    dx = dy = 0.0
    for e in spec.edges:
        a, b = spec.layer(e.src), spec.layer(e.dst)
        if a and b:
            dx += abs(b.pos[0] - a.pos[0])
            dy += abs(b.pos[1] - a.pos[1])
    return (STEP_ACROSS, 0.0) if dx > dy else (0.0, STEP_DOWN)


def _descendants(spec: Spec, roots: list[str]) -> list[str]:
    out, stack = [], list(roots)
    while stack:
        n = stack.pop()
        if n not in out:
            out.append(n)
            stack.extend(spec.outputs_of(n))
    return out


def connection_problem(spec: Spec, src: str, dst: str) -> str | None:
    """Why an edge src -> dst cannot be made, or None if it can."""
    a, b = spec.layer(src), spec.layer(dst)
    if a is None or b is None:
        return f"cannot connect {src} -> {dst}: no such layer"
    if any(e.src == src and e.dst == dst for e in spec.edges):
        return f"{src} is already connected to {dst}"
    if L.would_cycle(spec, src, dst):
        return f"connecting {src} -> {dst} would make a loop - networks here flow one way"
    kind = L.REGISTRY.get(b.kind)
    if kind is not None and len(spec.inputs_of(dst)) >= kind.max_inputs:
        if kind.max_inputs == 0:
            return f"{b.kind} {dst} cannot take inputs"
        return f"{b.kind} {dst} already has its input - join branches with Add or Concat"
    return None


def copy_payload(spec: Spec, ids: list[str]) -> dict:
    """The selected layers and the edges among them, as plain data for the clipboard."""
    chosen = [lay for lay in spec.layers if lay.id in set(ids)]
    keep = {lay.id for lay in chosen}
    return {
        "format": "neural-playground-layers",
        "layers": [{"id": lay.id, "kind": lay.kind, "params": dict(lay.params), "pos": list(lay.pos)} for lay in chosen],
        "edges": [[e.src, e.dst] for e in spec.edges if e.src in keep and e.dst in keep],
    }


def parse_payload(data) -> dict | None:
    """A clipboard payload checked the way a design file is (it may come from anywhere)."""
    if not isinstance(data, dict) or data.get("format") != "neural-playground-layers":
        return None
    layers = data.get("layers")
    edges = data.get("edges", [])
    if not isinstance(layers, list) or not isinstance(edges, list) or len(layers) > 500:
        return None
    probe = {"format": S.FORMAT_NAME, "version": S.FORMAT_VERSION, "layers": layers,
             "edges": [{"from": e[0], "to": e[1]} for e in edges if isinstance(e, list) and len(e) == 2]}
    try:
        spec = S.spec_from_dict(probe)
    except SpecError:
        return None
    if value_problems(spec):
        return None
    return copy_payload(spec, [lay.id for lay in spec.layers])


def value_problems(spec: Spec) -> list[Problem]:
    """Values no editor could produce: unknown kinds or params, out-of-range numbers, bad
    training settings or dataset params, duplicate ids, edges to missing layers.

    A file with these is refused; graph and shape problems (a half-built design) are not.
    """
    out: list[Problem] = []
    ids: set[str] = set()
    for lay in spec.layers:
        if lay.id in ids:
            out.append(Problem(lay.id, "two layers share this id - rename one"))
        ids.add(lay.id)
        kind = L.REGISTRY.get(lay.kind)
        if kind is None:
            out.append(Problem(f"{lay.id}.kind", f"unknown layer kind {lay.kind!r} - one of {', '.join(L.REGISTRY)}"))
            continue
        for name, value in lay.params.items():
            par = kind.param_map.get(name)
            if par is None:
                out.append(Problem(f"{lay.id}.{name}", f"{lay.kind} has no parameter '{name}'"))
            elif (why := par.check(value)) is not None:
                out.append(Problem(f"{lay.id}.{name}", why))
        if not all(abs(c) < 1e7 for c in lay.pos):
            out.append(Problem(f"{lay.id}.pos", "position is too far away (over 10 million pixels)"))
    for e in spec.edges:
        for end in (e.src, e.dst):
            if end not in ids:
                out.append(Problem(f"edge {e.src}->{e.dst}", f"refers to a missing layer '{end}'"))
    # training ranges; Nesterov-without-SGD and BCE-with-many-classes are consistency
    # problems a user can make in the GUI, so they are shown, not refused
    out += [p for p in validation.validate(spec, _NO_DATA) if p.where.startswith("training.")
            and p.where not in ("training.nesterov", "training.loss")]
    if not datasets.is_image_kind(spec.dataset.kind):
        try:
            datasets.resolve_params(spec.dataset)
        except ValueError as exc:
            where, _, msg = str(exc).partition(": ")
            out.append(Problem(where, msg) if msg and where.startswith("dataset") else Problem("dataset", str(exc)))
    return out


class _NoData:
    """Stand-in DataInfo so validate() checks settings without reading the dataset."""

    input_shape = (2,)
    n_classes = 2


_NO_DATA = _NoData()


def read_design(path: str) -> Spec:
    """Load a design file for editing; SpecError lists every reason it cannot be opened."""
    spec = S.load(path)
    problems = value_problems(spec)
    if problems:
        raise SpecError(problems)
    return spec
