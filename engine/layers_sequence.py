"""Sequence and attention layer kinds: Embedding, RNN/LSTM/GRU, SelfAttention, PositionalEncoding,
SequencePool and ToSequence - their params, shape rules, parameter counts and torch factories.

Plain data and functions that import nothing of the engine: engine.layers turns each entry into
a LayerKind (and a ValueError of a shape rule into its ShapeError). A sequence's shape is
``(steps, features)``; token ids are ``(steps,)`` and only Embedding reads them.
"""
from __future__ import annotations

import math


def _fmt(shape) -> str:
    return "x".join(str(s) for s in shape)


def _seq(shapes, kind: str):
    s = shapes[0]
    if len(s) == 2:
        return s
    if len(s) == 1:
        raise ValueError(f"needs a sequence (steps x features) but gets {_fmt(s)} - put an Embedding before it for "
                         "token ids, or cut a flat vector into steps x features with ToSequence")
    raise ValueError(f"needs a sequence (steps x features) but gets the image {_fmt(s)} - use a sequence dataset")


# ---- Embedding ----------------------------------------------------------------------------

def _embedding_shape(shapes, p, ctx):
    s = shapes[0]
    if len(s) != 1 or not ctx.vocab:
        raise ValueError(f"reads token ids (steps,) but gets {_fmt(s)} of numbers - use a token dataset "
                         "(chars, recall) or remove the Embedding")
    if ctx.vocab > p["vocab"]:
        raise ValueError(f"vocab {p['vocab']} is smaller than the dataset's {ctx.vocab} tokens - set vocab to {ctx.vocab}")
    return (s[0], p["dim"])


def _embedding_count(ins, out, p):
    return p["vocab"] * p["dim"]


def _make_embedding(ins, out, p):
    from engine.modules import TokenEmbedding
    return TokenEmbedding(p["vocab"], p["dim"])


# ---- recurrent layers ----------------------------------------------------------------------

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _recurrent_shape(shapes, p, ctx):
    t, _ = _seq(shapes, "recurrent")
    width = p["units"] * (2 if p["bidirectional"] else 1)
    return (t, width) if p["sequence"] else (width,)


def _recurrent_count(cell: str):
    def count(ins, out, p):
        g, h, dirs = GATES[cell], p["units"], 2 if p["bidirectional"] else 1
        total = 0
        for layer in range(p["layers"]):
            width = ins[0][1] if layer == 0 else h * dirs
            total += dirs * (g * h * (width + h) + 2 * g * h)  # W_ih, W_hh and torch's two biases
        return total
    return count


def _make_recurrent(cell: str):
    def make(ins, out, p):
        from engine.modules import Recurrent
        return Recurrent(cell, ins[0][1], p["units"], p["layers"], p["bidirectional"], p["sequence"])
    return make


# ---- attention -----------------------------------------------------------------------------

def _attention_shape(shapes, p, ctx):
    t, f = _seq(shapes, "attention")
    if f % p["heads"]:
        raise ValueError(f"{f} features do not split into {p['heads']} heads - choose heads dividing {f} "
                         "(or change the Embedding's dim)")
    return (t, f)


def _attention_count(ins, out, p):
    f = ins[0][1]
    return 4 * f * f + 4 * f  # query/key/value projections and the output projection, with biases


def _make_attention(ins, out, p):
    from engine.modules import SelfAttention
    return SelfAttention(ins[0][1], p["heads"], p["causal"], p["residual"])


def _posenc_shape(shapes, p, ctx):
    return _seq(shapes, "positional encoding")


def _posenc_count(ins, out, p):
    return math.prod(ins[0]) if p["kind"] == "learned" else 0


def _make_posenc(ins, out, p):
    from engine.modules import PositionalEncoding
    return PositionalEncoding(ins[0][0], ins[0][1], p["kind"])


# ---- connecting pieces ---------------------------------------------------------------------

def _pool_shape(shapes, p, ctx):
    return (_seq(shapes, "pool")[1],)


def _make_pool(ins, out, p):
    from engine.modules import SequencePool
    return SequencePool(p["mode"])


