"""Document: every edit is undoable and exact; files round-trip; hostile files are refused."""
import json

import pytest

from app.document import Document, connection_problem, copy_payload, parse_payload, read_design
from engine import layers as L
from engine.datasets import describe
from engine.spec import Spec, SpecError, dumps
from tests.app.conftest import chain_spec


@pytest.fixture
def doc(qapp):
    return Document(chain_spec())


def test_undo_and_redo_restore_every_state_exactly(doc):
    states = [doc.spec.to_dict()]

    def step(fn):
        fn()
        assert doc.spec.to_dict() != states[-1], "each step must change the design"
        states.append(doc.spec.to_dict())

    step(lambda: doc.add_layer("Dropout", {"rate": 0.3}, (200, 50)))
    step(lambda: doc.connect("act1", "dropout1"))
    step(lambda: doc.set_param("dense1", "units", 16))
    step(lambda: doc.move_layers({"dense1": (30.0, 140.0), "act1": (30.0, 270.0)}))
    step(lambda: doc.set_dataset("circles", {"n_points": 300}))
    step(lambda: doc.set_training("lr", 0.001))
    step(lambda: doc.set_name("renamed"))
    step(lambda: doc.rename_layer("dense1", "hidden"))
    step(lambda: doc.paste(copy_payload(doc.spec, ["hidden", "act1"])))
    step(lambda: doc.disconnect([("act1", "dropout1")]))
    step(lambda: doc.delete_layers(["hidden"]))
    step(lambda: doc.insert_after("input1", "Dense", {"units": 4}))

    stack = doc.undo_stack
    assert stack.count() == len(states) - 1
    for i in range(len(states) - 1, 0, -1):
        stack.undo()
        assert doc.spec.to_dict() == states[i - 1], f"undo of step {i} ({stack.text(i - 1)})"
    assert not doc.is_modified()
    for i in range(1, len(states)):
        stack.redo()
        assert doc.spec.to_dict() == states[i]
    assert doc.is_modified()


def test_edits_have_readable_undo_texts(doc):
    doc.set_param("dense1", "units", 16)
    doc.disconnect([("act1", "output1")])
    doc.connect("act1", "output1")
    doc.move_layers({"dense1": (1.0, 2.0), "act1": (3.0, 4.0)})
    doc.add_layer("Dense", {}, (0, 0))
    texts = [doc.undo_stack.text(i) for i in range(doc.undo_stack.count())]
    assert texts == ["Set dense1 units to 16", "Disconnect act1 -> output1", "Connect act1 -> output1",
                     "Move 2 layers", "Add Dense"]
    assert doc.undo_stack.undoText() == "Add Dense"


def test_typing_into_one_parameter_is_one_undo_step(doc):
    for v in (1, 12, 128):  # what a spin box emits while "128" is typed
        doc.set_param("dense1", "units", v)
    doc.set_param("act1", "function", "relu")
    assert doc.undo_stack.count() == 2
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert doc.spec.layer("dense1").params["units"] == 8
    assert doc.spec.layer("act1").params["function"] == "tanh"


def test_typing_back_to_the_old_value_leaves_nothing_to_undo(doc):
    doc.set_param("dense1", "units", 9)
    doc.set_param("dense1", "units", 8)
    assert doc.undo_stack.count() == 0
    assert not doc.is_modified()


def test_refused_parameter_value_changes_nothing(doc):
    before = doc.spec.to_dict()
    why = doc.set_param("dense1", "units", 0)
    assert why and "units" in why and "1" in why
    assert doc.set_param("dense1", "nonsense", 3)
    assert doc.spec.to_dict() == before and doc.undo_stack.count() == 0


def test_deleting_a_layer_deletes_its_edges_and_undo_restores_both(doc):
    before = doc.spec.to_dict()
    doc.delete_layers(["dense1"])
    assert doc.spec.layer("dense1") is None
    assert all("dense1" not in (e.src, e.dst) for e in doc.spec.edges)
    assert len(doc.spec.edges) == 1
    doc.undo_stack.undo()
    assert doc.spec.to_dict() == before


def test_insert_after_goes_between_a_layer_and_its_successors(doc):
    lid = doc.insert_after("dense1", "Dropout", {})
    assert doc.spec.inputs_of(lid) == ["dense1"]
    assert doc.spec.outputs_of(lid) == ["act1"]
    assert doc.spec.outputs_of("dense1") == [lid]
    new, above, below = doc.spec.layer(lid), doc.spec.layer("dense1"), doc.spec.layer("act1")
    assert above.pos[1] < new.pos[1] < below.pos[1], "downstream layers shift to make room"
    info = describe(doc.spec.dataset)
    assert L.infer(doc.spec, info).shapes[lid] == (8,)


def test_insert_after_the_output_puts_the_layer_before_it(doc):
    lid = doc.insert_after("output1", "Dense", {"units": 3})
    assert doc.spec.inputs_of(lid) == ["act1"]
    assert doc.spec.outputs_of(lid) == ["output1"]
    assert L.infer(doc.spec, describe(doc.spec.dataset)).ok


