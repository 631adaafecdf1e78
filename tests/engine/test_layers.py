"""The layer registry: schemas, and shapes/parameter counts checked against the real torch modules."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from engine import layers as L
from engine.datasets import DataInfo
from engine.spec import EdgeSpec, LayerSpec, Spec

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's note, not ours


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models on 2 busy cores: extra torch threads only wait for each other (30 s instead of 2 s)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
ISSUE_KINDS = {"Input", "Dense", "Conv2d", "MaxPool2d", "AvgPool2d", "GlobalAvgPool", "Flatten", "Dropout", "BatchNorm",
               "LayerNorm", "Activation", "Add", "Concat", "Output"}


def run_kind(kind: str, params: dict, in_shapes: list[tuple[int, ...]], n_classes: int = 3, loss: str = "cross_entropy"):
    """(inferred shape, inferred count, torch output, torch module) for one layer on random input."""
    k = L.REGISTRY[kind]
    assert all(k.param_map[n].check(v) is None for n, v in params.items()), params
    p = k.resolve(params)
    out = k.shape(in_shapes, p, L.Context(n_classes=n_classes, loss=loss))
    count = k.count(in_shapes, out, p)
    mod = k.make(in_shapes, out, params)
    mod.eval()
    with torch.no_grad():
        xs = [torch.randn(3, *s) for s in in_shapes]
        y = mod(*xs)
    return out, count, y, mod


def n_params(mod: nn.Module) -> int:
    return sum(p.numel() for p in mod.parameters())


# ---- registry metadata -------------------------------------------------------------------------

def test_every_kind_the_issue_names_has_a_registry_entry_with_a_schema():
    assert ISSUE_KINDS <= set(L.REGISTRY)
    grouped = [k.kind for g in L.GROUPS for k in L.kinds_in_group(g)]
    assert sorted(grouped) == sorted(L.REGISTRY)  # every kind shows in exactly one palette group
    for kind in L.REGISTRY.values():
        assert kind.help and "\n" not in kind.help and kind.formula
        assert kind.factory is not None or kind.kind == "Input"
        for p in kind.params:
            assert p.type in ("int", "float", "bool", "choice") and p.help and "\n" not in p.help
            assert p.check(p.default) is None, (kind.kind, p.name)  # the default is allowed
            if p.type in ("int", "float"):
                assert p.min is not None and p.max is not None and p.min <= p.default <= p.max
            if p.type == "choice":
                assert p.default in p.choices


def test_param_check_explains_what_is_allowed_and_never_raises():
    units = L.REGISTRY["Dense"].param_map["units"]
    assert units.check(8) is None and units.check(8.0) is None
    assert "1..4096" in units.check(0) and "1..4096" in units.check(5000)
    assert "whole" in units.check(2.5)
    for bad in ("8", None, [8], True, float("nan"), float("inf"), 10**400, -10**400):
        msg = units.check(bad)
        assert isinstance(msg, str) and msg, bad
    pad = L.REGISTRY["Conv2d"].param_map["padding"]
    assert pad.check("same") is None and "valid" in pad.check("full")
    assert L.REGISTRY["Dropout"].param_map["spatial"].check("yes") == "must be true or false"


def test_describe_params_and_fmt_shape():
    assert L.describe_params("Dense", {"units": 16}) == "16 units"
    assert L.describe_params("Conv2d", {"filters": 4, "kernel": 5, "stride": 2}) == "4 filters 5x5 /2"
    assert L.describe_params("Activation", {"function": "leaky_relu", "slope": 0.2}) == "leaky_relu (0.2)"
    assert L.describe_params("Nope", {}) == ""
    assert L.fmt_shape((8, 4, 4)) == "8x4x4" and L.fmt_shape((10,)) == "10"


# ---- shapes and counts against torch -------------------------------------------------------------

@FAST
@given(c=st.integers(1, 3), h=st.integers(1, 14), w=st.integers(1, 14), filters=st.integers(1, 5),
       kernel=st.integers(1, 7), stride=st.integers(1, 4), padding=st.sampled_from(["same", "valid", "1", "2", "3"]),
       bias=st.booleans())
def test_conv2d_shape_and_count_match_torch(c, h, w, filters, kernel, stride, padding, bias):
    params = {"filters": filters, "kernel": kernel, "stride": stride, "padding": padding, "bias": bias}
    try:
        out, count, y, mod = run_kind("Conv2d", params, [(c, h, w)])
    except L.ShapeError as exc:
        assert "kernel" in str(exc)
        with pytest.raises(RuntimeError):  # torch agrees the kernel does not fit
            pad, _ = L._conv_geometry(L.REGISTRY["Conv2d"].resolve(params), h)
            nn.Conv2d(c, filters, kernel, stride=stride, padding=pad)(torch.randn(1, c, h, w))
        return
    assert tuple(y.shape[1:]) == out
    assert count == n_params(mod)
    assert count == c * filters * kernel * kernel + (filters if bias else 0)  # by hand
    if padding == "same" and stride == 1:
        assert out[1:] == (h, w)


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("size", [5, 8, 9])
def test_same_padding_with_stride_1_keeps_the_size_even_for_even_kernels(kernel, size):
    out, count, y, mod = run_kind("Conv2d", {"filters": 2, "kernel": kernel, "stride": 1, "padding": "same"}, [(3, size, size)])
    assert out == (2, size, size) == tuple(y.shape[1:])


@pytest.mark.parametrize("kernel, stride, size", [(3, 2, 8), (3, 2, 9), (4, 2, 8), (5, 3, 11), (2, 2, 7), (1, 4, 5)])
def test_same_padding_with_stride_over_1_matches_torch(kernel, stride, size):
    out, count, y, mod = run_kind("Conv2d", {"filters": 2, "kernel": kernel, "stride": stride, "padding": "same"},
                                  [(1, size, size)])
    assert tuple(y.shape[1:]) == out and out[1] < size


@FAST
@given(kind=st.sampled_from(["MaxPool2d", "AvgPool2d"]), c=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 12),
       size=st.integers(1, 8), stride=st.integers(0, 8))
def test_pool_shapes_match_torch(kind, c, h, w, size, stride):
    try:
        out, count, y, mod = run_kind(kind, {"size": size, "stride": stride}, [(c, h, w)])
    except L.ShapeError as exc:
        assert size > min(h, w) and "window" in str(exc)
        return
    assert tuple(y.shape[1:]) == out and count == 0 == n_params(mod)
    ref = (F.max_pool2d if kind == "MaxPool2d" else F.avg_pool2d)
    x = torch.randn(2, c, h, w)
    assert torch.equal(mod(x), ref(x, size, stride or size))


CASES = [
    ("Dense", {"units": 7}, [(5,)]), ("Dense", {"units": 1, "bias": False}, [(12,)]),
    ("Output", {}, [(6,)]), ("Flatten", {}, [(3, 4, 5)]), ("Flatten", {}, [(9,)]), ("GlobalAvgPool", {}, [(6, 5, 3)]),
    ("Dropout", {"rate": 0.3}, [(10,)]), ("Dropout", {"rate": 0.3, "spatial": True}, [(4, 5, 5)]),
    ("BatchNorm", {}, [(10,)]), ("BatchNorm", {"momentum": 0.5}, [(4, 6, 6)]), ("LayerNorm", {}, [(10,)]),
    ("LayerNorm", {}, [(3, 4, 4)]), ("Activation", {"function": "softmax"}, [(5,)]),
    ("Add", {}, [(6,), (6,), (6,)]), ("Add", {}, [(2, 3, 3), (2, 3, 3)]),
    ("Concat", {}, [(3,), (5,)]), ("Concat", {}, [(2, 4, 4), (3, 4, 4), (1, 4, 4)]),
]


@pytest.mark.parametrize("kind, params, ins", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_shape_and_count_of_every_kind_match_torch(kind, params, ins):
    out, count, y, mod = run_kind(kind, params, ins, n_classes=4)
    assert tuple(y.shape[1:]) == out
    assert count == n_params(mod)


@settings(max_examples=15, deadline=None)
@given(n_in=st.integers(1, 40), units=st.integers(1, 40), c=st.integers(1, 6), hw=st.integers(1, 6))
def test_dense_batchnorm_layernorm_counts_match_torch(n_in, units, c, hw):
    for kind, params, ins in [("Dense", {"units": units}, [(n_in,)]), ("BatchNorm", {}, [(n_in,)]),
                              ("BatchNorm", {}, [(c, hw, hw)]), ("LayerNorm", {}, [(c, hw, hw)])]:
        out, count, y, mod = run_kind(kind, params, ins)
        assert count == n_params(mod) and tuple(y.shape[1:]) == out


def test_batchnorm_is_1d_for_flat_and_2d_for_images():
    assert isinstance(run_kind("BatchNorm", {}, [(10,)])[3], nn.BatchNorm1d)
    assert isinstance(run_kind("BatchNorm", {"momentum": 0.3}, [(4, 5, 5)])[3], nn.BatchNorm2d)
    assert run_kind("BatchNorm", {"momentum": 0.3}, [(4, 5, 5)])[3].momentum == 0.3


def test_dropout_2d_drops_whole_maps_and_plain_dropout_single_values():
    assert isinstance(run_kind("Dropout", {"spatial": True}, [(4, 5, 5)])[3], nn.Dropout2d)
    assert isinstance(run_kind("Dropout", {"spatial": True}, [(4,)])[3], nn.Dropout)  # no maps to drop on flat data


@pytest.mark.parametrize("loss, n_classes, units", [("cross_entropy", 2, 2), ("cross_entropy", 10, 10), ("bce", 2, 1),
                                                    ("mse", 2, 1), ("mse", 3, 3)])
def test_output_has_logits_per_class_for_cross_entropy_and_one_unit_for_binary_bce_mse(loss, n_classes, units):
    out, count, y, mod = run_kind("Output", {}, [(5,)], n_classes=n_classes, loss=loss)
    assert out == (units,) and y.shape[1] == units and count == 5 * units + units


# ---- activations by hand -----------------------------------------------------------------------

def _by_hand(fn: str, x: torch.Tensor, slope: float) -> torch.Tensor:
    e = torch.exp
    return {
        "linear": lambda: x,
        "sigmoid": lambda: 1 / (1 + e(-x)),
        "tanh": lambda: (e(x) - e(-x)) / (e(x) + e(-x)),
        "relu": lambda: torch.where(x > 0, x, torch.zeros_like(x)),
        "leaky_relu": lambda: torch.where(x > 0, x, slope * x),
        "elu": lambda: torch.where(x > 0, x, e(x) - 1),
        "gelu": lambda: x * 0.5 * (1 + torch.erf(x / math.sqrt(2))),
        "silu": lambda: x / (1 + e(-x)),
        "softplus": lambda: torch.log(1 + e(x)),
        "softmax": lambda: e(x) / e(x).sum(dim=1, keepdim=True),
    }[fn]()


def _functional(fn: str, x: torch.Tensor, slope: float) -> torch.Tensor:
    return {"linear": lambda: x, "sigmoid": lambda: torch.sigmoid(x), "tanh": lambda: torch.tanh(x),
            "relu": lambda: F.relu(x), "leaky_relu": lambda: F.leaky_relu(x, slope), "elu": lambda: F.elu(x),
            "gelu": lambda: F.gelu(x), "silu": lambda: F.silu(x), "softplus": lambda: F.softplus(x),
            "softmax": lambda: F.softmax(x, dim=1)}[fn]()


@pytest.mark.parametrize("fn", L.ACTIVATIONS)
@pytest.mark.parametrize("shape", [(6,), (3, 2, 2)])
def test_every_activation_matches_its_formula_and_torch_functional(fn, shape):
    slope = 0.17
    mod = run_kind("Activation", {"function": fn, "slope": slope}, [shape])[3]
    x = torch.linspace(-4, 4, 4 * math.prod(shape), dtype=torch.float64).reshape(4, *shape)
    y = mod(x)
    assert y.shape == x.shape
    assert torch.equal(y, _functional(fn, x, slope))
    assert torch.allclose(y, _by_hand(fn, x, slope), rtol=1e-9, atol=1e-12)
    assert fn in L.ACTIVATION_FORMULAS


# ---- whole-design inference --------------------------------------------------------------------

def chain(*layers: tuple[str, str, dict]) -> Spec:
    lays = [LayerSpec(i, k, p) for i, k, p in layers]
    return Spec(layers=lays, edges=[EdgeSpec(a.id, b.id) for a, b in zip(lays, lays[1:], strict=False)])


DIGITS = DataInfo("digits", (1, 8, 8), 10, [str(i) for i in range(10)])


def test_infer_gives_every_node_a_shape_and_count():
    spec = chain(("in1", "Input", {}), ("conv1", "Conv2d", {"filters": 4, "kernel": 3}), ("pool1", "MaxPool2d", {}),
                 ("bn1", "BatchNorm", {}), ("flat1", "Flatten", {}), ("dense1", "Dense", {"units": 12}),
                 ("out1", "Output", {}))
    rep = L.infer(spec, DIGITS)
    assert rep.ok and rep.order == ["in1", "conv1", "pool1", "bn1", "flat1", "dense1", "out1"]
    assert rep.shapes == {"in1": (1, 8, 8), "conv1": (4, 8, 8), "pool1": (4, 4, 4), "bn1": (4, 4, 4), "flat1": (64,),
                          "dense1": (12,), "out1": (10,)}
    assert rep.counts == {"in1": 0, "conv1": 4 * 9 + 4, "pool1": 0, "bn1": 8, "flat1": 0, "dense1": 64 * 12 + 12,
                          "out1": 12 * 10 + 10}
    assert rep.total_params == sum(rep.counts.values()) and rep.input_id == "in1" and rep.output_id == "out1"


@pytest.mark.parametrize("layers, where, words", [
    ([("conv1", "Conv2d", {"filters": 8}), ("pool1", "MaxPool2d", {}), ("d2", "Dense", {})], "d2",
     ["Dense d2 needs a flat input but gets 8x4x4", "insert Flatten"]),
    ([("conv1", "Conv2d", {"kernel": 11, "padding": "valid"})], "conv1", ["11x11 kernel does not fit a 8x8 input"]),
    ([("pool1", "MaxPool2d", {"size": 4}), ("pool2", "MaxPool2d", {"size": 4})], "pool2", ["4x4 window does not fit a 2x2"]),
    ([("flat1", "Flatten", {}), ("gap1", "GlobalAvgPool", {})], "gap1", ["needs an image input", "but gets 64"]),
])
def test_shape_errors_name_the_layer_the_shapes_and_the_fix(layers, where, words):
    spec = chain(("in1", "Input", {}), *layers, ("flat9", "Flatten", {}), ("out1", "Output", {}))
    rep = L.infer(spec, DIGITS)
    assert not rep.ok and list(rep.node_errors) == [where]
    msg = next(p.message for p in rep.problems if p.where == where)
    for w in words:
        assert w in msg, msg
    assert "out1" not in rep.shapes  # nothing downstream of the fault gets a made-up shape


def test_merge_shape_errors():
    spec = Spec(layers=[LayerSpec("in1", "Input"), LayerSpec("d1", "Dense", {"units": 3}), LayerSpec("d2", "Dense", {"units": 4}),
                        LayerSpec("add1", "Add"), LayerSpec("out1", "Output")],
                edges=[EdgeSpec("in1", "d1"), EdgeSpec("in1", "d2"), EdgeSpec("d1", "add1"), EdgeSpec("d2", "add1"),
                       EdgeSpec("add1", "out1")])
    rep = L.infer(spec, DataInfo("xor", (2,), 2, ["a", "b"]))
    assert "equal shapes but get 3, 4" in rep.node_errors["add1"]
    spec.layers[3].kind = "Concat"
    rep = L.infer(spec, DataInfo("xor", (2,), 2, ["a", "b"]))
    assert rep.ok and rep.shapes["add1"] == (7,) and rep.counts["out1"] == 7 * 2 + 2


def test_would_cycle_and_topological_order():
    spec = chain(("a", "Input", {}), ("b", "Dense", {}), ("c", "Dense", {}))
    assert L.would_cycle(spec, "c", "a") and L.would_cycle(spec, "b", "b") and not L.would_cycle(spec, "a", "c")
    order, cyclic = L.topo_order(spec)
    assert order == ["a", "b", "c"] and cyclic == set()
    spec.edges.append(EdgeSpec("c", "b"))
    assert L.topo_order(spec)[1] == {"b", "c"}


# ---- what the kernel lab needs: ceil mode, transposed convolution --------------------------------

@FAST
@given(kind=st.sampled_from(["MaxPool2d", "AvgPool2d"]), c=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 12),
       size=st.integers(1, 8), stride=st.integers(0, 8))
def test_pool_shapes_in_ceil_mode_match_torch(kind, c, h, w, size, stride):
    try:
        out, count, y, mod = run_kind(kind, {"size": size, "stride": stride, "ceil_mode": True}, [(c, h, w)])
    except L.ShapeError:
        assert size > min(h, w)
        return
    assert tuple(y.shape[1:]) == out
    ref = (F.max_pool2d if kind == "MaxPool2d" else F.avg_pool2d)
    x = torch.randn(2, c, h, w)
    assert torch.equal(mod(x), ref(x, size, stride or size, ceil_mode=True))


def test_ceil_mode_keeps_the_last_row_and_column_of_an_odd_side():
    out, _, y, _ = run_kind("MaxPool2d", {"size": 2, "ceil_mode": True}, [(1, 5, 5)])
    assert out == (1, 3, 3)
    out, _, _, _ = run_kind("MaxPool2d", {"size": 2}, [(1, 5, 5)])
    assert out == (1, 2, 2)


@FAST
@given(c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), filters=st.integers(1, 4), kernel=st.integers(1, 5),
       stride=st.integers(1, 4), padding=st.integers(0, 3), output_padding=st.integers(0, 3), bias=st.booleans())
def test_conv_transpose2d_shape_and_count_match_torch(c, h, w, filters, kernel, stride, padding, output_padding, bias):
    params = {"filters": filters, "kernel": kernel, "stride": stride, "padding": padding,
              "output_padding": output_padding, "bias": bias}
    try:
        out, count, y, mod = run_kind("ConvTranspose2d", params, [(c, h, w)])
    except L.ShapeError as exc:
        assert "output_padding" in str(exc) or "padding" in str(exc)
        # by hand: torch refuses (or would give an empty map) in exactly these cases
        assert output_padding >= stride or min((h - 1) * stride - 2 * padding + kernel + output_padding,
                                               (w - 1) * stride - 2 * padding + kernel + output_padding) < 1
        return
    assert tuple(y.shape[1:]) == out
    assert out[1:] == ((h - 1) * stride - 2 * padding + kernel + output_padding,
                       (w - 1) * stride - 2 * padding + kernel + output_padding)
    assert count == n_params(mod) == c * filters * kernel * kernel + (filters if bias else 0)
