"""What the regression and sequence views show, computed from a GraphNet at snapshot rate.

engine.probes.Prober hands its options and rate-limited cache to ``SequenceProber`` when the
dataset is a regression or a sequence set. Option keys (all off unless a view asks):

* ``fit`` (bool) - 1-D regression: the net's curve over the data and each last-hidden unit's
  contribution (its output times its output weight); 2-D regression: the output surface.
* ``seq_sample`` (int index into x_val, or None) - the sample the sequence views show.
* ``seq_layer`` (layer id or None = the first recurrent layer) - whose hidden state to show.
* ``hidden`` (bool) - hidden state over the steps (and an LSTM's gates, recomputed from its weights).
* ``attention`` (bool) - every SelfAttention layer's weights per head for the sample.
* ``seq_pred`` (bool) - the sample's input, true and predicted targets.
* ``text`` (dict {"length", "temperature"} or None) - text sampled from a character model.

torch, numpy and engine.model_utils only; every result is numpy or Python scalars. The model
runs in eval mode and no global RNG is touched (sampling uses its own numpy generator).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engine.model_utils import eval_mode, model_device

MAX_POINTS = 2000  # data points sent with the 1-D fit
MAX_UNITS = 32  # unit contributions drawn in the 1-D fit
MAX_TEXT = 400
RECURRENT = ("RNN", "LSTM", "GRU")


def _tensor(model, x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(model_device(model))


# ---- regression -------------------------------------------------------------------------------

def fit_curve(model, data, res: int = 200) -> dict[str, Any]:
    """1-D regression: the net's output over x (data units) and the last hidden layer's contributions."""
    mean, std = float(np.ravel(data.mean)[0]), float(np.ravel(data.std)[0])
    raw = np.concatenate([np.ravel(data.raw_x_train), np.ravel(data.raw_x_val)])
    lo, hi = float(raw.min()), float(raw.max())
    pad = 0.1 * (hi - lo or 1.0)
    xs = np.linspace(lo - pad, hi + pad, res, dtype=np.float32)
    last = model.sources[model.output_id][0]
    with eval_mode(model), torch.no_grad():
        vals = model.forward_all(_tensor(model, ((xs - mean) / std)[:, None]))
    out = vals[model.output_id][:, 0].cpu().numpy()
    res_d: dict[str, Any] = {"fit_x": xs, "fit_y": out.astype(np.float32)}
    head = model.layers[model.output_id]
    hidden = vals[last]
    if last != model.input_id and hidden.ndim == 2:
        contrib = (hidden * head.weight[0][None, :]).detach().cpu().numpy().T  # (units, res)
        order = np.argsort(-np.abs(contrib).max(axis=1))[:MAX_UNITS]
        res_d["fit_units"] = contrib[np.sort(order)].astype(np.float32)
        res_d["fit_bias"] = float(head.bias[0].detach())
        res_d["fit_layer"] = last
    return res_d


def fit_points(data) -> dict[str, np.ndarray]:
    """The data the 1-D fit is drawn over, in data units (at most MAX_POINTS of each part)."""
    return {"fit_train_x": np.ravel(data.raw_x_train)[:MAX_POINTS].astype(np.float32),
            "fit_train_y": np.ravel(data.y_train[:, 0])[:MAX_POINTS].astype(np.float32),
            "fit_val_x": np.ravel(data.raw_x_val)[:MAX_POINTS].astype(np.float32),
            "fit_val_y": np.ravel(data.y_val[:, 0])[:MAX_POINTS].astype(np.float32)}


def surface(model, data, res: int = 60) -> dict[str, Any]:
    """2-D regression: the output over a square grid around the (standardised) data; grid[i, j] = (xs[j], ys[i])."""
    pts = np.concatenate([data.x_train, data.x_val])
    m = float(np.abs(pts).max()) * 1.1 or 1.0
    xs = np.linspace(-m, m, res, dtype=np.float32)
    gx, gy = np.meshgrid(xs, xs)
    with eval_mode(model), torch.no_grad():
        out = model(_tensor(model, np.stack([gx.ravel(), gy.ravel()], 1)))[:, 0].cpu().numpy()
    return {"surface": out.reshape(res, res).astype(np.float32), "surface_extent": np.array([-m, m, -m, m], np.float32),
            "surface_points": data.x_train[:MAX_POINTS].astype(np.float32),
            "surface_values": data.y_train[:MAX_POINTS, 0].astype(np.float32)}


# ---- sequences ------------------------------------------------------------------------------

def recurrent_layers(model) -> list[str]:
    return [lid for lid in model.order if model.kinds.get(lid) in RECURRENT]


def lstm_gates(rnn: torch.nn.LSTM, x: torch.Tensor) -> dict[str, np.ndarray]:
    """The first layer's forward-direction gates for one sequence x (T, F), recomputed from the weights.

    torch's nn.LSTM returns only h and c, so the standard equations are run step by step:
    i, f, g, o = split(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh); i, f, o = sigmoid; g = tanh;
    c_t = f * c_(t-1) + i * g; h_t = o * tanh(c_t).
    """
    w_ih, w_hh = rnn.weight_ih_l0, rnn.weight_hh_l0
    b = rnn.bias_ih_l0 + rnn.bias_hh_l0 if rnn.bias else torch.zeros(w_ih.shape[0], device=x.device)
    units = rnn.hidden_size
    h = torch.zeros(units, device=x.device)
    c = torch.zeros(units, device=x.device)
    rows: dict[str, list[torch.Tensor]] = {k: [] for k in ("input", "forget", "cell", "output", "c", "h")}
    pre_x = x @ w_ih.T + b
    for t in range(len(x)):
        z = pre_x[t] + w_hh @ h
        i, f, g, o = torch.sigmoid(z[:units]), torch.sigmoid(z[units:2 * units]), torch.tanh(z[2 * units:3 * units]), \
            torch.sigmoid(z[3 * units:])
        c = f * c + i * g
        h = o * torch.tanh(c)
        for k, v in (("input", i), ("forget", f), ("cell", g), ("output", o), ("c", c), ("h", h)):
            rows[k].append(v)
    return {k: torch.stack(v).cpu().numpy().astype(np.float32) for k, v in rows.items()}


def hidden_states(model, x: np.ndarray, layer: str | None) -> dict[str, Any]:
    """Hidden state (T, units) of a recurrent layer for one sample, plus an LSTM's gates."""
    layers = recurrent_layers(model)
    if not layers:
        return {}
    lid = layer if layer in layers else layers[0]
    mod = model.layers[lid]
    seen: dict[str, torch.Tensor] = {}
    hooks = [mod.rnn.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0], out=out[0]))]
    try:
        with eval_mode(model), torch.no_grad():
            model(_tensor(model, x[None]))
            res: dict[str, Any] = {"hidden": seen["out"][0].cpu().numpy().astype(np.float32), "hidden_layer": lid,
                                   "hidden_layers": layers, "hidden_kind": model.kinds[lid]}
            if model.kinds[lid] == "LSTM":
                res["gates"] = lstm_gates(mod.rnn, seen["x"][0])
    finally:
        for hk in hooks:
            hk.remove()
    return res