def _reshape_shape(shapes, p, ctx):
    n, f = math.prod(shapes[0]), p["features"]
    if n % f:
        raise ValueError(f"{n} values do not split into steps of {f} features - choose features dividing {n}")
    return (n // f, f)


def _make_reshape(ins, out, p):
    from engine.modules import Reshape
    return Reshape(out)


def _zero(ins, out, p):
    return 0


def _param(name, type_, default, help_, min_=None, max_=None, choices=()):
    return {"name": name, "type": type_, "default": default, "help": help_, "min": min_, "max": max_,
            "choices": tuple(choices)}


_RECURRENT_PARAMS = (
    _param("units", "int", 32, "Size of the hidden state", 1, 1024),
    _param("layers", "int", 1, "Stacked recurrent layers", 1, 4),
    _param("bidirectional", "bool", False, "Also read the sequence backwards (doubles the width)"),
    _param("sequence", "bool", False, "Return every step (steps x units) instead of the last one"),
)
_RECURRENT_HELP = {
    "RNN": ("A plain recurrent layer: the hidden state is updated from itself and each step's input.",
            "h_t = tanh(W_ih x_t + W_hh h_(t-1) + b)"),
    "LSTM": ("Long short-term memory: gates decide what the cell state forgets, stores and shows.",
             "i,f,o = sigmoid(W x_t + U h_(t-1) + b); g = tanh(...); c_t = f*c_(t-1) + i*g; h_t = o*tanh(c_t)"),
    "GRU": ("Gated recurrent unit: an update gate mixes the old state with a new candidate.",
            "z,r = sigmoid(W x_t + U h_(t-1) + b); n = tanh(W x_t + r*(U h_(t-1)) + b); h_t = (1-z)*n + z*h_(t-1)"),
}

SEQUENCE_KINDS = [
    {"kind": "Embedding", "group": "Sequence", "help": "Looks up a learned vector for each token id.",
     "formula": "y_t = E[x_t]",
     "params": (_param("dim", "int", 16, "Length of each token's vector", 1, 1024),
                _param("vocab", "int", 64, "Number of token ids it can read (at least the dataset's)", 2, 100000)),
     "shape": _embedding_shape, "count": _embedding_count, "factory": _make_embedding, "key_params": ("dim",)},
    *({"kind": cell, "group": "Sequence", "help": _RECURRENT_HELP[cell][0], "formula": _RECURRENT_HELP[cell][1],
       "params": _RECURRENT_PARAMS, "shape": _recurrent_shape, "count": _recurrent_count(cell),
       "factory": _make_recurrent(cell), "key_params": ("units",)} for cell in ("RNN", "LSTM", "GRU")),
    {"kind": "SequencePool", "group": "Sequence", "help": "Turns a sequence into one vector: mean, max or last step.",
     "formula": "y = mean_t x_t | max_t x_t | x_T",
     "params": (_param("mode", "choice", "mean", "How steps are combined", choices=("mean", "max", "last")),),
     "shape": _pool_shape, "count": _zero, "factory": _make_pool, "key_params": ("mode",)},
    {"kind": "ToSequence", "group": "Sequence", "help": "Cuts the values into steps of a given number of features.",
     "formula": "y = reshape(x, n / f, f)",
     "params": (_param("features", "int", 1, "Features per step", 1, 4096),),
     "shape": _reshape_shape, "count": _zero, "factory": _make_reshape, "key_params": ("features",)},
    {"kind": "SelfAttention", "group": "Attention",
     "help": "Multi-head self-attention: each step mixes the values of the steps its query matches.",
     "formula": "A = softmax(Q K^T / sqrt(d)); y = x + A V W_o (per head)",
     "params": (_param("heads", "int", 2, "Attention heads (must divide the features)", 1, 16),
                _param("causal", "bool", False, "Each step may only look at itself and earlier steps"),
                _param("residual", "bool", True, "Add the input to the output (y = x + attention)")),
     "shape": _attention_shape, "count": _attention_count, "factory": _make_attention, "key_params": ("heads",)},
    {"kind": "PositionalEncoding", "group": "Attention",
     "help": "Adds each step's position to its vector, so attention can tell steps apart.",
     "formula": "y_t = x_t + P_t (P sinusoidal or learned)",
     "params": (_param("kind", "choice", "sinusoidal", "Fixed sine/cosine waves or a learned vector per step",
                       choices=("sinusoidal", "learned")),),
     "shape": _posenc_shape, "count": _posenc_count, "factory": _make_posenc, "key_params": ("kind",)},
]


def describe_sequence(kind: str, p: dict) -> str:
    """Short summary of a sequence layer's key parameters, e.g. ``LSTM 32 x2 bi seq``."""
    if kind in GATES:
        return (f"{p['units']} units" + (f" x{p['layers']}" if p["layers"] > 1 else "")
                + (" bi" if p["bidirectional"] else "") + (" seq" if p["sequence"] else ""))
    if kind == "Embedding":
        return f"{p['vocab']} -> {p['dim']}"
    if kind == "SelfAttention":
        return f"{p['heads']} heads" + (" causal" if p["causal"] else "")
    if kind in ("SequencePool", "PositionalEncoding"):
        return p.get("mode") or p.get("kind", "")
    if kind == "ToSequence":
        return f"{p['features']} per step"
    return ""
