"""The design format: plain data, versioned JSON, lossless round trip, hostile input, atomic save, validation."""
from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import layers as L
from engine import spec as S
from engine import validation as V
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec, SpecError, TrainingSpec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mlp_spec() -> Spec:
    """Input -> Dense -> Activation -> Output on XOR, with every section filled in."""
    return Spec(
        name="xor mlp",
        dataset=DatasetSpec("xor", {"n_points": 200, "noise": 0.1, "val_fraction": 0.25, "seed": 3}),
        layers=[LayerSpec("input1", "Input", {}, (10.0, 20.0)),
                LayerSpec("dense1", "Dense", {"units": 8}, (120.5, 20.0)),
                LayerSpec("act1", "Activation", {"function": "leaky_relu", "slope": 0.2}, (240.0, 20.25)),
                LayerSpec("output1", "Output", {}, (360.0, 20.0))],
        edges=[EdgeSpec("input1", "dense1"), EdgeSpec("dense1", "act1"), EdgeSpec("act1", "output1")],
        training=TrainingSpec(optimizer="sgd", lr=0.05, momentum=0.5, nesterov=True, batch_size=16, epochs=7,
                              loss="bce", l1=1e-4, l2=1e-3, lr_schedule="step", step_size=3, gamma=0.3,
                              grad_clip=1.5, seed=11, device="auto"),
        notes="two quadrants each",
    )


def problems_at(problems, where: str):
    return [p for p in problems if p.where == where]


# ---- the format -------------------------------------------------------------------------------

def test_json_is_versioned_pretty_and_carries_every_field():
    spec = mlp_spec()
    text = S.dumps(spec)
    data = json.loads(text)
    assert data["format"] == S.FORMAT_NAME and data["version"] == 1  # no generative part: still version 1
    assert list(data) == ["format", "version", "name", "notes", "dataset", "layers", "edges", "training"]
    assert text.startswith('{\n  "format"') and text.endswith("}\n")  # pretty-printed for people and diffs
    assert data["dataset"] == {"kind": "xor", "params": {"n_points": 200, "noise": 0.1, "seed": 3, "val_fraction": 0.25}}
    assert data["layers"][2] == {"id": "act1", "kind": "Activation", "params": {"function": "leaky_relu", "slope": 0.2},
                                 "pos": [240.0, 20.25]}
    assert data["edges"][0] == {"from": "input1", "to": "dense1"}
    assert set(data["training"]) == {f.name for f in fields(TrainingSpec)}
    assert data["training"]["device"] == "auto" and data["training"]["grad_clip"] == 1.5
    assert S.loads(text) == spec


def test_key_order_is_stable_whatever_order_params_were_set_in():
    a, b = mlp_spec(), mlp_spec()
    b.dataset.params = dict(reversed(list(b.dataset.params.items())))
    b.layers[2].params = {"slope": 0.2, "function": "leaky_relu"}
    assert S.dumps(a) == S.dumps(b)


def test_whole_numbers_in_float_settings_read_back_as_the_same_text():
    spec = mlp_spec()
    spec.training.lr = 1  # set from code as an int
    text = S.dumps(spec)
    assert S.dumps(S.loads(text)) == text
    assert isinstance(S.loads(text).training.lr, float)


def test_version_1_opens_newer_version_is_refused_with_a_clear_message():
    data = json.loads(S.dumps(mlp_spec()))
    assert S.spec_from_dict(data) == mlp_spec()
    data["version"] = S.FORMAT_VERSION + 1
    with pytest.raises(SpecError) as exc:
        S.spec_from_dict(data)
    assert "newer" in str(exc.value) and "update" in str(exc.value).lower()
    assert exc.value.problems[0].where == "version"
    for bad in (0, -1, "1", 1.0, None, True):
        data["version"] = bad
        with pytest.raises(SpecError, match="version"):
            S.spec_from_dict(data)
    del data["version"]
    with pytest.raises(SpecError, match="version"):
        S.spec_from_dict(data)


