"""engine.analysis / costs / jobs / landscape against independent references: hand counts,
sklearn's metrics, weights zeroed by hand."""
import threading

import numpy as np
import pytest
import torch

from engine import analysis as A
from engine import costs
from engine import layers as L
from engine.datasets.base import DataInfo
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec


def test_macs_match_a_hand_count_for_dense_and_conv():
    assert costs.layer_macs("Dense", [(5,)], (7,), {"units": 7}) == 5 * 7
    # 3x8x8 image, 4 filters 3x3, 'same': every one of the 4*8*8 outputs sums 3*3*3 products
    assert costs.layer_macs("Conv2d", [(3, 8, 8)], (4, 8, 8), {"kernel": 3}) == 4 * 8 * 8 * 27
    spec = Spec(dataset=DatasetSpec("shapes", {}))
    chain = [("in", "Input", {}), ("c", "Conv2d", {"filters": 4, "kernel": 3, "stride": 2, "padding": "valid"}),
             ("f", "Flatten", {}), ("d", "Dense", {"units": 6}), ("out", "Output", {})]
    spec.layers = [LayerSpec(i, k, p) for i, k, p in chain]
    spec.edges = [EdgeSpec(a[0], b[0]) for a, b in zip(chain, chain[1:], strict=False)]
    rep = L.infer(spec, DataInfo("x", (3, 9, 9), 3, ["a", "b", "c"]))
    m = costs.design_macs(spec, rep)
    # valid 3x3 stride 2 on 9x9 -> 4x4 positions, 4 filters, 27 products each; then 64 -> 6 -> 3
    assert m["c"] == 4 * 4 * 4 * 27 and m["d"] == 64 * 6 and m["out"] == 6 * 3 and m["f"] == 0


def test_roc_and_pr_equal_sklearn():
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + 1.5 * np.eye(3)[y]
    logits[:40] = np.round(logits[:40], 1)  # ties among the scores
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    r = A.roc_pr(proba, y)
    for c, cur in enumerate(r["curves"]):
        fpr, tpr, _ = roc_curve(y == c, proba[:, c], drop_intermediate=False)
        np.testing.assert_allclose(cur["fpr"], fpr, atol=1e-6)
        np.testing.assert_allclose(cur["tpr"], tpr, atol=1e-6)
        assert cur["auc"] == pytest.approx(roc_auc_score(y == c, proba[:, c]))
        assert cur["ap"] == pytest.approx(average_precision_score(y == c, proba[:, c]))
    binary = A.roc_pr(proba[:, :2] / proba[:, :2].sum(1, keepdims=True), (y == 1).astype(int))
    assert list(binary["classes"]) == [1] and len(binary["curves"]) == 1


def test_pca_embedding_equals_sklearn_up_to_sign():
    from sklearn.decomposition import PCA

    a = np.random.default_rng(1).normal(size=(200, 6)) @ np.diag([5, 3, 1, 0.5, 0.2, 0.1])
    pts, ratio = A.pca2(a)
    ref = PCA(2).fit(a)
    proj = ref.transform(a)
    for k in range(2):
        np.testing.assert_allclose(np.abs(pts[:, k]), np.abs(proj[:, k]), atol=1e-4)
    np.testing.assert_allclose(ratio, ref.explained_variance_ratio_, atol=1e-6)


def _mlp():
    spec = Spec()
    chain = [("in", "Input", {}), ("d1", "Dense", {"units": 4}), ("a1", "Activation", {"function": "relu"}),
             ("d2", "Dense", {"units": 3}), ("out", "Output", {})]
    spec.layers = [LayerSpec(i, k, p) for i, k, p in chain]
    spec.edges = [EdgeSpec(a[0], b[0]) for a, b in zip(chain, chain[1:], strict=False)]
    from engine.build import build

    return build(spec, DataInfo("x", (5,), 2, ["a", "b"]), seed=3)


