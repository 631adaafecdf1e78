"""Sequence and attention layers: shape rules and parameter counts against the torch modules,
outputs against independent references (nn.MultiheadAttention, the sinusoid formula, numpy),
and the LSTM gates recomputed from the weights against nn.LSTM itself."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from engine import layers as L
from engine.datasets import DataInfo
from engine.probes_sequence import lstm_gates
from engine.spec import EdgeSpec, LayerSpec, Spec

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def run_kind(kind, params, in_shape, vocab=0, x=None):
    k = L.REGISTRY[kind]
    assert all(k.param_map[n].check(v) is None for n, v in params.items()), params
    p = k.resolve(params)
    out = k.shape([in_shape], p, L.Context(vocab=vocab))
    count = k.count([in_shape], out, p)
    mod = k.make([in_shape], out, params).eval()
    with torch.no_grad():
        y = mod(torch.randn(3, *in_shape) if x is None else x)
    return out, count, y, mod


def n_params(mod):
    return sum(p.numel() for p in mod.parameters())


def test_sequence_kinds_are_in_the_palette_groups():
    assert {k.kind for k in L.kinds_in_group("Sequence")} == {"Embedding", "RNN", "LSTM", "GRU", "SequencePool", "ToSequence"}
    assert {k.kind for k in L.kinds_in_group("Attention")} == {"SelfAttention", "PositionalEncoding"}


@FAST
@given(cell=st.sampled_from(["RNN", "LSTM", "GRU"]), units=st.integers(1, 12), layers=st.integers(1, 3),
       bidir=st.booleans(), seq=st.booleans(), t=st.integers(1, 7), f=st.integers(1, 5))
def test_recurrent_shape_and_count_match_torch(cell, units, layers, bidir, seq, t, f):
    params = {"units": units, "layers": layers, "bidirectional": bidir, "sequence": seq}
    out, count, y, mod = run_kind(cell, params, (t, f))
    assert tuple(y.shape[1:]) == out
    assert count == n_params(mod)
    # an independent count: torch's documented sizes, 4/3/1 gate blocks of (in + hidden + 2 biases) per unit
    g = {"RNN": 1, "GRU": 3, "LSTM": 4}[cell]
    d = 2 if bidir else 1
    expect = sum(d * g * units * ((f if i == 0 else units * d) + units + 2) for i in range(layers))
    assert count == expect


def test_last_step_of_a_bidirectional_lstm_joins_both_directions_final_states():
    torch.manual_seed(0)
    _, _, _, mod = run_kind("LSTM", {"units": 4, "bidirectional": True}, (6, 3))
    x = torch.randn(2, 6, 3)
    with torch.no_grad():
        seq, _ = mod.rnn(x)
        last = mod(x)
    assert torch.allclose(last[:, :4], seq[:, -1, :4])  # forward direction after the last step
    assert torch.allclose(last[:, 4:], seq[:, 0, 4:])  # backward direction after reading back to step 0


@FAST
@given(heads=st.sampled_from([1, 2, 4]), t=st.integers(1, 6), per_head=st.integers(1, 4), causal=st.booleans())
def test_self_attention_matches_nn_multihead_attention(heads, t, per_head, causal):
    f = heads * per_head
    out, count, _, mod = run_kind("SelfAttention", {"heads": heads, "causal": causal, "residual": False}, (t, f))
    ref = nn.MultiheadAttention(f, heads, batch_first=True)
    assert count == n_params(mod) == n_params(ref)
    with torch.no_grad():
        ref.in_proj_weight.copy_(mod.qkv.weight)
        ref.in_proj_bias.copy_(mod.qkv.bias)
        ref.out_proj.weight.copy_(mod.out.weight)
        ref.out_proj.bias.copy_(mod.out.bias)
        x = torch.randn(2, t, f)
        mask = torch.ones(t, t, dtype=torch.bool).triu(1) if causal else None
        y_ref, w_ref = ref(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
        mod.keep = True
        y = mod(x)
    assert out == (t, f)
    assert torch.allclose(y, y_ref, atol=1e-5)
    assert torch.allclose(mod.weights, w_ref, atol=1e-6)
    assert torch.allclose(mod.weights.sum(-1), torch.ones(2, heads, t))


def test_attention_with_residual_adds_its_input():
    _, _, _, mod = run_kind("SelfAttention", {"heads": 2, "residual": False}, (5, 4))
    x = torch.randn(2, 5, 4)
    with torch.no_grad():
        plain = mod(x)
        mod.residual = True
        assert torch.allclose(mod(x), x + plain)


def test_sinusoidal_positional_encoding_follows_the_formula():
    t, f = 7, 6
    out, count, y, mod = run_kind("PositionalEncoding", {}, (t, f), x=torch.zeros(1, t, f))
    assert out == (t, f) and count == 0 == n_params(mod)
    pos, i = np.arange(t)[:, None], np.arange(f)[None]
    angle = pos / 10000 ** ((i - i % 2) / f)
    expect = np.where(i % 2 == 0, np.sin(angle), np.cos(angle))
    assert np.allclose(y[0].numpy(), expect, atol=1e-5)
    _, count, _, mod = run_kind("PositionalEncoding", {"kind": "learned"}, (t, f))
    assert count == t * f == n_params(mod)


@pytest.mark.parametrize("mode", ["mean", "max", "last"])
def test_sequence_pool_matches_numpy(mode):
    x = torch.randn(3, 5, 4)
    out, count, y, _ = run_kind("SequencePool", {"mode": mode}, (5, 4), x=x)
    ref = {"mean": x.numpy().mean(1), "max": x.numpy().max(1), "last": x.numpy()[:, -1]}[mode]
    assert out == (4,) and count == 0
    assert np.allclose(y.numpy(), ref, atol=1e-6)


def test_embedding_looks_up_rows_and_reshape_cuts_steps():
    ids = torch.tensor([[0.0, 3.0, 1.0]])
    out, count, y, mod = run_kind("Embedding", {"dim": 5, "vocab": 4}, (3,), vocab=4, x=ids)
    assert out == (3, 5) and count == 20 == n_params(mod)
    assert torch.equal(y[0], mod.emb.weight[[0, 3, 1]])
    out, _, y, _ = run_kind("ToSequence", {"features": 2}, (6,), x=torch.arange(6.0)[None])
    assert out == (3, 2) and y[0].tolist() == [[0, 1], [2, 3], [4, 5]]


def test_lstm_gates_recomputed_from_the_weights_give_nn_lstms_hidden_states():
    torch.manual_seed(1)
    lstm = nn.LSTM(3, 5, batch_first=True)
    x = torch.randn(9, 3)
    with torch.no_grad():
        seq, (h, c) = lstm(x[None])
        gates = lstm_gates(lstm, x)
    assert np.allclose(gates["h"], seq[0].numpy(), atol=1e-5)
    assert np.allclose(gates["c"][-1], c[0, 0].numpy(), atol=1e-5)
    for name in ("input", "forget", "output"):
        assert gates[name].shape == (9, 5) and (gates[name] >= 0).all() and (gates[name] <= 1).all()


def _chain(kinds_params, info):
    spec = Spec(layers=[LayerSpec("input1", "Input")])
    prev = "input1"
    for i, (kind, p) in enumerate(kinds_params):
        lid = f"l{i}"
        spec.layers.append(LayerSpec(lid, kind, p))
        spec.edges.append(EdgeSpec(prev, lid))
        prev = lid
    spec.layers.append(LayerSpec("output1", "Output"))
    spec.edges.append(EdgeSpec(prev, "output1"))
    return L.infer(spec, info)


SEQ = DataInfo("adding", (50, 2), 0, [], task="regression", n_targets=1)
TOKENS = DataInfo("chars", (24,), 30, [str(i) for i in range(30)], vocab=30)


def test_a_valid_sequence_design_infers_its_shapes_and_regression_head():
    rep = _chain([("LSTM", {"units": 8, "sequence": True}), ("SelfAttention", {"heads": 2}),
                  ("SequencePool", {"mode": "max"})], SEQ)
    assert rep.ok, rep.problems
    assert rep.shapes["l0"] == (50, 8) and rep.shapes["l2"] == (8,) and rep.shapes["output1"] == (1,)
    rep = _chain([("Embedding", {"dim": 8, "vocab": 30}), ("GRU", {"units": 6, "bidirectional": True})], TOKENS)
    assert rep.ok and rep.shapes["l1"] == (12,) and rep.shapes["output1"] == (30,)


@pytest.mark.parametrize("chain, info, words", [
    ([("Dense", {"units": 4})], SEQ, "SequencePool"),
    ([("LSTM", {})], TOKENS, "Embedding"),
    ([("Embedding", {"vocab": 10})], TOKENS, "set vocab to 30"),
    ([("Embedding", {})], SEQ, "token ids"),
    ([("SelfAttention", {"heads": 3})], SEQ, "heads"),
    ([("ToSequence", {"features": 7})], DataInfo("x", (10,), 2, ["a", "b"]), "features dividing 10"),
])
def test_shape_errors_name_the_layer_and_the_fix(chain, info, words):
    rep = _chain(chain, info)
    assert not rep.ok
    msg = rep.node_errors["l0"]
    assert words in msg, msg


def test_counts_of_attention_follow_the_formula():
    for f in (4, 8, 16):
        assert L.REGISTRY["SelfAttention"].count([(5, f)], (5, f), {}) == 4 * f * f + 4 * f
    assert math.isclose(L.REGISTRY["Embedding"].count([(3,)], (3, 7), {"vocab": 11, "dim": 7}), 77)
