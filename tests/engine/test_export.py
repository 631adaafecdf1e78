"""Weights export: round trips into a fresh model, safe loading, clear errors, ONNX checked by onnxruntime."""
from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pytest
import torch

from engine import export, validation
from engine import spec as spec_mod
from engine.build import build
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec, TrainingSpec


def chain(dataset: str, layers: list[tuple[str, str, dict]], seed: int = 0) -> Spec:
    spec = Spec(name="export test", dataset=DatasetSpec(dataset), training=TrainingSpec(seed=seed))
    spec.layers = [LayerSpec(lid, kind, params, (0.0, 110.0 * i)) for i, (lid, kind, params) in enumerate(layers)]
    spec.edges = [EdgeSpec(a[0], b[0]) for a, b in itertools.pairwise(layers)]
    return spec


def mlp_spec(units: int = 6) -> Spec:
    """Dense + BatchNorm (buffers, an int64 counter) + Dropout: everything a state_dict can hold."""
    return chain("xor", [("input1", "Input", {}), ("dense1", "Dense", {"units": units}), ("bn1", "BatchNorm", {}),
                         ("act1", "Activation", {"function": "tanh"}), ("drop1", "Dropout", {"rate": 0.3}),
                         ("output1", "Output", {})])


def cnn_spec() -> Spec:
    return chain("digits", [("input1", "Input", {}), ("conv1", "Conv2d", {"filters": 4}), ("bn1", "BatchNorm", {}),
                            ("act1", "Activation", {"function": "relu"}), ("pool1", "MaxPool2d", {}),
                            ("flatten1", "Flatten", {}), ("dense1", "Dense", {"units": 12}),
                            ("act2", "Activation", {"function": "gelu"}), ("output1", "Output", {})])


def trained_like(spec: Spec, seed: int = 1) -> torch.nn.Module:
    """A model whose weights and BatchNorm statistics are far from any fresh initialisation."""
    model = build(spec, seed=seed)
    shape = model.shapes[model.input_id]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
        model.train()
        for _ in range(3):  # moves running_mean / running_var and num_batches_tracked
            model(torch.randn(16, *shape) * 2 + 1)
    return model.eval()