def test_impossible_connections_are_refused_without_an_edit(doc):
    assert "loop" in connection_problem(doc.spec, "act1", "dense1")
    assert "already" in connection_problem(doc.spec, "input1", "dense1")
    assert connection_problem(doc.spec, "input1", "act1")  # act1 already has its one input
    assert doc.connect("output1", "input1")
    assert doc.undo_stack.count() == 0


def test_paste_uses_fresh_ids_offsets_and_keeps_inner_edges(doc):
    payload = copy_payload(doc.spec, ["dense1", "act1"])
    ids = doc.paste(payload)
    assert len(ids) == 2 and not set(ids) & {"dense1", "act1"}
    d, a = doc.spec.layer(ids[0]), doc.spec.layer(ids[1])
    assert (d.kind, d.params) == ("Dense", {"units": 8})
    assert d.pos == (40.0, 132.0 + 40.0)
    assert doc.spec.inputs_of(a.id) == [d.id]
    assert doc.spec.inputs_of(d.id) == []  # the edge from input1 was not among the copied layers


def test_paste_payload_from_the_clipboard_is_checked(doc):
    good = copy_payload(doc.spec, ["dense1"])
    assert parse_payload(json.loads(json.dumps(good))) == good
    assert parse_payload({"format": "neural-playground-layers", "layers": [{"id": "x", "kind": "Dense",
                                                                            "params": {"units": 10**12}}]}) is None
    assert parse_payload({"format": "other", "layers": []}) is None
    assert parse_payload("just text") is None


def test_rename_layer_checks_the_id_and_rewires_edges(doc):
    assert "already" in doc.rename_layer("dense1", "act1")
    assert "valid" in doc.rename_layer("dense1", "1bad")
    assert doc.rename_layer("dense1", "hidden") is None
    assert doc.spec.inputs_of("act1") == ["hidden"]
    assert doc.spec.outputs_of("input1") == ["hidden"]


def test_save_then_open_gives_an_equal_design_and_clears_modified(doc, tmp_path):
    doc.set_param("dense1", "units", 5)
    doc.set_training("optimizer", "sgd")
    assert doc.is_modified()
    path = tmp_path / "d.json"
    doc.save(str(path))
    assert not doc.is_modified() and doc.path == str(path)
    assert read_design(str(path)).to_dict() == doc.spec.to_dict()
    assert not list(tmp_path.glob(".np-*")), "no temporary file left behind"


def _write(tmp_path, text):
    p = tmp_path / "bad.json"
    p.write_text(text)
    return str(p)


def _good_dict():
    return json.loads(dumps(chain_spec()))


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["layers"][1]["params"].update(units=1e308), "dense1.units"),
    (lambda d: d["layers"][1]["params"].update(units="8"), "dense1.units"),
    (lambda d: d["layers"][1].update(kind="Transformer"), "dense1.kind"),
    (lambda d: d["training"].update(lr=1e300), "training.lr"),
    (lambda d: d["training"].update(batch_size=10**30), "training.batch_size"),
    (lambda d: d["training"].update(epochs="many"), "training.epochs"),
    (lambda d: d["dataset"]["params"].update(n_points=10**12), "dataset.params.n_points"),
    (lambda d: d["edges"].append({"from": "ghost", "to": "dense1"}), "ghost"),
    (lambda d: d.update(format="something-else"), "format"),
    (lambda d: d.update(layers={"not": "a list"}), "layers"),
])
def test_hostile_values_are_refused_naming_the_field(tmp_path, mutate, field):
    data = _good_dict()
    mutate(data)
    with pytest.raises(SpecError) as err:
        read_design(_write(tmp_path, json.dumps(data)))
    assert field in str(err.value)


def test_unreadable_files_are_refused(tmp_path):
    for text in ("{not json", "[" * 100000 + "]" * 100000, "", "null"):
        with pytest.raises(SpecError):
            read_design(_write(tmp_path, text))


def test_a_half_built_design_opens_with_its_problems(tmp_path):
    spec = chain_spec()
    spec.layers = [lay for lay in spec.layers if lay.kind != "Output"]
    spec.edges = [e for e in spec.edges if e.dst != "output1"]
    path = tmp_path / "half.json"
    path.write_text(dumps(spec))
    opened = read_design(str(path))
    assert opened.to_dict() == spec.to_dict()
    assert not L.infer(opened, describe(opened.dataset)).ok


def test_reset_replaces_the_design_and_history(doc):
    doc.set_param("dense1", "units", 3)
    doc.reset(Spec(name="fresh"), None)
    assert doc.spec.name == "fresh" and doc.undo_stack.count() == 0 and not doc.is_modified()


def test_insert_before_an_unconnected_output(qapp):
    spec = chain_spec()
    spec.edges = [e for e in spec.edges if e.dst != "output1"]
    doc = Document(spec)
    lid = doc.insert_after("output1", "Dense", {"units": 2})
    assert doc.spec.outputs_of(lid) == ["output1"] and doc.spec.inputs_of(lid) == []
    assert doc.spec.layer(lid).pos[1] < doc.spec.layer("output1").pos[1]