def attention_weights(model, x: np.ndarray) -> dict[str, np.ndarray]:
    """{layer id: (heads, T, T)} for one sample; row q holds the weights query step q gives each key step."""
    mods = {lid: model.layers[lid] for lid in model.order if model.kinds.get(lid) == "SelfAttention"}
    if not mods:
        return {}
    try:
        for m in mods.values():
            m.keep = True
        with eval_mode(model), torch.no_grad():
            model(_tensor(model, x[None]))
        return {lid: m.weights[0].cpu().numpy().astype(np.float32) for lid, m in mods.items()}
    finally:
        for m in mods.values():
            m.keep, m.weights = False, None


def sequence_prediction(model, data, index: int) -> dict[str, Any]:
    """The sample's first input feature (data units), its true targets and the prediction."""
    raw = data.raw_x_val[index]
    with eval_mode(model), torch.no_grad():
        pred = model(_tensor(model, data.x_val[index][None]))[0].cpu().numpy()
    y = np.asarray(data.y_val[index])
    res = {"pred_input": np.asarray(raw if raw.ndim == 1 else raw[:, 0], np.float32),
           "pred_true": np.atleast_1d(y).astype(np.float32), "pred_out": pred.astype(np.float32)}
    if raw.ndim == 2 and raw.shape[1] == 2 and set(np.unique(raw[:, 1])) <= {0.0, 1.0}:
        res["pred_marks"] = np.flatnonzero(raw[:, 1] > 0.5)  # a marker channel (the adding problem)
    return res