def batch(model, n: int = 7) -> torch.Tensor:
    return torch.randn(n, *model.shapes[model.input_id], generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("ext", [".safetensors", ".pt", ".pth"])
@pytest.mark.parametrize("make_spec", [mlp_spec, cnn_spec])
def test_weights_round_trip_reproduce_outputs_exactly(tmp_path, ext, make_spec):
    spec = make_spec()
    model = trained_like(spec)
    x = batch(model)
    path = tmp_path / f"weights{ext}"
    assert export.export(model, spec, path) == os.fspath(path)

    fresh = build(spec, seed=99).eval()
    assert not torch.equal(fresh(x), model(x))  # the load below must do the work
    design = export.load_weights_into(fresh, path)
    assert torch.equal(fresh(x), model(x))
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert design is not None and spec_mod.dumps(design) == spec_mod.dumps(spec)


def test_pt_file_loads_with_plain_torch_weights_only(tmp_path):
    spec = mlp_spec()
    model = trained_like(spec)
    path = tmp_path / "w.pt"
    export.save_state_dict(model, spec, path)
    # what another tool does: no Neural Playground code involved
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["format"] == "neural-playground-weights" and ckpt["version"] == "1"
    assert json.loads(ckpt["design"]) == spec.to_dict()
    other = build(spec, seed=7).eval()
    other.load_state_dict(ckpt["state_dict"])
    x = batch(model)
    assert torch.equal(other(x), model(x))


def test_bare_state_dict_pt_is_read_too(tmp_path):
    spec = mlp_spec()
    model = trained_like(spec)
    path = tmp_path / "bare.pt"
    torch.save(model.state_dict(), path)
    state, design = export.load_state_dict(path)
    assert design is None
    assert state.keys() == model.state_dict().keys()


def test_safetensors_metadata_holds_the_design(tmp_path):
    from safetensors import safe_open

    spec = cnn_spec()
    spec.notes = "unicode survives: \u00e9\u00e8 \u2192 \u03c3"
    model = trained_like(spec)
    path = tmp_path / "w.safetensors"
    export.save_safetensors(model, spec, path)
    with safe_open(os.fspath(path), framework="pt") as fh:  # read independently of engine.export
        meta = fh.metadata()
        keys = set(fh.keys())
    assert meta["format"] == "neural-playground-weights" and meta["version"] == "1"
    assert json.loads(meta["design"]) == spec.to_dict()
    assert keys == set(model.state_dict())
    state, design = export.load_safetensors(path)
    assert design.notes == spec.notes and [lay.id for lay in design.layers] == [lay.id for lay in spec.layers]
    assert state["layers.bn1.num_batches_tracked"].dtype == torch.int64


def test_weights_of_another_design_are_refused_and_the_model_is_unchanged(tmp_path):
    small = mlp_spec(units=6)
    path = tmp_path / "small.safetensors"
    export.export(trained_like(small), small, path)

    wider = build(mlp_spec(units=9), seed=3)
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with pytest.raises(ValueError, match=r"layers\.dense1\.weight.*6x2.*9x2.*another design"):
        export.load_weights_into(wider, path)
    assert all(torch.equal(before[k], v) for k, v in wider.state_dict().items())

    cnn = build(cnn_spec(), seed=3)
    with pytest.raises(ValueError, match=r"no weights for 'layers\.conv1\.weight'.*another design"):
        export.load_weights_into(cnn, path)

    # a design with fewer layers than the file: the extra key is named
    shorter = chain("xor", [("input1", "Input", {}), ("dense1", "Dense", {"units": 6}),
                            ("act1", "Activation", {}), ("output1", "Output", {})])
    pt = tmp_path / "long.pt"
    export.export(trained_like(small), small, pt)
    with pytest.raises(ValueError, match=r"layers\.bn1\..*which this design lacks"):
        export.load_weights_into(build(shorter), pt)


def test_unknown_extension_lists_the_supported_formats_and_writes_nothing(tmp_path):
    spec = mlp_spec()
    with pytest.raises(ValueError) as err:
        export.export(build(spec), spec, tmp_path / "model.h5")
    for ext in (".safetensors", ".pt", ".onnx"):
        assert ext in str(err.value)
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="does not exist"):
        export.export(build(spec), spec, tmp_path / "missing" / "m.pt")


def test_loading_never_unpickles_foreign_objects(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (os.fspath(marker), "w"))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": Evil()}, path)
    with pytest.raises(ValueError, match="cannot be loaded safely|not a PyTorch weights file"):
        export.load_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("name,content", [("junk.safetensors", b"\x00" * 40), ("junk.pt", b"not a zip at all"),
                                          ("text.safetensors", b'{"hello": 1}')])
def test_broken_files_give_a_clear_value_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=name):
        export.load_weights_into(build(mlp_spec()), path)


def test_missing_file_and_graph_formats_are_refused_for_loading(tmp_path):
    model = build(mlp_spec())
    with pytest.raises(ValueError, match="no such file"):
        export.load_weights_into(model, tmp_path / "absent.safetensors")
    with pytest.raises(ValueError, match=r"\.safetensors, \.pt, \.pth"):
        export.load_weights_into(model, tmp_path / "model.onnx")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    spec = mlp_spec()
    path = tmp_path / "w.safetensors"
    export.export(trained_like(spec), spec, path)
    old = path.read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export.os, "fsync", disk_full)
    with pytest.raises(OSError):
        export.export(build(spec, seed=5), spec, path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["w.safetensors"]


def test_onnx_export_matches_onnxruntime_with_a_dynamic_batch(tmp_path):
    import onnx
    import onnxruntime as ort

    spec = cnn_spec()
    model = trained_like(spec).train()  # exporting must not depend on, or change, the live mode
    path = tmp_path / "m.onnx"
    export.export(model, spec, path)
    assert model.training

    model.eval()
    sess = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"] and [o.name for o in sess.get_outputs()] == ["logits"]
    for n in (1, 5, 33):  # batch sizes other than the 2 used for tracing
        x = batch(model, n)
        got = sess.run(None, {"input": x.numpy()})[0]
        np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-5, rtol=0)
    proto = onnx.load(os.fspath(path))
    assert any(op.version == export.ONNX_OPSET for op in proto.opset_import if op.domain in ("", "ai.onnx"))
    assert spec_mod.dumps(export.onnx_design(path)) == spec_mod.dumps(spec)