def test_a_file_that_is_not_a_design_says_so():
    with pytest.raises(SpecError, match="Neural Playground design"):
        S.loads('{"format": "something-else", "version": 1}')


# ---- round trip (hypothesis) ------------------------------------------------------------------

_ids = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
_plain = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9),
                   st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
_params = st.dictionaries(st.text(max_size=12), _plain, max_size=5)
_pos = st.tuples(st.integers(-10**7, 10**7), st.integers(-10**7, 10**7)).map(lambda p: (p[0] / 100, p[1] / 100))
_finite = st.floats(-1e6, 1e6, allow_nan=False)


@st.composite
def specs(draw) -> Spec:
    ids = draw(st.lists(_ids, max_size=8, unique=True))
    kinds = st.one_of(st.sampled_from(sorted(L.REGISTRY)), st.text(max_size=10))
    layers = [LayerSpec(i, draw(kinds), draw(_params), draw(_pos)) for i in ids]
    edges = []
    if ids:
        pair = st.tuples(st.sampled_from(ids), st.sampled_from(ids))
        edges = [EdgeSpec(a, b) for a, b in draw(st.lists(pair, max_size=10))]
    training = TrainingSpec(
        optimizer=draw(st.sampled_from(S.OPTIMIZERS + ("lbfgs",))), lr=draw(_finite), momentum=draw(_finite),
        nesterov=draw(st.booleans()), weight_decay=draw(_finite), batch_size=draw(st.integers(-5, 10**6)),
        epochs=draw(st.integers(0, 10**6)), loss=draw(st.sampled_from(S.LOSSES)), l1=draw(_finite), l2=draw(_finite),
        lr_schedule=draw(st.sampled_from(S.SCHEDULES)), step_size=draw(st.integers(0, 1000)), gamma=draw(_finite),
        grad_clip=draw(_finite), seed=draw(st.integers(0, 2**31)), device=draw(st.sampled_from(S.DEVICES)))
    return Spec(name=draw(st.text(max_size=40)), dataset=DatasetSpec(draw(st.text(max_size=10)), draw(_params)),
                layers=layers, edges=edges, training=training, notes=draw(st.text(max_size=60)))


@FAST
@given(specs())
def test_load_save_load_is_lossless_and_the_text_is_stable(spec):
    text = S.dumps(spec)
    loaded = S.loads(text)
    assert loaded == spec
    assert S.dumps(loaded) == text
    assert S.dumps(S.loads(S.dumps(loaded))) == text


def test_save_then_load_from_disk_is_lossless(tmp_path):
    path = tmp_path / "design.json"
    S.save(mlp_spec(), path)
    assert S.load(path) == mlp_spec()
    assert path.read_text(encoding="utf-8") == S.dumps(mlp_spec())
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # saved again by an editor that adds a BOM
    assert S.load(path) == mlp_spec()


# ---- hostile input ------------------------------------------------------------------------------

def _json_values():
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**20), st.floats(),
                        st.text(max_size=30), st.sampled_from(["Input", "Dense", S.FORMAT_NAME, "dense1", "xor"]))
    return st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                        max_leaves=15)


@FAST
@given(_json_values())
def test_any_json_value_is_refused_with_spec_error_only(value):
    try:
        S.spec_from_dict(value)
    except SpecError as exc:
        assert exc.problems and all(p.where and p.message for p in exc.problems)


