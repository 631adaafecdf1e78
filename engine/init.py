"""Weight and bias initialisation of the weighted layers (Dense, Output, Conv2d), as the design says.

The schemes are the ``init`` choices of engine.layers (``INIT_SCHEMES``); "default" leaves the
weights torch made, so designs saved before the setting existed build bit-identical weights.
Fan-in / fan-out count the kernel: ``n_in = in_channels * k * k`` for Conv2d.

    lecun_normal    N(0, 1 / n_in)                       lecun_uniform  U(+-sqrt(3 / n_in))
    xavier_normal   N(0, g^2 * 2 / (n_in + n_out))       xavier_uniform U(+-g * sqrt(6 / (n_in + n_out)))
    he_normal       N(0, g^2 / n_in)                     he_uniform     U(+-g * sqrt(3 / n_in))
    orthogonal      g * Q, Q with orthonormal rows (or columns) of the flattened (n_out, n_in) matrix
    uniform         U(-a, a), a = |init_value|           normal         N(0, init_value^2)
    constant        init_value                           zeros          0

``g`` is the gain of the activation that follows the layer in the graph (through Dropout,
normalisation, pooling and Flatten), as torch.nn.init.calculate_gain defines it: 1 for linear
and sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu. elu, gelu,
silu and softplus get relu's gain (they pass positive inputs like ReLU). So He with a ReLU
after it has Var(w) = 2 / n_in. LeCun takes no gain (it is the SELU/linear scheme).
Randomness comes from torch's global generator, which engine.build seeds before construction.
"""
from __future__ import annotations

import math

import torch

from engine.spec import Spec

WEIGHTED_KINDS = ("Dense", "Output", "Conv2d")
PASS_THROUGH = ("Dropout", "BatchNorm", "LayerNorm", "Flatten", "MaxPool2d", "AvgPool2d", "GlobalAvgPool")
RELU_LIKE = ("relu", "elu", "gelu", "silu", "softplus")


def following_activation(spec: Spec, layer_id: str) -> tuple[str, float]:
    """(function, leaky slope) of the Activation after ``layer_id``; ("linear", 0) if none or branching."""
    seen = {layer_id}
    node = layer_id
    while True:
        nxt = spec.outputs_of(node)
        if len(nxt) != 1 or nxt[0] in seen:
            return "linear", 0.0
        node = nxt[0]
        seen.add(node)
        lay = spec.layer(node)
        if lay is None:
            return "linear", 0.0
        if lay.kind == "Activation":
            return str(lay.params.get("function", "relu")), float(lay.params.get("slope", 0.01))
        if lay.kind not in PASS_THROUGH:
            return "linear", 0.0


def gain(function: str, slope: float = 0.01) -> float:
    """The recommended gain for an activation (torch.nn.init.calculate_gain's values)."""
    if function == "tanh":
        return 5.0 / 3.0
    if function == "leaky_relu":
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    if function in RELU_LIKE:
        return math.sqrt(2.0)
    return 1.0  # linear, sigmoid, softmax


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(n_in, n_out) of a (out, in) or (out, in, k, k) weight."""
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


@torch.no_grad()
def init_weight(weight: torch.Tensor, scheme: str, value: float = 0.05, g: float = 1.0) -> None:
    """Fill ``weight`` in place by ``scheme`` (see the module docstring); "default" leaves it."""
    n_in, n_out = fans(weight)
    if scheme == "default":
        return
    if scheme == "zeros":
        weight.zero_()
    elif scheme == "constant":
        weight.fill_(value)
    elif scheme == "uniform":
        weight.uniform_(-abs(value), abs(value))
    elif scheme == "normal":
        weight.normal_(0.0, abs(value))
    elif scheme == "lecun_normal":
        weight.normal_(0.0, math.sqrt(1.0 / n_in))
    elif scheme == "lecun_uniform":
        b = math.sqrt(3.0 / n_in)
        weight.uniform_(-b, b)
    elif scheme == "xavier_normal":
        weight.normal_(0.0, g * math.sqrt(2.0 / (n_in + n_out)))
    elif scheme == "xavier_uniform":
        b = g * math.sqrt(6.0 / (n_in + n_out))
        weight.uniform_(-b, b)
    elif scheme == "he_normal":
        weight.normal_(0.0, g / math.sqrt(n_in))
    elif scheme == "he_uniform":
        b = g * math.sqrt(3.0 / n_in)
        weight.uniform_(-b, b)
    elif scheme == "orthogonal":
        rows, cols = weight.shape[0], weight.numel() // weight.shape[0]
        a = torch.randn(max(rows, cols), min(rows, cols), dtype=torch.float64)
        q, r = torch.linalg.qr(a)  # reduced: q has orthonormal columns
        q = q * torch.sign(torch.diagonal(r))  # unique Q (Haar-distributed)
        q = q if rows >= cols else q.T
        weight.copy_((g * q).reshape(weight.shape).to(weight.dtype))
    else:
        raise ValueError(f"unknown init {scheme!r}")


@torch.no_grad()
def init_layer(module: torch.nn.Module, params: dict, spec: Spec, layer_id: str) -> None:
    """Apply the layer's ``init`` / ``bias_init`` params (resolved, see engine.layers) to its module."""
    scheme = params.get("init", "default")
    if scheme != "default":
        g = gain(*following_activation(spec, layer_id))
        init_weight(module.weight, scheme, float(params.get("init_value", 0.05)), g)
    bias = getattr(module, "bias", None)
    if bias is not None and params.get("bias_init", "default") != "default":
        bias.fill_(0.0 if params["bias_init"] == "zeros" else float(params.get("bias_value", 0.0)))