def test_torchscript_export_runs_without_our_code(tmp_path):
    import warnings

    spec = mlp_spec()
    model = trained_like(spec)
    path = tmp_path / "m.ts"
    export.export(model, spec, path)
    extra = {"design.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(os.fspath(path), _extra_files=extra)
    x = batch(model, 9)
    torch.testing.assert_close(loaded(x), model(x), atol=1e-6, rtol=0)
    assert json.loads(extra["design.json"]) == spec.to_dict()


def test_exported_program_runs_with_another_batch_size(tmp_path):
    spec = cnn_spec()
    model = trained_like(spec)
    path = tmp_path / "m.pt2"
    export.export(model, spec, path)
    extra = {"design.json": ""}
    program = torch.export.load(os.fspath(path), extra_files=extra)
    x = batch(model, 11)
    torch.testing.assert_close(program.module()(x), model(x), atol=1e-6, rtol=0)
    assert json.loads(extra["design.json"]) == spec.to_dict()


def every_kind_spec() -> Spec:
    """A branching design that uses every layer kind in the registry (and several activations)."""
    spec = Spec(name="kitchen sink", dataset=DatasetSpec("digits"), training=TrainingSpec(seed=4))
    nodes = [
        ("input1", "Input", {}, ["input1"]),
        ("conv1", "Conv2d", {"filters": 4}, ["input1"]),
        ("bn1", "BatchNorm", {}, ["conv1"]),
        ("act1", "Activation", {"function": "leaky_relu", "slope": 0.2}, ["bn1"]),
        ("conv2", "Conv2d", {"filters": 4, "kernel": 3, "padding": "1"}, ["act1"]),
        ("act2", "Activation", {"function": "elu"}, ["conv2"]),
        ("conv3", "Conv2d", {"filters": 4, "kernel": 5, "padding": "2"}, ["act1"]),
        ("act3", "Activation", {"function": "silu"}, ["conv3"]),
        ("deconv1", "ConvTranspose2d", {"filters": 4, "kernel": 2, "stride": 2}, ["act1"]),
        ("maxpool2", "MaxPool2d", {"ceil_mode": True}, ["deconv1"]),
        ("add1", "Add", {}, ["act2", "act3", "maxpool2"]),
        ("avgpool1", "AvgPool2d", {}, ["add1"]),
        ("maxpool1", "MaxPool2d", {}, ["act1"]),
        ("concat1", "Concat", {}, ["avgpool1", "maxpool1"]),
        ("drop1", "Dropout", {"rate": 0.2, "spatial": True}, ["concat1"]),
        ("gap1", "GlobalAvgPool", {}, ["drop1"]),
        ("flatten1", "Flatten", {}, ["concat1"]),
        ("dense1", "Dense", {"units": 16}, ["flatten1"]),
        ("ln1", "LayerNorm", {}, ["dense1"]),
        ("act4", "Activation", {"function": "softplus"}, ["ln1"]),
        ("re1", "Reshape", {"channels": 4, "height": 2, "width": 2}, ["dense1"]),
        ("up1", "Upsample", {"scale": 2}, ["re1"]),
        ("gap2", "GlobalAvgPool", {}, ["up1"]),
        ("vae1", "VAESample", {}, ["ln1"]),  # exported in eval mode: the mean half
        ("concat2", "Concat", {}, ["gap1", "act4", "gap2", "vae1"]),
        ("dense2", "Dense", {"units": 12, "bias": False}, ["concat2"]),
        ("act5", "Activation", {"function": "gelu"}, ["dense2"]),
        ("act6", "Activation", {"function": "softmax"}, ["act5"]),
        ("output1", "Output", {}, ["act6"]),
    ]
    spec.layers = [LayerSpec(i, k, p, (0.0, 110.0 * n)) for n, (i, k, p, _) in enumerate(nodes)]
    spec.edges = [EdgeSpec(src, i) for i, _, _, srcs in nodes[1:] for src in srcs]
    return spec


def test_onnx_handles_every_layer_kind(tmp_path):
    import onnxruntime as ort

    from engine.layers import REGISTRY, kinds_in_group

    spec = every_kind_spec()
    sequence_kinds = {k.kind for g in ("Sequence", "Attention") for k in kinds_in_group(g)}  # see below
    assert {lay.kind for lay in spec.layers} == set(REGISTRY) - sequence_kinds, "add new layer kinds to this design"
    assert validation.errors(validation.validate(spec)) == []
    model = trained_like(spec)
    path = tmp_path / "every.onnx"
    export.export(model, spec, path)
    sess = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    x = batch(model, 6)
    got = sess.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-5, rtol=0)