@FAST
@given(st.one_of(st.text(max_size=200), _json_values().map(json.dumps),
                 st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_any_text_is_read_or_refused_with_spec_error_only(text):
    try:
        S.loads(text)
    except SpecError as exc:
        assert exc.problems


_PATHS = [("format",), ("version",), ("name",), ("notes",), ("dataset",), ("dataset", "kind"), ("dataset", "params"),
          ("dataset", "params", "noise"), ("layers",), ("layers", 1), ("layers", 1, "id"), ("layers", 1, "kind"),
          ("layers", 1, "params"), ("layers", 1, "params", "units"), ("layers", 1, "pos"), ("layers", 1, "pos", 0),
          ("edges",), ("edges", 0), ("edges", 0, "from"), ("training",)] + [("training", f.name) for f in fields(TrainingSpec)]


@FAST
@given(st.data())
def test_a_valid_design_with_random_parts_replaced_raises_spec_error_or_loads_and_validates(data):
    doc = json.loads(S.dumps(mlp_spec()))
    for path in data.draw(st.lists(st.sampled_from(_PATHS), min_size=1, max_size=4)):
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            if data.draw(st.booleans()) and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = data.draw(_json_values())
        except (KeyError, IndexError, TypeError):
            pass  # an earlier replacement removed the parent
    try:
        spec = S.spec_from_dict(doc)
    except SpecError as exc:
        assert exc.problems
        return
    # whatever loads must validate (problems, not exceptions) and save again
    assert all(isinstance(p, S.Problem) for p in V.validate(spec))
    assert S.loads(S.dumps(spec)) == spec


def test_deeply_nested_json_is_refused(tmp_path):
    with pytest.raises(SpecError, match="JSON"):
        S.loads("[" * 200_000 + "]" * 200_000)
    doc = json.loads(S.dumps(mlp_spec()))
    deep: list = []
    for _ in range(500):
        deep = [deep]
    doc["layers"][1]["params"]["units"] = deep
    with pytest.raises(SpecError) as exc:
        S.spec_from_dict(doc)
    assert exc.value.problems[0].where == "dense1.units" and len(str(exc.value)) < 300


@pytest.mark.parametrize("literal, where", [
    ('"lr": NaN', "training.lr"), ('"lr": Infinity', "training.lr"), ('"lr": -Infinity', "training.lr"),
    ('"lr": 1e999', "training.lr"), ('"lr": ' + "9" * 400, "training.lr"), ('"epochs": ' + "9" * 30, "training.epochs"),
])
def test_nan_infinity_and_huge_numbers_in_settings_are_refused(literal, where):
    key = literal.split(":")[0]
    text = S.dumps(mlp_spec()).replace({'"lr"': '"lr": 0.05', '"epochs"': '"epochs": 7'}[key], literal)
    with pytest.raises(SpecError) as exc:
        S.loads(text)
    assert [p.where for p in exc.value.problems] == [where]


def test_nan_and_huge_numbers_in_params_and_positions_are_refused():
    text = S.dumps(mlp_spec())
    for old, new, where in [('"units": 8', '"units": NaN', "dense1.units"),
                            ('"units": 8', '"units": ' + "1" * 100, "dense1.units"),
                            ('"seed": 3', '"seed": -Infinity', "dataset.params.seed"),
                            ("240.0", "Infinity", "act1.pos"), ("240.0", "1" * 400, "act1.pos")]:
        with pytest.raises(SpecError) as exc:
            S.loads(text.replace(old, new, 1))
        assert [p.where for p in exc.value.problems] == [where], new
    with pytest.raises(SpecError, match="JSON"):  # more digits than Python will parse
        S.loads(text.replace('"units": 8', '"units": ' + "1" * 5000))


WRONG_TYPES = [
    (("name",), 5, "name"), (("notes",), [], "notes"), (("dataset",), "xor", "dataset"),
    (("dataset", "kind"), 3, "dataset.kind"), (("dataset", "params"), [], "dataset.params"),
    (("dataset", "params", "noise"), {"a": 1}, "dataset.params.noise"), (("layers",), {}, "layers"),
    (("layers", 0), "dense", "layers[0]"), (("layers", 0, "id"), 7, "layers[0]"), (("layers", 0, "id"), "1bad", "layers[0]"),
    (("layers", 0, "kind"), None, "input1"), (("layers", 0, "params"), [1], "input1.params"),
    (("layers", 0, "pos"), "0,0", "input1.pos"), (("layers", 0, "pos"), [1], "input1.pos"),
    (("layers", 0, "pos"), [True, 1], "input1.pos"), (("edges",), {}, "edges"), (("edges", 0), ["a", "b"], "edges[0]"),
    (("edges", 0, "from"), 1, "edges[0]"), (("training",), [], "training"), (("training", "lr"), "fast", "training.lr"),
    (("training", "epochs"), 1.5, "training.epochs"), (("training", "nesterov"), 1, "training.nesterov"),
    (("training", "optimizer"), 3, "training.optimizer"), (("training", "seed"), True, "training.seed"),
    (("training", "__dict__"), {}, "training.__dict__"), (("training", "speed"), 1, "training.speed"),
]


@pytest.mark.parametrize("path, value, where", WRONG_TYPES, ids=[w[2] + "=" + repr(w[1]) for w in WRONG_TYPES])
def test_a_wrong_type_is_refused_naming_the_field(path, value, where):
    doc = json.loads(S.dumps(mlp_spec()))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(SpecError) as exc:
        S.spec_from_dict(doc)
    assert [p.where for p in exc.value.problems] == [where]
    assert exc.value.problems[0].message


def test_wrong_types_everywhere_are_all_reported_at_once():
    doc = json.loads(S.dumps(mlp_spec()))
    doc.update(name=5, notes=[])
    doc["dataset"]["kind"] = 3
    doc["layers"][1]["pos"] = "here"
    doc["edges"][0] = "input1->dense1"
    doc["training"].update(lr="fast", epochs=[], seed=None)
    with pytest.raises(SpecError) as exc:
        S.spec_from_dict(doc)
    assert {p.where for p in exc.value.problems} == {"name", "notes", "dataset.kind", "dense1.pos", "edges[0]", "training.lr",
                                                     "training.epochs", "training.seed"}


@pytest.mark.parametrize("text", ["[]", '"design"', "3", "null", "true", "[1, 2]"])
def test_a_top_level_that_is_not_an_object_is_refused(text):
    with pytest.raises(SpecError, match="object"):
        S.loads(text)


def test_hostile_files_raise_spec_error_with_a_message(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (10 * 1024 * 1024))
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(random.Random(0).randbytes(4096))
    text_garbage = tmp_path / "text.json"
    text_garbage.write_text("hello {design", encoding="utf-8")
    truncated = tmp_path / "truncated.json"
    truncated.write_text(S.dumps(mlp_spec())[:300], encoding="utf-8")
    cases = [(big, "too large"), (garbage, "not a text file"), (text_garbage, "JSON"), (truncated, "truncated"),
             (tmp_path / "empty.json", "JSON"), (tmp_path / "missing.json", "cannot read"), (tmp_path, "cannot read")]
    (tmp_path / "empty.json").write_bytes(b"")
    for path, words in cases:
        with pytest.raises(SpecError) as exc:
            S.load(path)
        assert words in str(exc.value), path.name


def test_too_many_layers_or_edges_are_refused_not_cut():
    doc = json.loads(S.dumps(mlp_spec()))
    doc["edges"] = doc["edges"] * 2000
    with pytest.raises(SpecError, match="edges"):
        S.spec_from_dict(doc)
    doc = json.loads(S.dumps(mlp_spec()))
    doc["layers"] = [{"id": f"d{i}", "kind": "Dense"} for i in range(501)]
    with pytest.raises(SpecError, match="layers"):
        S.spec_from_dict(doc)


# ---- atomic save ------------------------------------------------------------------------------

def _fail(*args, **kwargs):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("where", ["replace", "fsync", "write"])
def test_a_failed_save_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch, where):
    path = tmp_path / "design.json"
    S.save(mlp_spec(), path)
    before = path.read_bytes()
    changed = mlp_spec()
    changed.name = "changed"
    if where == "write":
        real_fdopen = os.fdopen

        def half_writing_fdopen(fd, *args, **kwargs):
            fh = real_fdopen(fd, *args, **kwargs)
            real_write = fh.write

            def write(text):
                real_write(text[: len(text) // 2])  # half the bytes reach the temp file, then the disk fills
                raise OSError(28, "No space left on device")
            fh.write = write
            return fh
        monkeypatch.setattr(os, "fdopen", half_writing_fdopen)
    else:
        monkeypatch.setattr(os, where, _fail)
    with pytest.raises(OSError):
        S.save(changed, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["design.json"]
    S.save(changed, path)
    assert S.load(path).name == "changed" and sorted(os.listdir(tmp_path)) == ["design.json"]


# ---- validation -------------------------------------------------------------------------------

def faulty_spec() -> Spec:
    """One design with one of every kind of fault, on a 2-feature dataset."""
    lay = [LayerSpec("in1", "Input"), LayerSpec("d1", "Dense", {"units": 0}), LayerSpec("d2", "Dense", {"colour": "red"}),
           LayerSpec("x1", "Blob"), LayerSpec("c1", "Conv2d"), LayerSpec("add1", "Add"), LayerSpec("d3", "Dense"),
           LayerSpec("l1", "Dense"), LayerSpec("l2", "Dense"), LayerSpec("drop1", "Dropout", {"rate": 2.0})]
    edges = [("in1", "d1"), ("in1", "d2"), ("in1", "x1"), ("in1", "c1"), ("in1", "add1"), ("in1", "d3"), ("d1", "d3"),
             ("l1", "l2"), ("l2", "l1"), ("in1", "ghost"), ("in1", "drop1")]
    return Spec(layers=lay, edges=[EdgeSpec(a, b) for a, b in edges])


def test_a_design_with_many_faults_gets_all_of_them_reported_each_naming_where_and_how_to_fix():
    probs = V.errors(V.validate(faulty_spec()))
    by_where = {p.where: p.message for p in probs}
    expect = {
        "d1": ("units", "1"),  # out of range: says the allowed range
        "d2": ("unknown parameter", "remove"),
        "x1": ("unknown kind", "Dense"),
        "c1": ("image input", "2"),  # shape that does not fit
        "add1": ("at least 2 inputs", "connect"),  # missing input
        "d3": ("input", "Add or Concat"),  # extra input
        "l1": ("cycle", "remove"), "l2": ("cycle", "remove"),
        "edge in1->ghost": ("missing layer", "delete"),
        "drop1": ("rate", "0.95"),
        "design": ("no Output", "add"),
    }
    for where, words in expect.items():
        assert where in by_where, f"{where} not reported: {probs}"
        for w in words:
            assert w in by_where[where], (where, by_where[where])
    for p in probs:
        assert p.message and " - " in p.message or "outside" in p.message or "must" in p.message, p


def test_the_classic_shape_error_names_the_layer_the_shape_and_the_fix():
    spec = Spec(dataset=DatasetSpec("digits"),
                layers=[LayerSpec("in1", "Input"), LayerSpec("conv1", "Conv2d", {"filters": 8}),
                        LayerSpec("pool1", "MaxPool2d"), LayerSpec("d2", "Dense"), LayerSpec("out1", "Output")],
                edges=[EdgeSpec("in1", "conv1"), EdgeSpec("conv1", "pool1"), EdgeSpec("pool1", "d2"), EdgeSpec("d2", "out1")])
    probs = V.errors(V.validate(spec))
    assert len(probs) == 1 and probs[0].where == "d2"
    assert "Dense d2 needs a flat input but gets 8x4x4" in probs[0].message and "insert Flatten" in probs[0].message


def test_missing_or_extra_input_and_unconnected_output_are_reported():
    spec = Spec(layers=[LayerSpec("in1", "Input"), LayerSpec("in2", "Input"), LayerSpec("d1", "Dense"),
                        LayerSpec("out1", "Output")], edges=[EdgeSpec("in1", "d1")])
    by_where = {p.where: p.message for p in V.errors(V.validate(spec))}
    assert "second Input" in by_where["in2"]
    assert "needs an input" in by_where["out1"] or "not connected" in by_where["out1"]
    spec = Spec(layers=[LayerSpec("d1", "Dense"), LayerSpec("out1", "Output")], edges=[EdgeSpec("d1", "out1")])
    by_where = {p.where: p.message for p in V.errors(V.validate(spec))}
    assert "no Input" in by_where["design"] and "needs an input" in by_where["d1"]


def test_a_valid_design_has_no_errors_and_dead_ends_are_only_warnings():
    spec = mlp_spec()
    assert V.errors(V.validate(spec)) == []
    spec.layers.append(LayerSpec("dense9", "Dense"))
    spec.edges.append(EdgeSpec("dense1", "dense9"))
    probs = V.validate(spec)
    assert V.errors(probs) == [] and [p.where for p in probs] == ["dense9"] and probs[0].severity == "warning"


def test_every_bad_training_setting_is_reported_at_once():
    spec = mlp_spec()
    t = spec.training
    t.optimizer, t.loss, t.lr_schedule, t.device = "lbfgs", "hinge", "cyclic", "tpu"
    t.lr, t.batch_size, t.epochs, t.l1, t.l2, t.weight_decay, t.grad_clip = 0.0, 0, 0, -1.0, -1.0, -1.0, -1.0
    t.momentum, t.gamma, t.step_size, t.seed = 1.0, 0.0, 0, -1
    where = {p.where for p in V.validate(spec)}
    assert where >= {f"training.{f}" for f in ("optimizer", "loss", "lr_schedule", "device", "lr", "batch_size", "epochs",
                                               "l1", "l2", "weight_decay", "grad_clip", "momentum", "gamma", "step_size",
                                               "seed", "nesterov")}


def test_bad_dataset_params_are_all_reported():
    spec = mlp_spec()
    spec.dataset.params = {"n_points": 5, "noise": "lots", "colour": 1}
    where = {p.where for p in V.validate(spec)}
    assert where >= {"dataset.params.n_points", "dataset.params.noise", "dataset.params.colour"}
    spec.dataset = DatasetSpec("mnist-ish")
    assert any(p.where == "dataset.kind" and "xor" in p.message for p in V.validate(spec))


# ---- helpers ----------------------------------------------------------------------------------

def test_new_id_inputs_outputs_and_copy():
    spec = mlp_spec()
    assert spec.new_id("Dense") == "dense2" and spec.new_id("MaxPool2d") == "maxpool2d1"
    assert spec.inputs_of("act1") == ["dense1"] and spec.outputs_of("act1") == ["output1"] and spec.inputs_of("input1") == []
    twin = spec.copy()
    twin.layers[1].params["units"] = 99
    twin.dataset.params["seed"] = 99
    assert spec.layers[1].params["units"] == 8 and spec.dataset.params["seed"] == 3
    assert spec.layer("act1").kind == "Activation" and spec.layer("nope") is None
    assert copy.deepcopy(spec) == spec


def test_spec_layers_datasets_and_validation_import_and_validate_without_torch():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'sklearn', 'PySide6', 'pyqtgraph'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from engine import spec, layers, datasets, validation\n"
        "s = spec.Spec(layers=[spec.LayerSpec('in1', 'Input'), spec.LayerSpec('d1', 'Dense'), spec.LayerSpec('o1', 'Output')],\n"
        "              edges=[spec.EdgeSpec('in1', 'd1'), spec.EdgeSpec('d1', 'o1')])\n"
        "assert validation.errors(validation.validate(s)) == []\n"
        "assert layers.infer(s, datasets.describe(s.dataset)).shapes['o1'] == (2,)\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
