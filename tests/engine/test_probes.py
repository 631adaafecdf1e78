"""Probes against independent references: hand-written torch, captum and sklearn."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from engine import datasets, probes, saliency
from engine.build import build
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec, TrainingSpec


def chain_spec(dataset: str, layers: list[tuple[str, str, dict]], loss: str = "cross_entropy",
               extra_edges: tuple[tuple[str, str], ...] = ()) -> Spec:
    """A design whose layers are wired in the given order, plus any extra edges."""
    spec = Spec(name="t", dataset=DatasetSpec(dataset), training=TrainingSpec(loss=loss, seed=3))
    spec.layers = [LayerSpec(lid, kind, params) for lid, kind, params in layers]
    spec.edges = [EdgeSpec(a[0], b[0]) for a, b in itertools.pairwise(layers)]
    spec.edges += [EdgeSpec(a, b) for a, b in extra_edges]
    return spec


def mlp(loss: str = "cross_entropy", dataset: str = "xor"):
    spec = chain_spec(dataset, [("input", "Input", {}), ("dense1", "Dense", {"units": 6}), ("bn1", "BatchNorm", {}),
                                ("act1", "Activation", {"function": "tanh"}), ("drop1", "Dropout", {"rate": 0.3}),
                                ("dense2", "Dense", {"units": 5}), ("act2", "Activation", {"function": "relu"}),
                                ("output", "Output", {})], loss)
    model = build(spec)
    _randomise_bn(model)
    return model


def cnn(channels: int = 1):
    """Input -> conv1 -> bn1 -> act1 -> pool1 -> conv2 -> act2 -> add1(pool1 + act2) -> flat -> output.

    channels=3 builds it for 3x8x8 colour inputs so channel reductions (max, sum) matter.
    """
    layers = [("input", "Input", {}), ("conv1", "Conv2d", {"filters": 4, "kernel": 3}), ("bn1", "BatchNorm", {}),
              ("act1", "Activation", {"function": "relu"}), ("pool1", "MaxPool2d", {}),
              ("conv2", "Conv2d", {"filters": 4, "kernel": 3}), ("act2", "Activation", {"function": "relu"}),
              ("add1", "Add", {}), ("flat", "Flatten", {}), ("output", "Output", {})]
    info = datasets.describe(DatasetSpec("digits"))
    info = datasets.DataInfo(info.kind, (channels, 8, 8), info.n_classes, info.class_names)
    model = build(chain_spec("digits", layers, extra_edges=(("pool1", "add1"),)), info)
    _randomise_bn(model)
    return model


def _randomise_bn(model) -> None:
    # non-trivial running statistics so eval mode and train mode give different numbers
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.fixture(scope="module")
def digits():
    return datasets.load(DatasetSpec("digits"))


@pytest.fixture(scope="module")
def xor_data():
    return datasets.load(DatasetSpec("xor", {"n_points": 200}))


def sample(digits, i: int = 3) -> np.ndarray:
    return digits.x_val[i]


def colour_sample(i: int) -> np.ndarray:
    return np.random.default_rng(i).normal(size=(3, 8, 8)).astype(np.float32)


# ---- probabilities ---------------------------------------------------------------------

def test_outputs_to_proba_follows_each_loss():
    z1 = torch.tensor([[-2.0], [0.0], [0.4], [3.0]])
    s = torch.sigmoid(z1)
    assert torch.allclose(probes.outputs_to_proba(z1, "bce"), torch.cat([1 - s, s], 1))
    p = z1.clamp(0, 1)
    assert torch.allclose(probes.outputs_to_proba(z1, "mse"), torch.cat([1 - p, p], 1))
    zk = torch.tensor([[1.0, 2.0, -1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -3.0]])
    assert torch.allclose(probes.outputs_to_proba(zk, "cross_entropy"), torch.nn.functional.softmax(zk, 1))
    sk = torch.sigmoid(zk)
    assert torch.allclose(probes.outputs_to_proba(zk, "bce"), sk / sk.sum(1, keepdim=True))
    m = probes.outputs_to_proba(zk, "mse")
    assert torch.allclose(m[0], torch.tensor([1.0, 1.0, 0.0]) / 2)
    assert torch.allclose(m[2], torch.full((3,), 1 / 3))  # all clamped to 0: no preference
    with pytest.raises(ValueError, match="hinge"):
        probes.outputs_to_proba(zk, "hinge")


def test_predict_batches_match_one_forward():
    model = mlp()
    x = np.random.default_rng(0).normal(size=(2500, 2)).astype(np.float32)
    proba, pred = probes.predict(model, x, "cross_entropy")
    model.eval()
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
    assert proba.shape == (2500, 2) and proba.dtype == np.float32 and pred.dtype == np.int64
    np.testing.assert_allclose(proba, ref, atol=1e-6)
    np.testing.assert_array_equal(pred, ref.argmax(1))


# ---- grids -----------------------------------------------------------------------------

def test_decision_grid_equals_hand_loop():
    model = mlp("bce")
    extent = (-2.0, 1.5, -1.0, 3.0)
    grid = probes.decision_grid(model, "bce", extent, res=30)
    xs, ys, _ = probes.grid_points(extent, 30)
    assert grid.shape == (30, 30, 2) and grid.dtype == np.float32
    model.eval()
    for i, j in [(0, 0), (0, 29), (29, 0), (12, 17), (29, 29)]:
        with torch.no_grad():
            z = model(torch.tensor([[xs[j], ys[i]]]))
        p1 = torch.sigmoid(z)[0, 0].item()
        np.testing.assert_allclose(grid[i, j], [1 - p1, p1], atol=1e-6)
    assert xs[0] == -2.0 and xs[-1] == 1.5 and ys[0] == -1.0 and ys[-1] == 3.0


def test_decision_grid_on_iris_holds_other_features_or_uses_pca():
    model = mlp(dataset="iris")
    model.eval()
    base = np.array([0.1, -0.2, 0.3, 0.4], np.float32)
    xs, ys, _ = probes.grid_points((-1, 1, -2, 2), 10)
    grid = probes.decision_grid(model, "cross_entropy", (-1, 1, -2, 2), res=10, base=base, dims=(2, 0))
    point = base.copy()
    point[2], point[0] = xs[7], ys[4]
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(point[None])), 1)[0].numpy()
    np.testing.assert_allclose(grid[4, 7], ref, atol=1e-6)

    x = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    mean, comps, _ = probes.pca_2d(x)
    grid = probes.decision_grid(model, "cross_entropy", (-1, 1, -2, 2), res=10, project=(mean, comps))
    point = mean + xs[3] * comps[0] + ys[8] * comps[1]
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(point[None])), 1)[0].numpy()
    np.testing.assert_allclose(grid[8, 3], ref, atol=1e-5)
    # a point on the plane projects back to its plane coordinates
    np.testing.assert_allclose(probes.project_points(point[None], (mean, comps))[0], [xs[3], ys[8]], atol=1e-5)
    np.testing.assert_array_equal(probes.project_points(x, (3, 1)), x[:, [3, 1]])


def test_pca_matches_sklearn_up_to_sign():
    from sklearn.decomposition import PCA

    x = datasets.load(DatasetSpec("iris")).x_train
    mean, comps, ratio = probes.pca_2d(x)
    ref = PCA(n_components=2).fit(x)
    np.testing.assert_allclose(mean, ref.mean_, atol=1e-5)
    np.testing.assert_allclose(ratio, ref.explained_variance_ratio_, atol=1e-5)
    for a, b in zip(comps, ref.components_, strict=True):
        np.testing.assert_allclose(a * np.sign(a @ b), b, atol=1e-4)


def test_neuron_maps_equal_manual_linear_evaluation():
    model = mlp()
    extent = (-1.5, 1.5, -1.0, 2.0)
    maps = probes.neuron_maps(model, "cross_entropy", extent, res=12)
    assert list(maps) == ["dense1", "act1", "dense2", "act2"]
    assert maps["dense1"].shape == (6, 12, 12) and maps["dense2"].shape == (5, 12, 12)
    xs, ys, _ = probes.grid_points(extent, 12)
    lin1, bn, lin2 = model.layers["dense1"], model.layers["bn1"], model.layers["dense2"]
    with torch.no_grad():
        for i, j in [(0, 0), (5, 9), (11, 3)]:
            p = torch.tensor([xs[j], ys[i]])
            h1 = lin1.weight @ p + lin1.bias
            a1 = torch.tanh((h1 - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias)
            h2 = lin2.weight @ a1 + lin2.bias
            np.testing.assert_allclose(maps["dense1"][:, i, j], h1.numpy(), atol=1e-5)
            np.testing.assert_allclose(maps["act1"][:, i, j], a1.numpy(), atol=1e-5)
            np.testing.assert_allclose(maps["dense2"][:, i, j], h2.numpy(), atol=1e-5)
            np.testing.assert_allclose(maps["act2"][:, i, j], torch.relu(h2).numpy(), atol=1e-5)


def test_decision_grid_refuses_image_models():
    with pytest.raises(ValueError, match="flat"):
        probes.decision_grid(cnn(), "cross_entropy")


# ---- weights and maps ------------------------------------------------------------------

def test_weights_and_filters_are_the_module_weights():
    model = mlp()
    w = probes.dense_weights(model)
    assert list(w) == ["dense1", "dense2", "output"]
    for lid, arr in w.items():
        np.testing.assert_array_equal(arr, model.layers[lid].weight.detach().numpy())
    net = cnn()
    f = probes.conv_filters(net)
    assert list(f) == ["conv1", "conv2"] and f["conv1"].shape == (4, 1, 3, 3) and f["conv2"].shape == (4, 4, 3, 3)
    for lid, arr in f.items():
        np.testing.assert_array_equal(arr, net.layers[lid].weight.detach().numpy())
    f["conv1"][:] = 0  # a copy: the GUI cannot scribble on the model
    assert net.layers["conv1"].weight.abs().sum() > 0


def test_feature_maps_equal_forward_hooks(digits):
    net = cnn()
    net.eval()
    seen = {}
    hooks = [net.layers[lid].register_forward_hook(lambda m, i, o, lid=lid: seen.__setitem__(lid, o.detach().clone()))
             for lid in net.layers]
    x = sample(digits)
    with torch.no_grad():
        net(torch.from_numpy(x[None]))
    for h in hooks:
        h.remove()
    net.train()
    maps = probes.feature_maps(net, x)
    assert list(maps) == ["conv1", "bn1", "act1", "pool1", "conv2", "act2", "add1"]
    for lid, arr in maps.items():
        np.testing.assert_allclose(arr, seen[lid][0].numpy(), atol=1e-6)
    assert maps["pool1"].shape == (4, 4, 4)
    assert probes.feature_maps(net, x[0])["conv1"].shape == (4, 8, 8)  # a drawn (H, W) digit works too
    with pytest.raises(ValueError, match="expects 1x8x8"):
        probes.feature_maps(net, np.zeros((1, 7, 7)))


# ---- saliency --------------------------------------------------------------------------

def test_vanilla_gradient_matches_captum_saliency():
    from captum.attr import Saliency

    net = cnn(3)
    net.eval()
    x = colour_sample(0)
    for target in (0, 7):
        ours = saliency.saliency(net, x, target, "gradient")
        xt = torch.from_numpy(x[None]).requires_grad_(True)
        ref = Saliency(net).attribute(xt, target=target, abs=True)[0].amax(0).numpy()
        assert ours.shape == (8, 8) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, atol=1e-7)


def test_one_unit_head_scores_class0_as_negative_logit():
    model = mlp("bce")
    model.eval()
    x = np.array([0.3, -0.8], np.float32)
    xt = torch.from_numpy(x[None]).requires_grad_(True)
    (g,) = torch.autograd.grad(model(xt)[0, 0], xt)
    np.testing.assert_allclose(saliency.saliency(model, x, 1, "gradient"), g[0].abs().numpy(), atol=1e-7)
    np.testing.assert_allclose(saliency.input_gradient(model, x, 0), -g[0].numpy(), atol=1e-7)
    ig1 = saliency.saliency(model, x, 1, "integrated_gradients")
    assert ig1.shape == (2,)  # flat inputs give one value per feature
    np.testing.assert_allclose(saliency.saliency(model, x, 0, "integrated_gradients"), -ig1, atol=1e-6)
    with pytest.raises(ValueError, match="0..1"):
        saliency.saliency(model, x, 2, "gradient")


def test_gradcam_explains_bad_layers(digits):
    with pytest.raises(ValueError, match="flat.*conv1|not an image layer.*conv1"):
        saliency.saliency(cnn(), sample(digits), 0, "gradcam", layer_id="flat")
    with pytest.raises(ValueError, match="image inputs"):
        saliency.saliency(mlp(), np.zeros(2, np.float32), 0, "gradcam")
    with pytest.raises(ValueError, match="unknown.*gradient"):
        saliency.saliency(mlp(), np.zeros(2, np.float32), 0, "lime")


# ---- the model is left alone -----------------------------------------------------------

def test_probes_leave_model_grad_rng_and_mode_untouched(digits, xor_data):
    net, model = cnn(), mlp()
    for m in (net, model):
        m.train()
        m.layers["output"].weight.grad = torch.full_like(m.layers["output"].weight, 0.25)
    net.layers["act1"].eval()  # a mixed mode must come back exactly
    modes = {m: [mod.training for mod in m.modules()] for m in (net, model)}
    states = {m: {k: v.clone() for k, v in m.state_dict().items()} for m in (net, model)}
    torch.manual_seed(99)
    rng = torch.get_rng_state()
    x = sample(digits)
    calls = [lambda: probes.feature_maps(net, x), lambda: probes.conv_filters(net),
             lambda: probes.confusion(net, digits.x_val, digits.y_val, "cross_entropy", 10),
             lambda: probes.decision_grid(model, "cross_entropy", res=20),
             lambda: probes.neuron_maps(model, "cross_entropy", res=10),
             lambda: probes.predict(model, xor_data.x_val, "cross_entropy"),
             lambda: saliency.saliency(model, xor_data.x_val[0], 1, "gradient"),
             lambda: saliency.saliency(model, xor_data.x_val[0], 1, "smoothgrad")]
    calls += [lambda m=m: saliency.saliency(net, x, 2, m) for m in saliency.SALIENCY_METHODS]
    calls += [lambda: probes.Prober(digits, "cross_entropy", {"saliency": {"method": "integrated_gradients"}})(net)]
    for call in calls:
        call()
    assert torch.equal(torch.get_rng_state(), rng)
    for m in (net, model):
        assert [mod.training for mod in m.modules()] == modes[m]
        for k, v in m.state_dict().items():
            assert torch.equal(v, states[m][k]), k  # weights and BatchNorm running statistics
        assert all(p.grad is None for n, p in m.named_parameters() if not n.startswith("layers.output.weight"))
        assert torch.equal(m.layers["output"].weight.grad, torch.full_like(m.layers["output"].weight, 0.25))


# ---- confusion -------------------------------------------------------------------------

def test_confusion_matches_sklearn(digits):
    from sklearn.metrics import confusion_matrix

    net = cnn()
    res = probes.confusion(net, digits.x_val, digits.y_val, "cross_entropy", 10)
    proba, pred = probes.predict(net, digits.x_val, "cross_entropy")
    ref = confusion_matrix(digits.y_val, pred, labels=range(10))
    np.testing.assert_array_equal(res["matrix"], ref)
    assert res["matrix"].dtype == np.int64
    np.testing.assert_array_equal(res["predicted"], pred)
    assert res["accuracy"] == pytest.approx((pred == digits.y_val).mean())
    np.testing.assert_allclose(res["per_class_accuracy"], ref.diagonal() / ref.sum(1), atol=1e-6)
    mis = res["misclassified"]
    assert 0 < len(mis) <= 64 and (pred[mis] != digits.y_val[mis]).all()
    conf = proba[mis, pred[mis]]
    assert (np.diff(conf) <= 1e-7).all()  # most confident mistakes first
    wrong = np.flatnonzero(pred != digits.y_val)
    assert conf[0] == pytest.approx(proba[wrong, pred[wrong]].max())


# ---- Prober ----------------------------------------------------------------------------

def _walk(value, path="result"):
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), path
            _walk(v, f"{path}.{k}")
    else:
        assert isinstance(value, (np.ndarray, int, float, bool, str, type(None))), f"{path} is {type(value)}"


def test_prober_on_xor_gives_boundary_neurons_weights(xor_data):
    model = mlp()
    out = probes.Prober(xor_data, "cross_entropy", {"grid_res": 50})(model)
    _walk(out)
    assert out["boundary"].shape == (50, 50, 2)
    xmin, xmax, ymin, ymax = out["boundary_extent"]
    both = np.concatenate([xor_data.x_train, xor_data.x_val])
    assert xmin < both[:, 0].min() and xmax > both[:, 0].max() and ymin < both[:, 1].min() and ymax > both[:, 1].max()
    np.testing.assert_array_equal(out["points_train"], xor_data.x_train)
    np.testing.assert_allclose(out["boundary"], probes.decision_grid(model, "cross_entropy", out["boundary_extent"], 50))
    assert set(out["neurons"]) == {"dense1", "act1", "dense2", "act2"} and set(out["weights"]) == {"dense1", "dense2", "output"}
    assert "filters" not in out and "feature_maps" not in out and out["problems"] == {}
    assert out["confusion"]["matrix"].sum() == len(xor_data.y_val)
    assert out["proba"].shape == (2,) and out["saliency_input"].shape == (2,)
    pca = probes.Prober(xor_data, "cross_entropy", {"dims": "pca", "neurons": False})(model)  # 2-D data: the plane is the data
    np.testing.assert_array_equal(pca["points_val"], xor_data.x_val)
    assert pca["boundary_xlabel"] == "x1"


def test_prober_on_iris_uses_pca_plane():
    data = datasets.load(DatasetSpec("iris"))
    prober = probes.Prober(data, "cross_entropy", {"neurons": False})
    out = prober(mlp(dataset="iris"))
    mean, comps, _ = probes.pca_2d(data.x_train)
    np.testing.assert_allclose(out["points_val"], probes.project_points(data.x_val, (mean, comps)), atol=1e-5)
    assert out["boundary"].shape == (100, 100, 3) and out["boundary_xlabel"].startswith("PC1")
    prober.options = {"dims": (2, 3), "grid_res": 20}
    out = prober(mlp(dataset="iris"))
    np.testing.assert_array_equal(out["points_train"], data.x_train[:, [2, 3]])
    assert out["boundary_xlabel"] == "petal length" and out["boundary"].shape == (20, 20, 3)


def test_prober_on_images_skips_boundary_and_reports_bad_choices(digits):
    net = cnn()
    prober = probes.Prober(digits, "cross_entropy",
                           {"feature_sample": 4, "saliency": {"method": "gradient", "target": None}})
    out = prober(net)
    _walk(out)
    assert "boundary" not in out and "neurons" not in out and "points_train" not in out
    assert set(out["filters"]) == {"conv1", "conv2"} and list(out["feature_maps"])[0] == "conv1"
    np.testing.assert_array_equal(out["saliency_input"], digits.x_val[4])
    assert out["saliency_target"] == out["pred"] == int(np.argmax(out["proba"]))
    np.testing.assert_allclose(out["saliency"], saliency.saliency(net, digits.x_val[4], out["pred"], "gradient"))
    assert out["confusion"]["matrix"].shape == (10, 10)
    # a drawn digit and a layer Grad-CAM cannot use: the rest still arrives, the problem is named
    drawn = np.zeros((1, 8, 8), np.float32)
    prober.options = {"feature_sample": drawn, "saliency": {"method": "gradcam", "layer": "flat"}}
    out = prober(net)
    _walk(out)
    assert "flat" in out["problems"]["saliency"] and "feature_maps" in out and "filters" in out
    prober.options = {"saliency": "gradient", "dims": "nonsense"}  # malformed options from a buggy dock
    out = prober(net)
    assert "saliency" in out["problems"] and "filters" in out


def test_prober_rate_limits_slow_saliency_but_not_new_choices(digits):
    net = cnn()
    prober = probes.Prober(digits, "cross_entropy", {"confusion": False, "filters": False, "slow_interval": 60,
                                                     "saliency": {"method": "integrated_gradients", "target": 1}})
    first = prober(net)["saliency"]
    with torch.no_grad():
        net.layers["output"].weight.mul_(-1)  # training moved on, but within the interval the cached map is kept
    assert prober(net)["saliency"] is first
    prober.options = {**prober.options, "saliency": {"method": "integrated_gradients", "target": 2}}
    second = prober(net)["saliency"]
    assert second is not first
    np.testing.assert_allclose(second, saliency.saliency(net, digits.x_val[0], 2, "integrated_gradients"), atol=1e-6)


def test_prober_keeps_to_its_time_budget_but_force_and_new_options_recompute(xor_data, monkeypatch):
    clock = [100.0]

    def tick() -> float:  # every reading advances 10 ms, so each part seems to take 10 ms
        clock[0] += 0.01
        return clock[0]

    monkeypatch.setattr(probes.time, "perf_counter", tick)
    model = mlp()
    prober = probes.Prober(xor_data, "cross_entropy", {"grid_res": 20, "neurons": False, "feature_sample": None,
                                                       "confusion": False})
    first = prober(model)
    with torch.no_grad():
        model.layers["output"].bias.add_(5.0)  # a visible change in the boundary
        model.layers["output"].weight.mul_(2.0)
    again = prober(model)
    assert again["boundary"] is first["boundary"]  # 10 ms ago, and computing took 10 ms: over budget
    np.testing.assert_array_equal(again["weights"]["output"], 2 * first["weights"]["output"])  # cheap parts: always fresh
    forced = prober(model, force=True)["boundary"]
    np.testing.assert_allclose(forced, probes.decision_grid(model, "cross_entropy", first["boundary_extent"], 20))
    assert not np.allclose(forced, first["boundary"])
    clock[0] += 10.0  # long enough: the budget allows a fresh grid again
    assert prober(model)["boundary"] is not forced
    prober.options = {**prober.options, "grid_res": 30}
    assert prober(model)["boundary"].shape == (30, 30, 2)
