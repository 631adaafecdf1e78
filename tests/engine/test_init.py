"""Initialisation schemes: each one's statistics against its formula over a large layer, the gain
of the following activation, bias init, and old designs building exactly the weights they did."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from engine import spec as S
from engine import validation
from engine.build import build
from engine.init import following_activation

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N_IN, N_OUT = 1000, 800  # the measured layer: 800k weights


def design(act: str = "relu", init: str = "default", slope: float = 0.01, **params) -> S.Spec:
    """xor (2 features) -> Dense 1000 -> relu -> Dense 800 (measured, with ``init``) -> ``act`` -> Output."""
    spec = S.Spec(name="init test")
    spec.dataset = S.DatasetSpec("xor", {"n_points": 200})
    spec.layers = [S.LayerSpec("in", "Input"), S.LayerSpec("d1", "Dense", {"units": N_IN}),
                   S.LayerSpec("a1", "Activation", {"function": "relu"}),
                   S.LayerSpec("d2", "Dense", {"units": N_OUT, "init": init, **params}),
                   S.LayerSpec("a2", "Activation", {"function": act, "slope": slope}), S.LayerSpec("out", "Output")]
    ids = [lay.id for lay in spec.layers]
    spec.edges = [S.EdgeSpec(a, b) for a, b in zip(ids, ids[1:], strict=False)]
    return spec


def weights(spec: S.Spec, lid: str = "d2") -> np.ndarray:
    return build(spec).layers[lid].weight.detach().double().numpy()


def gain(act: str, slope: float = 0.01) -> float:
    """calculate_gain's values, written out."""
    return {"linear": 1.0, "sigmoid": 1.0, "tanh": 5 / 3, "relu": math.sqrt(2),
            "leaky_relu": math.sqrt(2 / (1 + slope ** 2))}[act]


# (scheme, following activation, expected variance, uniform bound or None)
CASES = [
    ("lecun_normal", "tanh", 1 / N_IN, None),  # LeCun takes no gain
    ("lecun_uniform", "relu", 1 / N_IN, math.sqrt(3 / N_IN)),
    ("xavier_uniform", "linear", 2 / (N_IN + N_OUT), math.sqrt(6 / (N_IN + N_OUT))),
    ("xavier_normal", "tanh", gain("tanh") ** 2 * 2 / (N_IN + N_OUT), None),
    ("xavier_normal", "sigmoid", 2 / (N_IN + N_OUT), None),
    ("he_normal", "relu", 2 / N_IN, None),
    ("he_uniform", "relu", 2 / N_IN, math.sqrt(6 / N_IN)),
    ("he_normal", "leaky_relu", gain("leaky_relu", 0.2) ** 2 / N_IN, None),
    ("he_normal", "linear", 1 / N_IN, None),
]


@pytest.mark.parametrize("scheme, act, var, bound", CASES)
def test_scheme_statistics_match_the_formula(scheme, act, var, bound):
    w = weights(design(act, scheme, slope=0.2))
    assert abs(w.mean()) < 5 * math.sqrt(var / w.size)  # centred: within 5 standard errors
    assert w.var() == pytest.approx(var, rel=0.02)  # the estimate's own error is ~0.2 %
    if bound is not None:
        assert np.abs(w).max() <= bound * (1 + 1e-6)
        assert np.abs(w).max() > 0.999 * bound  # the whole interval is used
        assert w.var() == pytest.approx(bound ** 2 / 3, rel=0.02)
    else:  # normal: the fourth moment of a Gaussian is 3 sigma^4 (uniform would give 1.8)
        assert (w ** 4).mean() / w.var() ** 2 == pytest.approx(3.0, rel=0.05)


@pytest.mark.parametrize("act", ["relu", "tanh", "linear"])
def test_orthogonal_rows_are_orthonormal_times_the_gain(act):
    w = weights(design(act, "orthogonal"))  # (800, 1000): rows orthogonal
    g = gain(act)
    np.testing.assert_allclose(w @ w.T, g ** 2 * np.eye(N_OUT), atol=1e-5)


