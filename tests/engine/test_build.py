"""Spec -> nn.Module: checked against hand-written torch (nn.Sequential and a functional forward)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine import layers as L
from engine.build import GraphNet, build
from engine.datasets import DataInfo
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec, SpecError, TrainingSpec

XOR = DataInfo("xor", (2,), 2, ["class 0", "class 1"])
DIGITS = DataInfo("digits", (1, 8, 8), 10, [str(i) for i in range(10)])


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models on 2 busy cores: extra torch threads only wait for each other (30 s instead of 2 s)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def chain(dataset: str, seed: int, *layers: tuple[str, str, dict]) -> Spec:
    lays = [LayerSpec(i, k, p) for i, k, p in layers]
    return Spec(dataset=DatasetSpec(dataset), layers=lays, training=TrainingSpec(seed=seed),
                edges=[EdgeSpec(a.id, b.id) for a, b in zip(lays, lays[1:], strict=False)])


def mlp(seed: int = 5) -> Spec:
    return chain("xor", seed, ("in1", "Input", {}), ("dense1", "Dense", {"units": 8}),
                 ("act1", "Activation", {"function": "tanh"}), ("dense2", "Dense", {"units": 4}),
                 ("act2", "Activation", {"function": "relu"}), ("out1", "Output", {}))


def cnn(seed: int = 2) -> Spec:
    return chain("digits", seed, ("in1", "Input", {}), ("conv1", "Conv2d", {"filters": 4, "kernel": 3}),
                 ("act1", "Activation", {"function": "relu"}), ("pool1", "MaxPool2d", {"size": 2}),
                 ("bn1", "BatchNorm", {}), ("drop1", "Dropout", {"rate": 0.25}), ("flat1", "Flatten", {}),
                 ("dense1", "Dense", {"units": 16}), ("act2", "Activation", {"function": "elu"}), ("out1", "Output", {}))


def test_mlp_equals_a_hand_written_sequential_on_the_same_seed():
    net = build(mlp(seed=5), XOR)
    torch.manual_seed(5)
    ref = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(32, 2)
    assert torch.equal(net(x), ref(x))
    assert [k for k in net.state_dict()] == ["layers.dense1.weight", "layers.dense1.bias", "layers.dense2.weight",
                                             "layers.dense2.bias", "layers.out1.weight", "layers.out1.bias"]


def test_cnn_equals_a_hand_written_sequential_in_train_and_eval_mode():
    net = build(cnn(seed=2), DIGITS)
    torch.manual_seed(2)
    ref = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2), nn.BatchNorm2d(4, momentum=0.1),
                        nn.Dropout(0.25), nn.Flatten(), nn.Linear(64, 16), nn.ELU(), nn.Linear(16, 10))
    x = torch.randn(8, 1, 8, 8)
    for _ in range(2):  # dropout masks drawn from the same RNG state; BatchNorm running stats move alike
        torch.manual_seed(7)
        a = net(x)
        torch.manual_seed(7)
        assert torch.equal(a, ref(x))
    assert torch.equal(net.layers["bn1"].running_mean, ref[3].running_mean)
    net.eval()
    ref.eval()
    assert torch.equal(net(x), ref(x))


def test_same_seed_same_weights_different_seed_different_weights():
    a, b, c = build(cnn(seed=1), DIGITS), build(cnn(seed=1), DIGITS), build(cnn(seed=2), DIGITS)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["layers.conv1.weight"], sc["layers.conv1.weight"])
    d = build(cnn(seed=1), DIGITS, seed=2)  # explicit seed wins over the design's
    assert torch.equal(d.state_dict()["layers.dense1.weight"], sc["layers.dense1.weight"])


def test_the_order_layers_are_listed_in_does_not_change_the_model():
    spec = mlp(seed=3)
    shuffled = spec.copy()
    shuffled.layers = [shuffled.layers[i] for i in (5, 2, 0, 4, 1, 3)]
    shuffled.edges.reverse()
    a, b = build(spec, XOR), build(shuffled, XOR)
    x = torch.randn(5, 2)
    assert b.order == ["in1", "dense1", "act1", "dense2", "act2", "out1"]
    assert torch.equal(a(x), b(x))


def residual_concat() -> Spec:
    """in1 -> dense1 -> act1 -> dense2; add1 = act1 + dense2; cat1 = [add1, in1]; norm1; out1."""
    lays = [LayerSpec("in1", "Input"), LayerSpec("dense1", "Dense", {"units": 8}), LayerSpec("act1", "Activation"),
            LayerSpec("dense2", "Dense", {"units": 8}), LayerSpec("add1", "Add"), LayerSpec("cat1", "Concat"),
            LayerSpec("norm1", "LayerNorm"), LayerSpec("out1", "Output")]
    edges = [("in1", "dense1"), ("dense1", "act1"), ("act1", "dense2"), ("act1", "add1"), ("dense2", "add1"),
             ("add1", "cat1"), ("in1", "cat1"), ("cat1", "norm1"), ("norm1", "out1")]
    return Spec(dataset=DatasetSpec("gaussians", {"classes": 3}), layers=lays, edges=[EdgeSpec(a, b) for a, b in edges],
                training=TrainingSpec(seed=9))


def test_residual_add_and_concat_match_a_hand_written_forward_with_the_built_weights():
    info = DataInfo("gaussians", (2,), 3, ["a", "b", "c"])
    net = build(residual_concat(), info)
    p = {k: v.detach() for k, v in net.state_dict().items()}
    x = torch.randn(16, 2)
    h1 = F.relu(F.linear(x, p["layers.dense1.weight"], p["layers.dense1.bias"]))
    h2 = F.linear(h1, p["layers.dense2.weight"], p["layers.dense2.bias"])
    cat = torch.cat([h1 + h2, x], dim=1)  # concat follows the order the edges were drawn in
    normed = F.layer_norm(cat, (10,), p["layers.norm1.weight"], p["layers.norm1.bias"])
    want = F.linear(normed, p["layers.out1.weight"], p["layers.out1.bias"])
    with torch.no_grad():
        assert torch.equal(net(x), want)
        vals = net.forward_all(x)
    assert set(vals) == {lay.id for lay in residual_concat().layers}
    assert torch.equal(vals["cat1"], cat)
    for lid, v in vals.items():
        assert tuple(v.shape[1:]) == net.shapes[lid], lid


def test_a_residual_conv_block_matches_a_hand_written_forward():
    lays = [LayerSpec("in1", "Input"), LayerSpec("conv1", "Conv2d", {"filters": 3}), LayerSpec("conv2", "Conv2d", {"filters": 3}),
            LayerSpec("add1", "Add"), LayerSpec("gap1", "GlobalAvgPool"), LayerSpec("out1", "Output")]
    edges = [("in1", "conv1"), ("conv1", "conv2"), ("conv1", "add1"), ("conv2", "add1"), ("add1", "gap1"), ("gap1", "out1")]
    spec = Spec(dataset=DatasetSpec("digits"), layers=lays, edges=[EdgeSpec(a, b) for a, b in edges])
    net = build(spec, DIGITS)
    p = {k: v.detach() for k, v in net.state_dict().items()}
    x = torch.randn(4, 1, 8, 8)
    c1 = F.conv2d(x, p["layers.conv1.weight"], p["layers.conv1.bias"], padding=1)
    c2 = F.conv2d(c1, p["layers.conv2.weight"], p["layers.conv2.bias"], padding=1)
    want = F.linear((c1 + c2).mean(dim=(2, 3)), p["layers.out1.weight"], p["layers.out1.bias"])
    with torch.no_grad():
        assert torch.allclose(net(x), want, atol=1e-6)


def test_parameter_counts_from_inference_equal_the_built_module():
    for spec, info in [(cnn(), DIGITS), (mlp(), XOR), (residual_concat(), DataInfo("g", (2,), 3, ["a", "b", "c"]))]:
        net = build(spec, info)
        rep = L.infer(spec, info)
        assert rep.total_params == sum(p.numel() for p in net.parameters())
        for lid, mod in net.layers.items():
            assert rep.counts[lid] == sum(p.numel() for p in mod.parameters()), lid


def test_an_invalid_design_is_refused_with_every_problem():
    spec = mlp()
    spec.layers[1].params["units"] = 0
    spec.edges.append(EdgeSpec("in1", "ghost"))
    spec.training.optimizer = "lbfgs"
    with pytest.raises(SpecError) as exc:
        build(spec, XOR)
    assert {p.where for p in exc.value.problems} == {"dense1", "edge in1->ghost", "training.optimizer"}


def test_build_without_data_info_describes_the_dataset_itself():
    net = build(cnn())
    assert isinstance(net, GraphNet) and net.shapes["in1"] == (1, 8, 8) and net.shapes["out1"] == (10,)
    assert net.kinds["conv1"] == "Conv2d" and net.order[0] == "in1"
