"""Gradient flow, update ratios, health badges and histograms, measured on real short runs."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from engine import datasets, health
from engine import spec as S
from engine.build import build
from engine.diagnostics import HIST_BINS, MAX_COLUMNS, Diagnostics
from engine.model_utils import state_to_numpy
from engine.probes import Prober
from engine.trainer import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIET = {"boundary": False, "neurons": False, "weights": False, "confusion": False}  # only what is tested


def example(name: str) -> S.Spec:
    return S.load(os.path.join(ROOT, "assets", "examples", f"{name}.json"))


def train(spec: S.Spec, epochs: int | None = None, max_rate: float = 30.0, **options):
    data = datasets.load(spec.dataset)
    prober = Prober(data, spec.training.loss, {**QUIET, **options})
    snaps = []
    trainer = Trainer(spec, data, device="cpu", epochs=epochs, probe=prober, max_rate=max_rate, on_snapshot=snaps.append)
    result = trainer.run()
    return trainer, snaps[-1], result


def mlp(act: str, lr: float, init: str = "default", value: float = 0.05, epochs: int = 5) -> S.Spec:
    spec = S.Spec(name="health test")
    spec.dataset = S.DatasetSpec("moons", {"n_points": 600, "noise": 0.15})
    dense = {"units": 32, "init": init, "init_value": value}
    spec.layers = [S.LayerSpec("in", "Input"), S.LayerSpec("d1", "Dense", dense),
                   S.LayerSpec("a1", "Activation", {"function": act}), S.LayerSpec("d2", "Dense", dense),
                   S.LayerSpec("a2", "Activation", {"function": act}), S.LayerSpec("out", "Output")]
    ids = [lay.id for lay in spec.layers]
    spec.edges = [S.EdgeSpec(a, b) for a, b in zip(ids, ids[1:], strict=False)]
    t = spec.training
    t.optimizer, t.lr, t.momentum, t.epochs = "sgd", lr, 0.0, epochs
    return spec


def codes(snap) -> dict[str, set[str]]:
    return {lid: {b[0] for b in badges} for lid, badges in snap.extras["health"].items()}


# ---- gradient flow on the two deep examples ---------------------------------------------------

def _first_last(grads) -> tuple[float, float]:
    layers = grads["layers"]
    norms = np.nanmedian(grads["grad_norm"], axis=1)  # over the run: one batch's gradient is noisy
    return float(norms[layers.index("dense1")]), float(norms[layers.index("output1")])


def test_deep_sigmoid_gradients_vanish_towards_the_input():
    _, snap, _ = train(example("deep_sigmoid"), epochs=2, max_rate=0, gradients=True)  # every step reported
    g = snap.extras["gradients"]
    assert len(g["layers"]) == 11 and g["grad_norm"].shape == (11, len(g["steps"])) and len(g["steps"]) >= 5
    first, last = _first_last(g)
    assert first * 100 <= last, f"first {first:.2e} vs last {last:.2e}"
    assert "vanishing" in codes(snap)["dense1"]


def test_deep_relu_with_he_init_keeps_gradients_within_ten_times():
    _, snap, _ = train(example("deep_relu_he"), epochs=2, max_rate=0, gradients=True)
    g = snap.extras["gradients"]
    first, last = _first_last(g)
    assert 0.1 <= first / last <= 10, f"first {first:.2e} vs last {last:.2e}"
    norms = np.nanmedian(g["grad_norm"], axis=1)
    assert norms.max() / norms.min() <= 10
    assert not any("vanishing" in c for c in codes(snap).values())


# ---- the measurements against their definitions ----------------------------------------------

def test_update_ratio_and_gradient_norm_follow_their_definitions():
    """One plain SGD step by hand: ||dW|| / ||W|| = lr * ||grad|| / ||W_before||."""
    spec = mlp("tanh", 0.3)
    data = datasets.load(spec.dataset)
    model = build(spec, data.info)
    diag = Diagnostics(data.x_val)
    x, y = torch.as_tensor(data.x_train[:64]), torch.as_tensor(data.y_train[:64])
    torch.nn.functional.cross_entropy(model(x), y).backward()
    w0 = {lid: model.layers[lid].weight.detach().clone() for lid in ("d1", "d2", "out")}
    diag.before_step(model, 1)
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.3 * p.grad
    diag.record_step(model)
    norms, ratios = diag.grads.values[-1]
    for lid, w in w0.items():
        g = model.layers[lid].weight.grad.double().numpy()
        assert norms[lid] == pytest.approx(np.sqrt((g ** 2).sum()), rel=1e-5)
        assert ratios[lid] == pytest.approx(0.3 * np.sqrt((g ** 2).sum()) / np.sqrt((w.double().numpy() ** 2).sum()),
                                            rel=1e-4)
    assert diag.grads.steps == [1]


def test_weight_histograms_equal_numpy_histogram_of_the_fetched_weights():
    trainer, snap, _ = train(example("xor"), epochs=3, max_rate=0, distributions="weights")
    d = snap.extras["distributions"]
    assert d["kind"] == "weights" and d["layers"] == ["dense1", "dense2", "output1"]
    fetched = state_to_numpy(trainer.model)  # what FetchWeights sends
    for lid in d["layers"]:
        w = fetched[f"layers.{lid}.weight"].astype(np.float64)
        expected, _ = np.histogram(w, bins=HIST_BINS, range=(w.min(), w.max()))
        np.testing.assert_array_equal(d["counts"][lid][-1], expected)
        assert (d["lo"][lid][-1], d["hi"][lid][-1]) == pytest.approx((w.min(), w.max()))
        assert d["counts"][lid].shape[1] == HIST_BINS and d["counts"][lid].sum(axis=1).max() == w.size


def test_distributions_are_bounded_and_only_measured_when_asked():
    spec = example("xor")
    data = datasets.load(spec.dataset)
    model = build(spec, data.info)
    diag = Diagnostics(data.x_val)
    for step in range(1, 251):  # 250 reported steps into a history of MAX_COLUMNS
        diag.last_step = step
        diag.forward_stats(model, "activations")
    d = diag.distribution_history("activations")
    assert 50 <= len(d["steps"]) <= MAX_COLUMNS and d["steps"][0] == 1 and d["steps"][-1] >= 240  # thinned, whole run
    assert np.all(np.diff(d["steps"]) > 0)
    n_val = min(len(data.x_val), health.DIAG_SAMPLES)
    assert d["counts"]["dense1"][-1].sum() == n_val * 8  # 8 units on the validation subset
    _, quiet, _ = train(example("xor"), epochs=1)
    assert "distributions" not in quiet.extras and "gradients" not in quiet.extras
    assert diag.dist["weights"].steps == []  # only the kind on screen is measured


# ---- badges provoked on real runs --------------------------------------------------------------

def test_a_learning_rate_of_5_kills_relu_units():
    _, snap, _ = train(mlp("relu", 5.0))
    dead = [lid for lid, c in codes(snap).items() if "dead_relu" in c]
    assert dead, snap.extras["health"]
    hint = next(b[2] for b in snap.extras["health"][dead[0]] if b[0] == "dead_relu")
    assert "never fire" in hint


def test_a_large_init_saturates_tanh_and_freezes_updates():
    _, snap, _ = train(mlp("tanh", 0.01, init="normal", value=5.0))
    c = codes(snap)
    assert "saturated" in c.get("a2", set()), snap.extras["health"]
    assert any("update_ratio" in v for v in c.values())


def test_a_healthy_run_shows_no_badge():
    _, snap, result = train(example("xor"))
    assert result.val_accuracy > 0.95
    assert snap.extras["health"] == {}


def test_the_gradient_rule_flags_exploding_and_ratios_at_the_documented_thresholds():
    b = health.gradient_badges({"a": 1.0, "c": 0.5 * health.VANISHING_RELATIVE, "d": 2 * health.VANISHING_RELATIVE},
                               {"a": 1e-3, "c": 0.5 * health.UPDATE_RATIO_LOW, "d": 2 * health.UPDATE_RATIO_HIGH})
    assert "a" not in b
    assert [x[0] for x in b["c"]] == ["vanishing", "update_ratio"]
    assert [x[0] for x in b["d"]] == ["update_ratio"] and "lower the learning rate" in b["d"][0][2]
    assert [x[0] for x in health.gradient_badges({"b": 2 * health.EXPLODING_ABSOLUTE}, {})["b"]] == ["exploding"]
    assert health.gradient_badges({"a": math.nan}, {})["a"][0][0] == "exploding"