def test_connection_and_unit_masks_equal_weights_zeroed_by_hand():
    model = _mlp()
    x = torch.randn(16, 5)
    ab = A.Ablations()
    ab.toggle(model, A.mask_key({"src": "a1", "dst": "d2", "i": 2, "j": 1}))
    ab.toggle(model, A.mask_key({"layer": "d1", "unit": 0}))
    with torch.no_grad():
        got = model(x)
        w1, b1 = model.layers["d1"].weight.clone(), model.layers["d1"].bias.clone()
        w2, b2 = model.layers["d2"].weight.clone(), model.layers["d2"].bias.clone()
        w1[0], b1[0] = 0, 0
        w2[1, 2] = 0
        h = torch.relu(x @ w1.T + b1) @ w2.T + b2
        ref = model.layers["out"](h)
    torch.testing.assert_close(got, ref)
    with pytest.raises(ValueError, match="unit 9"):
        ab.toggle(model, A.mask_key({"layer": "d1", "unit": 9}))
    ab.clear(model)
    with torch.no_grad():
        assert not torch.allclose(model(x), got)


def test_probe_gives_every_layers_values_and_channel_means_for_images():
    model = _mlp()
    x = np.random.default_rng(2).normal(size=5).astype(np.float32)
    acts = A.probe_activations(model, x)
    with torch.no_grad():
        ref = model.forward_all(torch.from_numpy(x[None]))
    for lid in ("d1", "a1", "d2", "out"):
        np.testing.assert_allclose(acts[lid], ref[lid][0].numpy(), atol=1e-6)


def test_tsne_reports_progress_and_cancels():
    from engine import jobs

    acts = np.random.default_rng(0).normal(size=(80, 5)).astype(np.float32)
    seen = []
    pts = jobs.tsne(acts, lambda f, m: seen.append(f), lambda: False, max_iter=250)
    assert pts.shape == (80, 2) and np.isfinite(pts).all()
    assert len(seen) >= 100 and seen == sorted(seen) and seen[-1] > 0.9
    stop = threading.Event()

    def progress(f, m):
        if f > 0.1:
            stop.set()

    with pytest.raises(jobs.JobCancelled):
        jobs.tsne(acts, progress, stop.is_set, max_iter=1000)


def test_layer_costs_share_forward_time_and_count_activation_memory():
    model = _mlp()
    c = A.layer_costs(model, np.zeros((8, 5), np.float32), repeats=2)
    assert sum(v["time_share"] for v in c.values()) == pytest.approx(1.0)
    assert c["d1"]["act_bytes"] == 4 * 4 and c["out"]["act_bytes"] == 2 * 4


def test_landscape_along_the_paths_principal_directions_shows_the_path():
    from engine import landscape as LS
    from engine import spec as S
    from engine.trainer import Trainer
    from tests.conftest import EXAMPLES

    spec = S.load(f"{EXAMPLES}/xor.json")
    spec.training.epochs, spec.training.device = 8, "cpu"
    tr = Trainer(spec)
    trail = LS.Trail()
    trail.observe(tr.model, -1)
    tr.on_snapshot = lambda snap: trail.observe(tr.model, snap.epoch)
    tr.run()
    x, y = LS.subsample(tr.data.x_train, tr.data.y_train, 256)
    start = trail.snapshot()[0][1]
    r = LS.landscape(tr.model, x, y, tr.loss, trail.snapshot(), res=7, along="path")
    span = float(r["coords"][-1])
    # the initial weights sit inside the slice and far from the centre, at their true distance when
    # the two directions hold (nearly) all of the path
    assert 0.3 * span < float(np.abs(r["path"][0]).max()) <= span
    dist = np.linalg.norm(start - LS.flat_params(tr.model))
    assert np.linalg.norm(r["path"][0]) <= dist + 1e-4
    assert r["path_ratio"].sum() > 0.5
    with torch.no_grad():
        ref = float(torch.nn.functional.cross_entropy(tr.model.eval()(torch.from_numpy(x)), torch.from_numpy(y)))
    assert r["centre_loss"] == pytest.approx(ref, rel=1e-6)
    with pytest.raises(ValueError, match="directions"):
        LS.landscape(tr.model, x, y, tr.loss, trail.snapshot(), res=7, along="sideways")
