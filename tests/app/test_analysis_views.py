"""The analysis views in the window, driven as a user drives them: embedding (PCA live, t-SNE on
demand, click a point), ROC/PR, the loss landscape, the what-if probe, ablation from the
canvas's context menu and each card's cost. Numbers are checked against independent references
(sklearn, a hand-built torch model from the fetched weights)."""
import os

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF

from app.training import TrainingController
from engine import datasets
from engine import spec as S
from tests.conftest import EXAMPLES

DONE = ("finished", "stopped", "diverged", "error")


@pytest.fixture
def trained(make_window, qtbot):
    """make(name, epochs) -> (window, controller) after training to the end with the analysis docks open."""

    def make(name="xor.json", epochs=30, docks=("embedding_dock",)):
        spec = S.load(os.path.join(EXAMPLES, name))
        spec.training.epochs = epochs
        spec.training.device = "cpu"
        win = make_window(spec, start_engine=True, features=(TrainingController,))
        qtbot.waitUntil(lambda: win.engine.ready, timeout=60000)
        for d in docks:
            win.docks[d].show()
            win.docks[d].raise_()
        ctl = win.training
        ctl.train()
        qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=120000)
        assert ctl.state == "finished"
        return win, ctl

    return make


def hand_model(spec, state):
    """The design as plain torch modules (not engine.build), loaded with the fetched weights."""
    net = {}
    for lay in spec.layers:
        if lay.kind in ("Dense", "Output"):
            w = torch.from_numpy(np.asarray(state[f"layers.{lay.id}.weight"]))
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(w)
                lin.bias.copy_(torch.from_numpy(np.asarray(state[f"layers.{lay.id}.bias"])))
            net[lay.id] = lin
        elif lay.kind == "Activation":
            net[lay.id] = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[lay.params["function"]]
    order = [lay.id for lay in spec.layers if lay.id in net]  # the examples list layers in chain order
    return net, order


def run_hand(net, order, x, hook=None):
    h = torch.from_numpy(np.asarray(x, np.float32))
    acts = {}
    for lid in order:
        h = net[lid](h)
        if hook is not None:
            h = hook(lid, h)
        acts[lid] = h
    return h, acts


def test_embedding_pca_matches_sklearn_then_tsne_and_click(trained, qtbot):
    from sklearn.decomposition import PCA

    win, ctl = trained()
    view = win.views.embedding
    qtbot.waitUntil(lambda: len(view.point_positions()) > 0, timeout=10000)
    run = ctl.model.run
    layer = ctl.model.snapshot.extras["embedding"]["layer"]
    assert layer == "act2"  # the layer before the Output, by default
    state = ctl.session.fetch_weights(run.run_id)
    data = datasets.load(run.spec.dataset)
    idx = ctl.model.snapshot.extras["embedding"]["index"]
    net, order = hand_model(run.spec, state)
    _, acts = run_hand(net, order, data.x_val[idx])
    ref = PCA(2).fit_transform(acts[layer].detach().numpy().astype(np.float64))
    shown = view.point_positions()
    for k in range(2):  # equal up to the sign of each axis
        sign = np.sign(np.dot(ref[:, k], shown[:, k]))
        np.testing.assert_allclose(shown[:, k], sign * ref[:, k], atol=1e-3)
    # t-SNE on demand: progress is reported, then the points are replaced
    view.method_combo.setCurrentIndex(1)
    assert view.job.start_button.isVisible()
    seen = []
    ctl.session.analysis_event.connect(lambda ev: seen.append(ev))
    view.job.start_button.click()
    assert view.job.cancel_button.isVisible() and not view.job.start_button.isEnabled()
    qtbot.waitUntil(lambda: "tsne" in ctl.analysis.last, timeout=120000)
    assert not ctl.analysis.last["tsne"].error
    fractions = [ev.fraction for ev in seen if type(ev).__name__ == "AnalysisProgress"]
    assert len(fractions) >= 2 and fractions == sorted(fractions) and fractions[-1] > 0.5
    assert "t-SNE" in view.caption.text() and view.job.start_button.isEnabled()
    tsne_pts = view.point_positions().copy()
    assert not np.allclose(np.abs(tsne_pts), np.abs(shown), atol=1e-2)
    # clicking a point shows that sample's features and label
    view.select_point(3)
    sample = int(idx[3])
    assert view.selected == sample
    text = view.sample_text.text()
    assert f"sample {sample}" in text and data.info.class_names[int(data.y_val[sample])] in text
    raw = data.raw_x_val[sample] if data.raw_x_val is not None else data.x_val[sample] * data.std + data.mean
    assert f"{raw[0]:.3g}" in text