def sample_text(model, seed_ids: np.ndarray, tokens: list[str], length: int, temperature: float,
                rng: np.random.Generator) -> str:
    """Characters drawn one at a time from the model's softmax, each fed back into the window."""
    window = np.asarray(seed_ids, np.float32).copy()
    out = []
    temperature = max(float(temperature), 1e-3)
    with eval_mode(model), torch.no_grad():
        for _ in range(min(int(length), MAX_TEXT)):
            logits = model(_tensor(model, window[None]))[0].double().cpu().numpy() / temperature
            p = np.exp(logits - logits.max())
            nxt = int(rng.choice(len(p), p=p / p.sum()))
            out.append(tokens[nxt] if nxt < len(tokens) else "?")
            window = np.roll(window, -1)
            window[-1] = nxt
    return "".join(out)


class SequenceProber:
    """The regression and sequence parts of a Prober call (see the module doc for the option keys)."""

    def __init__(self, data):
        self.data = data
        info = data.info
        self.fit_1d = info.task == "regression" and info.input_shape == (1,)
        self.fit_2d = info.task == "regression" and info.input_shape == (2,)
        self.points = fit_points(data) if self.fit_1d else None
        self.has_tokens = bool(info.vocab) and bool(info.tokens)
        self.next_token = self.has_tokens and info.kind == "chars"  # a model of the next character: it can write

    def __call__(self, model, opt: dict, cached, slow: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if opt.get("fit") and self.fit_1d:
            out.update(self.points)
            out.update(cached("fit", None, lambda: fit_curve(model, self.data)))
        if opt.get("fit") and self.fit_2d:
            out.update(cached("fit", None, lambda: surface(model, self.data)))
        s = opt.get("seq_sample")
        n = len(self.data.x_val)
        if s is not None and n and self.data.info.is_sequence:
            i = int(s) % n
            x = self.data.x_val[i]
            out["seq_index"] = i
            out["seq_tokens"] = [self.data.info.tokens[int(t)] for t in x] if self.has_tokens else None
            if opt.get("hidden"):
                layer = opt.get("seq_layer")
                out.update(cached("hidden", (i, layer), lambda: hidden_states(model, x, layer)))
            if opt.get("attention"):
                out["attention"] = cached("attention", i, lambda: attention_weights(model, x))
            if opt.get("seq_pred"):
                out.update(cached("seq_pred", i, lambda: sequence_prediction(model, self.data, i)))
        text = opt.get("text")
        if text and self.next_token and n:
            length, temp = int(text.get("length", 200)), float(text.get("temperature", 0.8))
            seed = self.data.x_val[0]
            out["text_seed"] = "".join(self.data.info.tokens[int(t)] for t in seed)
            # the same seed and random stream every time, so the text changes only as the model learns
            out["text"] = cached("text", (length, temp), lambda: sample_text(
                model, seed, self.data.info.tokens, length, temp, np.random.default_rng(0)), max(slow, 1.0))
        return out