SEQUENCE_DESIGNS = {  # every sequence and attention kind, on the data each reads
    "tokens": chain("recall", [("input1", "Input", {}), ("emb1", "Embedding", {"dim": 8, "vocab": 8}),
                               ("pos1", "PositionalEncoding", {}), ("att1", "SelfAttention", {"heads": 2, "causal": True}),
                               ("pos2", "PositionalEncoding", {"kind": "learned"}),
                               ("gru1", "GRU", {"units": 4, "bidirectional": True, "sequence": True}),
                               ("pool1", "SequencePool", {"mode": "max"}), ("output1", "Output", {})]),
    "numbers": chain("adding", [("input1", "Input", {}), ("lstm1", "LSTM", {"units": 6, "layers": 2, "sequence": True}),
                                ("rnn1", "RNN", {"units": 5, "bidirectional": True}), ("reshape1", "ToSequence", {"features": 2}),
                                ("lstm2", "LSTM", {"units": 3}), ("output1", "Output", {})]),
}
SEQUENCE_DESIGNS["numbers"].training.loss = "huber"


def sequence_batch(spec, model, n=5):
    if spec.dataset.kind == "recall":
        return torch.randint(0, 8, (n, *model.shapes[model.input_id]), generator=torch.Generator().manual_seed(3)).float()
    return batch(model, n)


@pytest.mark.parametrize("name", sorted(SEQUENCE_DESIGNS))
def test_sequence_models_export_to_onnx_and_weights(tmp_path, name):
    """ONNX checked by onnxruntime with another batch size; safetensors and .pt reproduce the outputs."""
    import onnxruntime as ort

    from engine.layers import kinds_in_group

    spec = SEQUENCE_DESIGNS[name]
    assert validation.errors(validation.validate(spec)) == []
    if name == "tokens":
        used = {lay.kind for d in SEQUENCE_DESIGNS.values() for lay in d.layers}
        assert {k.kind for g in ("Sequence", "Attention") for k in kinds_in_group(g)} <= used
    model = trained_like(spec) if name == "numbers" else build(spec, seed=1).eval()
    x = sequence_batch(spec, model)
    with torch.no_grad():
        want = model(x).numpy()
    path = tmp_path / "seq.onnx"
    export.export(model, spec, path)
    sess = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"input": x.numpy()})[0], want, atol=1e-5, rtol=0)
    for ext in (".safetensors", ".pt"):
        fresh = build(spec, seed=99).eval()
        export.export(model, spec, tmp_path / f"w{ext}")
        export.load_weights_into(fresh, tmp_path / f"w{ext}")
        with torch.no_grad():
            np.testing.assert_array_equal(fresh(x).numpy(), want)