def test_roc_and_pr_match_sklearn(trained, qtbot):
    from sklearn.metrics import average_precision_score, roc_auc_score

    win, ctl = trained("iris.json", epochs=15, docks=("roc_dock",))
    roc = win.views.roc
    qtbot.waitUntil(lambda: len(roc.aucs) == 3, timeout=10000)
    run = ctl.model.run
    state = ctl.session.fetch_weights(run.run_id)
    data = datasets.load(run.spec.dataset)
    net, order = hand_model(run.spec, state)
    out, _ = run_hand(net, order, data.x_val)
    proba = torch.softmax(out, 1).detach().numpy()
    for c in range(3):
        assert roc.aucs[c] == pytest.approx(roc_auc_score(data.y_val == c, proba[:, c]), abs=1e-6)
        assert roc.aps[c] == pytest.approx(average_precision_score(data.y_val == c, proba[:, c]), abs=1e-6)
    assert "one-vs-rest" in roc.summary.text()


def test_ablation_from_the_context_menu_changes_accuracy_as_computed_by_hand(trained, qtbot):
    win, ctl = trained(docks=())
    canvas = win.canvas
    node = canvas.node_item("dense1")
    menu = canvas.context_menu(node.scenePos())
    sub = next(a.menu() for a in menu.actions() if a.menu() is not None and "dense1" in a.text())
    titles = [a.text() for a in menu.actions()]
    assert "Select &All" in titles and "Auto-&Layout" in titles  # the usual actions are there too
    run = ctl.model.run
    state = ctl.session.fetch_weights(run.run_id)
    data = datasets.load(run.spec.dataset)
    net, order = hand_model(run.spec, state)
    out, _ = run_hand(net, order, data.x_val)
    acc0 = float((out.argmax(1).numpy() == data.y_val).mean())
    # which unit hurts most when switched off (by hand)
    deltas = []
    for u in range(8):
        def zero(lid, h, u=u):
            if lid == "dense1":
                h = h.clone()
                h[:, u] = 0
            return h
        o, _ = run_hand(net, order, data.x_val, zero)
        deltas.append(float((o.argmax(1).numpy() == data.y_val).mean()) - acc0)
    unit = int(np.argmin(deltas))
    next(a for a in sub.actions() if a.text().endswith(f"unit {unit}")).trigger()
    qtbot.waitUntil(lambda: "ablate" in ctl.analysis.last, timeout=10000)
    r = ctl.analysis.last["ablate"].result
    assert r["acc_before"] == pytest.approx(acc0)
    assert r["delta"] == pytest.approx(deltas[unit])
    expected = f"accuracy {100 * deltas[unit]:+.1f} %".replace("+-", "-")
    assert expected in canvas.totals_text()
    assert run.ablations == [("unit", "dense1", unit)]
    assert unit in node.ablated
    # switched on again from the same menu
    ctl.analysis.last.clear()
    sub = next(a.menu() for a in canvas.context_menu(node.scenePos()).actions() if a.menu() is not None)
    again = next(a for a in sub.actions() if a.text().startswith("Switch on again") and a.text().endswith(f"unit {unit}"))
    again.trigger()
    qtbot.waitUntil(lambda: "ablate" in ctl.analysis.last, timeout=10000)
    assert ctl.analysis.last["ablate"].result["masks"] == [] and "off:" not in canvas.totals_text()
    # a weight line: right-click it and switch that one connection off
    lines = canvas.weight_line_items("act1", "dense2")
    ends = np.array([[ln.line().x1(), ln.line().y1(), ln.line().x2(), ln.line().y2()] for ln in lines])
    mine = ends[2 * 8 + 3]  # weight dense2[2] <- act1[3]

    def gap(t):  # distance from the point at t along our line to the nearest other line
        p = mine[:2] + t * (mine[2:] - mine[:2])
        a, b = np.delete(ends[:, :2], 19, 0), np.delete(ends[:, 2:], 19, 0)
        u = np.clip(((p - a) * (b - a)).sum(1) / ((b - a) ** 2).sum(1), 0, 1)
        return np.linalg.norm(a + u[:, None] * (b - a) - p, axis=1).min()

    t = max(np.linspace(0.15, 0.85, 71), key=gap)  # where the user can click it without hitting another
    menu = canvas.context_menu(QPointF(*(mine[:2] + t * (mine[2:] - mine[:2]))))
    next(a for a in menu.actions() if "connection act1[3] → dense2[2]" in a.text()).trigger()
    ctl.analysis.last.clear()
    qtbot.waitUntil(lambda: "ablate" in ctl.analysis.last, timeout=10000)
    net["dense2"].weight.data[2, 3] = 0.0
    o, _ = run_hand(net, order, data.x_val)
    r = ctl.analysis.last["ablate"].result
    assert r["masks"] == [("link", "act1", "dense2", 3, 2)]
    assert r["delta"] == pytest.approx(float((o.argmax(1).numpy() == data.y_val).mean()) - acc0)
    # a unit tile on a card: right-click it
    strip = node.strip
    tile = strip.mapToScene(strip.tile_rect(5).center())
    assert any(a.text() == "Switch off unit 5 of dense1" for a in canvas.context_menu(tile).actions())
    # Reset forgets masks
    ctl.reset()
    assert canvas.ablated == set()