def test_orthogonal_conv_and_he_conv_count_the_kernel_in_the_fan():
    spec = S.Spec(name="conv init")
    spec.dataset = S.DatasetSpec("digits", {})
    spec.layers = [S.LayerSpec("in", "Input"), S.LayerSpec("c1", "Conv2d", {"filters": 32, "kernel": 3}),
                   S.LayerSpec("c2", "Conv2d", {"filters": 48, "kernel": 5, "init": "he_uniform"}),
                   S.LayerSpec("a", "Activation", {"function": "relu"}),
                   S.LayerSpec("c3", "Conv2d", {"filters": 16, "kernel": 3, "init": "orthogonal"}),
                   S.LayerSpec("f", "Flatten"), S.LayerSpec("out", "Output")]
    ids = [lay.id for lay in spec.layers]
    spec.edges = [S.EdgeSpec(a, b) for a, b in zip(ids, ids[1:], strict=False)]
    model = build(spec)
    w = model.layers["c2"].weight.detach().double().numpy()
    fan_in = 32 * 5 * 5
    assert w.var() == pytest.approx(2 / fan_in, rel=0.03)
    assert np.abs(w).max() <= math.sqrt(6 / fan_in) * (1 + 1e-6)
    w3 = model.layers["c3"].weight.detach().double().numpy().reshape(16, -1)  # 16 x (48*9), linear after it
    np.testing.assert_allclose(w3 @ w3.T, np.eye(16), atol=1e-5)


@pytest.mark.parametrize("scheme, value, check", [
    ("zeros", 0.0, lambda w, v: np.all(w == 0)),
    ("constant", 0.3, lambda w, v: np.all(w == np.float32(v))),
    ("uniform", 0.2, lambda w, v: np.abs(w).max() <= v and w.var() == pytest.approx(v * v / 3, rel=0.02)),
    ("normal", 0.07, lambda w, v: w.std() == pytest.approx(v, rel=0.01) and abs(w.mean()) < 1e-3),
])
def test_simple_schemes_use_init_value(scheme, value, check):
    assert check(weights(design("relu", scheme, init_value=value)), value)


def test_bias_init_zeros_and_constant():
    m = build(design("relu", "default", bias_init="constant", bias_value=0.25))
    assert np.all(m.layers["d2"].bias.detach().numpy() == np.float32(0.25))
    m = build(design("relu", "he_normal", bias_init="zeros"))
    assert np.all(m.layers["d2"].bias.detach().numpy() == 0)
    assert np.any(m.layers["d1"].bias.detach().numpy() != 0)  # other layers keep torch's default


def test_the_following_activation_is_found_through_dropout_and_normalisation():
    spec = design("tanh")
    spec.layers.insert(4, S.LayerSpec("drop", "Dropout", {"rate": 0.1}))
    spec.layers.insert(5, S.LayerSpec("bn", "BatchNorm"))
    ids = [lay.id for lay in spec.layers]
    spec.edges = [S.EdgeSpec(a, b) for a, b in zip(ids, ids[1:], strict=False)]
    assert following_activation(spec, "d2") == ("tanh", 0.01)
    assert following_activation(spec, "out") == ("linear", 0.0)


def test_an_old_design_builds_exactly_the_weights_torch_made_before():
    """xor.json has no init settings: the weights equal plain nn.Linear layers made in order after the seed."""
    spec = S.load(os.path.join(ROOT, "assets", "examples", "xor.json"))
    assert not any("init" in lay.params for lay in spec.layers)
    model = build(spec)
    torch.manual_seed(spec.training.seed)
    ref = [nn.Linear(2, 8), nn.Linear(8, 8), nn.Linear(8, 2)]
    ours = [model.layers[lid] for lid in model.order if model.kinds[lid] in ("Dense", "Output")]
    for a, b in zip(ours, ref, strict=True):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_init_is_saved_in_the_design_and_checked():
    spec = design("relu", "xavier_uniform", bias_init="zeros")
    again = S.loads(S.dumps(spec))
    assert again.layer("d2").params["init"] == "xavier_uniform"
    assert json.loads(S.dumps(spec))["layers"][3]["params"]["bias_init"] == "zeros"
    bad = design("relu", "glorot")
    msgs = [str(p) for p in validation.validate(bad)]
    assert any("d2" in m and "init" in m and "xavier_uniform" in m for m in msgs), msgs