def test_probe_lights_up_the_cards_with_the_points_activations(trained, qtbot):
    win, ctl = trained(docks=())
    win.views.boundary.set_probe(0.7, -0.4)
    qtbot.waitUntil(lambda: win.canvas.node_item("dense1").probe is not None, timeout=10000)
    run = ctl.model.run
    state = ctl.session.fetch_weights(run.run_id)
    net, order = hand_model(run.spec, state)
    _, acts = run_hand(net, order, np.array([[0.7, -0.4]], np.float32))  # xor is 2-D: the plane is the input
    for lid in ("dense1", "act1", "dense2", "output1"):
        np.testing.assert_allclose(win.canvas.node_item(lid).probe, acts[lid][0].detach().numpy(), atol=1e-5)


def test_landscape_centre_is_the_current_loss_and_cancel_stops_it(trained, qtbot):
    from engine import landscape as LS

    win, ctl = trained(docks=("landscape_dock",))
    view = win.views.landscape
    view.job.start_button.click()
    qtbot.waitUntil(lambda: "landscape" in ctl.analysis.last, timeout=120000)
    r = ctl.analysis.last["landscape"].result
    assert view.result is r and "centre loss" in view.caption.text()
    run = ctl.model.run
    state = ctl.session.fetch_weights(run.run_id)
    data = datasets.load(run.spec.dataset)
    x, y = LS.subsample(data.x_train, data.y_train, r["n_samples"])
    net, order = hand_model(run.spec, state)
    out, _ = run_hand(net, order, x)
    ref = float(torch.nn.functional.cross_entropy(out.detach(), torch.from_numpy(y)))
    assert r["centre_loss"] == pytest.approx(ref, rel=1e-5)
    mid = len(r["coords"]) // 2
    assert r["loss"][mid, mid] == pytest.approx(ref, rel=1e-5)
    assert r["path"].shape[0] >= 3 and np.allclose(r["path"][-1], 0)
    assert r["line_loss"][np.argmin(np.abs(r["line_alpha"] - 1.0))] == pytest.approx(ref, rel=1e-3)
    # a big grid, cancelled: it stops and says so
    ctl.analysis.last.clear()
    job = ctl.analysis.start("landscape", {"res": 201, "budget": 1e9, "samples": 2048})
    assert job is not None
    qtbot.waitUntil(lambda: view.job.progress.value() > 0, timeout=60000)
    view.job.cancel_button.click()
    qtbot.waitUntil(lambda: "landscape" in ctl.analysis.last, timeout=30000)
    assert ctl.analysis.last["landscape"].error == "cancelled"
    assert "cancelled" in view.job.message.text() and view.job.start_button.isEnabled()


def test_cards_show_macs_and_measured_cost(trained, qtbot):
    win, ctl = trained(docks=())
    canvas = win.canvas
    qtbot.waitUntil(lambda: "cost" in ctl.analysis.last, timeout=10000)
    node = canvas.node_item("dense1")
    assert node.macs == 2 * 8  # xor: 2 inputs -> 8 units
    assert "16 MACs" in node.cost_text() and "%" in node.cost_text()
    shares = [canvas.node_item(lid).cost["time_share"] for lid in ("dense1", "act1", "dense2", "act2", "output1")]
    assert sum(shares) == pytest.approx(1.0, abs=1e-6)
    assert "MACs/sample" in canvas.totals_text() and "activations" in canvas.totals_text()


def test_drawing_on_the_pad_drives_every_layers_card(trained, qtbot):
    from PySide6.QtCore import QPoint, Qt

    win, ctl = trained("shapes_cnn.json", epochs=1, docks=("feature_maps_dock",))
    fm = win.views.feature_maps
    fm.set_drawing_mode(True)
    pad = fm.draw_pad
    qtbot.waitUntil(lambda: pad.isVisible() and pad.width() > 20, timeout=5000)
    r = pad._pad_rect()
    qtbot.mousePress(pad, Qt.MouseButton.LeftButton, pos=QPoint(r.left() + r.width() // 4, r.top() + r.height() // 2))
    qtbot.mouseMove(pad, QPoint(r.right() - r.width() // 4, r.top() + r.height() // 2))
    qtbot.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=QPoint(r.right() - r.width() // 4, r.top() + r.height() // 2))
    drawn = pad.image()
    assert drawn.any()
    node = win.canvas.node_item("conv1")
    data = ctl.model.data
    x = (drawn[None] - data.mean) / data.std  # standardised as the worker's data
    state = ctl.session.fetch_weights(ctl.model.run.run_id)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x[None].astype(np.float32)),
                                     torch.from_numpy(state["layers.conv1.weight"]),
                                     torch.from_numpy(state["layers.conv1.bias"]), padding=2)[0].mean(dim=(1, 2))

    def matches():
        return node.probe is not None and np.allclose(node.probe, ref.numpy(), atol=1e-4)

    qtbot.waitUntil(matches, timeout=10000)
    dense = next(lay.id for lay in ctl.model.run.spec.layers if lay.kind == "Dense")
    assert win.canvas.node_item(dense).probe is not None  # the drawing reaches the dense layers too
