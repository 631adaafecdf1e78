"""The layer registry: per kind, its parameter schema, help, shape rule and torch factory.

Metadata and shape rules are plain Python so the palette and inspector can use them
before torch has loaded; only ``LayerKind.make`` imports torch.
Shapes exclude the batch dimension: ``(features,)`` or ``(channels, height, width)``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.layers_sequence import SEQUENCE_KINDS, describe_sequence
from engine.spec import Problem, Spec

Shape = tuple[int, ...]


class ShapeError(ValueError):
    """Raised by a shape rule; the message is shown after the layer's kind and id."""


@dataclass(frozen=True)
class Param:
    """One parameter of a layer kind: type, default, allowed range and one-line help."""

    name: str
    type: str  # "int" | "float" | "bool" | "choice"
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, value: Any) -> str | None:
        """None if ``value`` is acceptable, else a message saying what is allowed."""
        if self.type == "bool":
            return None if isinstance(value, bool) else "must be true or false"
        if self.type == "choice":
            return None if value in self.choices else f"must be one of {', '.join(self.choices)}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {value!r:.40}"
        if isinstance(value, float) and not math.isfinite(value):
            return "must be finite"
        # no float() of an int here: a huge int would overflow instead of getting a message
        if self.type == "int" and isinstance(value, float) and not value.is_integer():
            return f"must be a whole number, got {value}"
        if self.min is not None and value < self.min or self.max is not None and value > self.max:
            shown = value if abs(value) < 1e15 else f"{value:.3e}" if isinstance(value, float) else "a huge number"
            return f"{shown} is outside {self.min:g}..{self.max:g} - choose a value in that range"
        return None


@dataclass
class Context:
    """What a shape rule may need beyond its inputs."""

    n_classes: int = 2
    loss: str = "cross_entropy"
    task: str = "classification"  # "regression": the Output has n_targets units
    n_targets: int = 1
    vocab: int = 0  # > 0: the input is token ids (Embedding reads it)
    target_shape: tuple[int, ...] | None = None  # set when the Output must reproduce a shape (autoencoders, GANs)


@dataclass
class LayerKind:
    kind: str
    group: str
    help: str  # one sentence
    formula: str
    params: tuple[Param, ...]
    shape: Callable[[list[Shape], dict, Context], Shape]
    count: Callable[[list[Shape], Shape, dict], int]
    factory: Callable[[list[Shape], Shape, dict], Any] | None  # (in shapes, out shape, params) -> nn.Module
    min_inputs: int = 1
    max_inputs: int = 1
    key_params: tuple[str, ...] = ()
    param_map: dict[str, Param] = field(init=False)

    def __post_init__(self) -> None:
        self.param_map = {p.name: p for p in self.params}

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with the given params (already validated)."""
        out = self.defaults()
        out.update({k: v for k, v in params.items() if k in self.param_map})
        for p in self.params:
            if p.type == "int":
                out[p.name] = int(out[p.name])
            elif p.type == "float":
                out[p.name] = float(out[p.name])
        return out

    def make(self, in_shapes: list[Shape], out_shape: Shape, params: dict[str, Any]):
        """The torch module for this layer (imports torch)."""
        return self.factory(in_shapes, out_shape, self.resolve(params))


def fmt_shape(shape: Shape) -> str:
    return "x".join(str(s) for s in shape)


# ---- shape rules -----------------------------------------------------------------------

def _flat(kind: str):
    def need(shapes: list[Shape]) -> int:
        if len(shapes[0]) == 2:
            raise ShapeError(f"needs a flat input but gets the sequence {fmt_shape(shapes[0])} - "
                             "insert SequencePool (or Flatten) before it")
        if len(shapes[0]) != 1:
            raise ShapeError(f"needs a flat input but gets {fmt_shape(shapes[0])} - insert Flatten or GlobalAvgPool before it")
        return shapes[0][0]
    return need


def _image(shapes: list[Shape]) -> Shape:
    if len(shapes[0]) != 3:
        raise ShapeError(f"needs an image input (channels x height x width) but gets {fmt_shape(shapes[0])} - "
                         "use an image dataset such as digits, or Dense layers for flat data")
    return shapes[0]


def _conv_geometry(params: dict, hw: int) -> tuple[int, int]:
    """(padding, output size) for one spatial dimension, matching torch."""
    k, s, pad = params["kernel"], params["stride"], params["padding"]
    if pad == "same":
        p = (k - 1) // 2
        out = hw if s == 1 else (hw + 2 * p - k) // s + 1
    else:
        p = 0 if pad == "valid" else int(pad)
        out = (hw + 2 * p - k) // s + 1
    return p, out


def _dense_shape(shapes, params, ctx):
    _flat("Dense")(shapes)
    return (params["units"],)


def _conv_shape(shapes, params, ctx):
    c, h, w = _image(shapes)
    _, oh = _conv_geometry(params, h)
    _, ow = _conv_geometry(params, w)
    if oh < 1 or ow < 1:
        raise ShapeError(f"a {params['kernel']}x{params['kernel']} kernel does not fit a {h}x{w} input - "
                         "use a smaller kernel or padding 'same'")
    return (params["filters"], oh, ow)


def pool_out(i: int, k: int, s: int, p: int = 0, ceil_mode: bool = False) -> int:
    """torch's pooling size rule: floor (or ceil) of (i + 2p - k) / s, plus one; in ceil mode the
    last window must still start inside the input or its left padding."""
    if not ceil_mode:
        return (i + 2 * p - k) // s + 1
    out = -(-(i + 2 * p - k) // s) + 1
    if (out - 1) * s >= i + p:
        out -= 1
    return out


def _pool_shape(shapes, params, ctx):
    c, h, w = _image(shapes)
    size = params["size"]
    stride = params["stride"] or size
    if size > h or size > w:
        raise ShapeError(f"a {size}x{size} window does not fit a {h}x{w} input - remove a pooling layer or use a smaller size")
    ceil = params.get("ceil_mode", False)
    return (c, pool_out(h, size, stride, 0, ceil), pool_out(w, size, stride, 0, ceil))


def _deconv_shape(shapes, params, ctx):
    c, h, w = _image(shapes)
    k, s, p, op = params["kernel"], params["stride"], params["padding"], params["output_padding"]
    if op >= s:
        raise ShapeError(f"output_padding {op} must be smaller than the stride {s} - lower it or raise the stride")
    oh, ow = ((x - 1) * s - 2 * p + k + op for x in (h, w))
    if oh < 1 or ow < 1:
        raise ShapeError(f"padding {p} removes the whole {oh}x{ow} output - use less padding or a larger kernel")
    return (params["filters"], oh, ow)


def _gap_shape(shapes, params, ctx):
    c, _, _ = _image(shapes)
    return (c,)


def _flatten_shape(shapes, params, ctx):
    return (math.prod(shapes[0]),)


def _same_shape(shapes, params, ctx):
    return shapes[0]


def _add_shape(shapes, params, ctx):
    first = shapes[0]
    for s in shapes[1:]:
        if s != first:
            raise ShapeError(f"inputs must have equal shapes but get {', '.join(fmt_shape(x) for x in shapes)} - "
                             "add a Dense or Conv2d on one branch to match")
    return first


def _concat_shape(shapes, params, ctx):
    ranks = {len(s) for s in shapes}
    if len(ranks) != 1:
        raise ShapeError(f"cannot join flat and image inputs ({', '.join(fmt_shape(x) for x in shapes)}) - "
                         "Flatten the image branch")
    if len(shapes[0]) == 3 and len({s[1:] for s in shapes}) != 1:
        raise ShapeError(f"image inputs need the same height and width ({', '.join(fmt_shape(x) for x in shapes)}) - "
                         "pool or pad one branch so the sizes match")
    return (sum(s[0] for s in shapes), *shapes[0][1:])


def output_units(ctx: Context) -> int:
    """Units of the Output head: logits per class for cross-entropy, one unit for binary BCE/MSE,
    one per target for regression."""
    if ctx.task == "regression":
        return ctx.n_targets
    if ctx.loss == "cross_entropy":
        return ctx.n_classes
    if ctx.loss == "bce":
        return 1 if ctx.n_classes <= 2 else ctx.n_classes
    return 1 if ctx.n_classes <= 2 else ctx.n_classes


def _output_shape(shapes, params, ctx):
    if ctx.target_shape is not None:  # reconstruction: a Dense head reshaped to the target, or the image itself
        if shapes[0] == ctx.target_shape:
            return ctx.target_shape
        if len(shapes[0]) != 1:
            raise ShapeError(f"gets {fmt_shape(shapes[0])} but must give {fmt_shape(ctx.target_shape)} (the input's "
                             "shape) - end the decoder with that image shape or with a flat layer")
        return ctx.target_shape
    _flat("Output")(shapes)
    return (output_units(ctx),)


def _input_shape(shapes, params, ctx):  # filled in by infer() from the dataset
    raise AssertionError("Input shape comes from the dataset")


# ---- parameter counts ------------------------------------------------------------------

def _zero(ins, out, params):
    return 0


def _dense_count(ins, out, params):
    return ins[0][0] * out[0] + (out[0] if params.get("bias", True) else 0)


def _conv_count(ins, out, params):
    return ins[0][0] * out[0] * params["kernel"] ** 2 + (out[0] if params["bias"] else 0)


def _deconv_count(ins, out, params):
    return ins[0][0] * out[0] * params["kernel"] ** 2 + (out[0] if params["bias"] else 0)


def _bn_count(ins, out, params):
    return 2 * ins[0][0]


def _ln_count(ins, out, params):
    return 2 * math.prod(ins[0])


# ---- torch factories (import torch lazily) --------------------------------------------

def _make_dense(ins, out, p):
    from torch import nn
    return nn.Linear(ins[0][0], out[0], bias=p.get("bias", True))


def _make_output(ins, out, p):
    from torch import nn
    if len(out) > 1:  # reconstruction of an image
        if tuple(ins[0]) == tuple(out):
            return nn.Identity()
        return nn.Sequential(nn.Linear(ins[0][0], math.prod(out)), nn.Unflatten(1, tuple(out)))
    return nn.Linear(ins[0][0], out[0])


def _output_count(ins, out, params):
    return 0 if tuple(ins[0]) == tuple(out) else ins[0][0] * math.prod(out) + math.prod(out)


def _reshape_shape(shapes, params, ctx):
    want = (params["channels"], params["height"], params["width"])
    if math.prod(shapes[0]) != math.prod(want):
        raise ShapeError(f"cannot turn {fmt_shape(shapes[0])} ({math.prod(shapes[0])} values) into {fmt_shape(want)} "
                         f"({math.prod(want)} values) - make the layer before it give {math.prod(want)} units")
    return want


def _upsample_shape(shapes, params, ctx):
    c, h, w = _image(shapes)
    return (c, h * params["scale"], w * params["scale"])


def _vae_shape(shapes, params, ctx):
    n = _flat("VAESample")(shapes)
    if n % 2:
        raise ShapeError(f"needs an even number of inputs (k means, then k log-variances) but gets {n} - "
                         "give the Dense before it 2 x the latent size")
    return (n // 2,)


def _make_reshape(ins, out, p):
    from torch import nn
    return nn.Unflatten(1, tuple(out)) if len(ins[0]) == 1 else nn.Sequential(nn.Flatten(), nn.Unflatten(1, tuple(out)))


def _make_upsample(ins, out, p):
    from torch import nn
    return nn.Upsample(scale_factor=p["scale"], mode=p["mode"])


def _make_vae(ins, out, p):
    from engine.modules import VAESample
    return VAESample()


def _make_conv(ins, out, p):
    from torch import nn
    pad, _ = _conv_geometry(p, ins[0][1])
    if p["padding"] == "same" and p["stride"] == 1 and p["kernel"] % 2 == 0:
        pad = "same"  # even kernels need torch's asymmetric padding to keep the size
    return nn.Conv2d(ins[0][0], p["filters"], p["kernel"], stride=p["stride"], padding=pad, bias=p["bias"])


def _make_maxpool(ins, out, p):
    from torch import nn
    return nn.MaxPool2d(p["size"], stride=p["stride"] or p["size"], ceil_mode=p["ceil_mode"])


def _make_avgpool(ins, out, p):
    from torch import nn
    return nn.AvgPool2d(p["size"], stride=p["stride"] or p["size"], ceil_mode=p["ceil_mode"])


def _make_deconv(ins, out, p):
    from torch import nn
    return nn.ConvTranspose2d(ins[0][0], p["filters"], p["kernel"], stride=p["stride"], padding=p["padding"],
                              output_padding=p["output_padding"], bias=p["bias"])


def _make_gap(ins, out, p):
    from torch import nn
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _make_flatten(ins, out, p):
    from torch import nn
    return nn.Flatten()


def _make_dropout(ins, out, p):
    from torch import nn
    if p["spatial"] and len(ins[0]) == 3:
        return nn.Dropout2d(p["rate"])
    return nn.Dropout(p["rate"])


def _make_bn(ins, out, p):
    from torch import nn
    cls = nn.BatchNorm1d if len(ins[0]) == 1 else nn.BatchNorm2d
    return cls(ins[0][0], momentum=p["momentum"])


def _make_ln(ins, out, p):
    from torch import nn
    return nn.LayerNorm(list(ins[0]))


ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu", "softplus", "softmax")
ACTIVATION_FORMULAS = {
    "linear": "f(x) = x",
    "sigmoid": "f(x) = 1 / (1 + e^-x)",
    "tanh": "f(x) = (e^x - e^-x) / (e^x + e^-x)",
    "relu": "f(x) = max(0, x)",
    "leaky_relu": "f(x) = x if x > 0 else a*x",
    "elu": "f(x) = x if x > 0 else e^x - 1",
    "gelu": "f(x) = x * Phi(x)",
    "silu": "f(x) = x * sigmoid(x)",
    "softplus": "f(x) = ln(1 + e^x)",
    "softmax": "f(x)_i = e^x_i / sum_j e^x_j",
}


def _make_activation(ins, out, p):
    from torch import nn
    fn = p["function"]
    if fn == "softmax":
        return nn.Softmax(dim=1)
    if fn == "leaky_relu":
        return nn.LeakyReLU(p["slope"])
    return {"linear": nn.Identity, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU,
            "gelu": nn.GELU, "silu": nn.SiLU, "softplus": nn.Softplus}[fn]()


def _make_merge(op: str):
    def make(ins, out, p):
        from engine.modules import Merge  # torch only; imports nothing of the engine
        return Merge(op)
    return make


# ---- the registry ----------------------------------------------------------------------

_UNITS = Param("units", "int", 8, "Number of neurons in the layer", 1, 4096)
_BIAS = Param("bias", "bool", True, "Add a learned bias to each output")
# Initialisation of the weighted layers (engine/init.py applies it; "default" keeps torch's own)
INIT_SCHEMES = ("default", "zeros", "constant", "uniform", "normal", "lecun_normal", "lecun_uniform", "xavier_uniform",
                "xavier_normal", "he_uniform", "he_normal", "orthogonal")
BIAS_INITS = ("default", "zeros", "constant")
_INIT = (Param("init", "choice", "default",
               "Starting weights: torch default, zeros, constant, uniform(-a, a), normal(0, std), LeCun, Xavier/Glorot, "
               "He/Kaiming (gain of the following activation) or orthogonal", choices=INIT_SCHEMES),
         Param("init_value", "float", 0.05, "The constant for 'constant', the bound a for 'uniform', the std for 'normal'",
               -100.0, 100.0),
         Param("bias_init", "choice", "default", "Starting biases: torch default, zeros or constant", choices=BIAS_INITS),
         Param("bias_value", "float", 0.0, "The constant for bias_init 'constant'", -100.0, 100.0))
_POOL = (Param("size", "int", 2, "Width and height of the pooling window", 1, 8),
         Param("stride", "int", 0, "Step between windows; 0 means the window size", 0, 8),
         Param("ceil_mode", "bool", False, "Round the output size up, so a last partial window keeps the edge"))

REGISTRY: dict[str, LayerKind] = {k.kind: k for k in [
    LayerKind("Input", "Core", "The data enters here; its shape comes from the dataset.", "x",
              (), _input_shape, _zero, None, min_inputs=0, max_inputs=0),
    LayerKind("Dense", "Core", "Fully connected layer: every output is a weighted sum of all inputs.",
              "y = W x + b", (_UNITS, _BIAS, *_INIT), _dense_shape, _dense_count, _make_dense, key_params=("units",)),
    LayerKind("Flatten", "Core", "Unrolls an image (C x H x W) into one flat vector for Dense layers.",
              "y = reshape(x, C*H*W)", (), _flatten_shape, _zero, _make_flatten),
    LayerKind("Output", "Core",
              "The head tied to the loss: one logit per class for cross-entropy, one unit for binary BCE/MSE.",
              "y = W x + b (softmax/sigmoid applied by the loss)", _INIT, _output_shape,
              lambda i, o, p: _output_count(i, o, p) if len(o) > 1 else _dense_count(i, o, p), _make_output),
    LayerKind("Reshape", "Core", "Turns a flat vector back into an image (channels x height x width).",
              "y = reshape(x, C, H, W)",
              (Param("channels", "int", 1, "Channels of the image", 1, 512),
               Param("height", "int", 8, "Height in pixels", 1, 512),
               Param("width", "int", 8, "Width in pixels", 1, 512)),
              _reshape_shape, _zero, _make_reshape, key_params=("channels", "height", "width")),
    LayerKind("Conv2d", "Convolution", "Slides learned filters over the image; each filter makes one feature map.",
              "y[f] = sum_c W[f,c] * x[c] + b[f]",
              (Param("filters", "int", 8, "Number of filters (output channels)", 1, 512),
               Param("kernel", "int", 3, "Filter width and height in pixels", 1, 11),
               Param("stride", "int", 1, "Step between filter positions", 1, 4),
               Param("padding", "choice", "same", "Zero border: 'same' keeps the size (stride 1), 'valid' adds none",
                     choices=("same", "valid", "1", "2", "3")),
               _BIAS, *_INIT),
              _conv_shape, _conv_count, _make_conv, key_params=("filters", "kernel", "stride")),
    LayerKind("ConvTranspose2d", "Convolution",
              "Learned upsampling: each input value scatters a scaled copy of the filter into a larger map.",
              "o = (i - 1) s - 2p + k + output_padding",
              (Param("filters", "int", 8, "Number of filters (output channels)", 1, 512),
               Param("kernel", "int", 2, "Filter width and height in pixels", 1, 11),
               Param("stride", "int", 2, "Spacing of the scattered copies (the upsampling factor)", 1, 4),
               Param("padding", "int", 0, "Rows and columns cut from each border of the output", 0, 5),
               Param("output_padding", "int", 0, "Extra rows and columns added at the bottom/right (< stride)", 0, 3),
               _BIAS),
              _deconv_shape, _deconv_count, _make_deconv, key_params=("filters", "kernel", "stride")),
    LayerKind("MaxPool2d", "Convolution", "Keeps the largest value in each window, shrinking the map.",
              "y = max over window(x)", _POOL, _pool_shape, _zero, _make_maxpool, key_params=("size",)),
    LayerKind("AvgPool2d", "Convolution", "Averages each window, shrinking the map.",
              "y = mean over window(x)", _POOL, _pool_shape, _zero, _make_avgpool, key_params=("size",)),
    LayerKind("GlobalAvgPool", "Convolution", "Averages each feature map to one number per channel.",
              "y[c] = mean_hw x[c,h,w]", (), _gap_shape, _zero, _make_gap),
    LayerKind("Dropout", "Normalisation and regularisation",
              "During training, zeroes a random fraction of values so the net cannot rely on any one.",
              "y = x * m / (1-p), m ~ Bernoulli(1-p)",
              (Param("rate", "float", 0.5, "Fraction of values dropped while training", 0.0, 0.95),
               Param("spatial", "bool", False, "On images, drop whole feature maps (Dropout2d)")),
              _same_shape, _zero, _make_dropout, key_params=("rate",)),
    LayerKind("BatchNorm", "Normalisation and regularisation",
              "Normalises each channel over the batch, then scales and shifts it (1-d or 2-d from the shape).",
              "y = gamma (x - mean_batch) / sqrt(var_batch + eps) + beta",
              (Param("momentum", "float", 0.1, "How fast the running statistics follow the batches", 0.001, 1.0),),
              _same_shape, _bn_count, _make_bn),
    LayerKind("LayerNorm", "Normalisation and regularisation",
              "Normalises all values of each sample, then scales and shifts them.",
              "y = gamma (x - mean_sample) / sqrt(var_sample + eps) + beta",
              (), _same_shape, _ln_count, _make_ln),
    LayerKind("Activation", "Activation", "Applies a non-linear function to every value.",
              "; ".join(f"{k}: {v}" for k, v in ACTIVATION_FORMULAS.items()),
              (Param("function", "choice", "relu", "Which function", choices=ACTIVATIONS),
               Param("slope", "float", 0.01, "Negative slope a for leaky_relu", 0.0, 1.0)),
              _same_shape, _zero, _make_activation, key_params=("function",)),
    LayerKind("Upsample", "Convolution", "Enlarges each feature map by repeating (nearest) or interpolating pixels.",
              "y[c, i, j] = x[c, i // s, j // s]",
              (Param("scale", "int", 2, "Factor for height and width", 1, 8),
               Param("mode", "choice", "nearest", "How new pixels are filled", choices=("nearest", "bilinear"))),
              _upsample_shape, _zero, _make_upsample, key_params=("scale",)),
    LayerKind("VAESample", "Generative",
              "A VAE's bottleneck: reads k means and k log-variances and draws z with the reparameterisation "
              "trick (the mean when evaluating); its KL term, weighted by beta, joins the loss.",
              "z = mu + exp(logvar / 2) * eps, eps ~ N(0, 1); KL = 0.5 sum(mu^2 + e^logvar - logvar - 1)",
              (), _vae_shape, _zero, _make_vae),
    LayerKind("Add", "Merge", "Adds its inputs element-wise - the join of a residual connection.",
              "y = x1 + x2 + ...", (), _add_shape, _zero, _make_merge("add"), min_inputs=2, max_inputs=8),
    LayerKind("Concat", "Merge", "Joins its inputs along the feature / channel axis.",
              "y = [x1, x2, ...]", (), _concat_shape, _zero, _make_merge("concat"), min_inputs=2, max_inputs=8),
]}



def _seq_rule(fn):
    """engine.layers_sequence raises ValueError (it cannot import ShapeError without a circle)."""
    def shape(shapes, params, ctx):
        try:
            return fn(shapes, params, ctx)
        except ValueError as exc:
            raise ShapeError(str(exc)) from None
    return shape


_taken = {d["kind"] for d in SEQUENCE_KINDS} & set(REGISTRY)
assert not _taken, f"layer kinds defined twice: {_taken}"  # a second definition would silently replace the first
REGISTRY.update({d["kind"]: LayerKind(d["kind"], d["group"], d["help"], d["formula"],
                                      tuple(Param(**p) for p in d["params"]), _seq_rule(d["shape"]), d["count"],
                                      d["factory"], key_params=tuple(d.get("key_params", ())))
                 for d in SEQUENCE_KINDS})
GROUPS = ("Core", "Convolution", "Normalisation and regularisation", "Activation", "Merge", "Sequence", "Attention", "Generative")


def kinds_in_group(group: str) -> list[LayerKind]:
    return [k for k in REGISTRY.values() if k.group == group]


def describe_params(kind: str, params: dict) -> str:
    """Short summary of the key parameters, e.g. ``8 filters 3x3 /1``."""
    k = REGISTRY.get(kind)
    if k is None:
        return ""
    p = k.resolve(params)
    if kind == "Dense":
        return f"{p['units']} units"
    if kind == "Conv2d":
        return f"{p['filters']} filters {p['kernel']}x{p['kernel']}" + (f" /{p['stride']}" if p["stride"] > 1 else "")
    if kind == "ConvTranspose2d":
        return f"{p['filters']} filters {p['kernel']}x{p['kernel']} x{p['stride']}"
    if kind in ("MaxPool2d", "AvgPool2d"):
        return f"{p['size']}x{p['size']}" + (" ceil" if p["ceil_mode"] else "")
    if kind == "Dropout":
        return f"p = {p['rate']:g}"
    if kind == "Activation":
        return p["function"] + (f" ({p['slope']:g})" if p["function"] == "leaky_relu" else "")
    if kind == "Reshape":
        return f"{p['channels']}x{p['height']}x{p['width']}"
    if kind == "Upsample":
        return f"x{p['scale']}"
    return describe_sequence(kind, p)


# ---- inference over a whole design ------------------------------------------------------

@dataclass
class Report:
    """Result of shape inference: per-node shapes, parameter counts and problems."""

    order: list[str] = field(default_factory=list)  # topological order of reachable nodes
    shapes: dict[str, Shape] = field(default_factory=dict)
    in_shapes: dict[str, list[Shape]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    node_errors: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    input_id: str | None = None
    output_id: str | None = None

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def total_params(self) -> int:
        return sum(self.counts.values())


def topo_order(spec: Spec) -> tuple[list[str], set[str]]:
    """Kahn's algorithm over known layers; returns (order, ids left in a cycle)."""
    ids = [lay.id for lay in spec.layers]
    known = set(ids)
    indeg = {i: 0 for i in ids}
    succ: dict[str, list[str]] = {i: [] for i in ids}
    for e in spec.edges:
        if e.src in known and e.dst in known:
            indeg[e.dst] += 1
            succ[e.src].append(e.dst)
    ready = [i for i in ids if indeg[i] == 0]
    order: list[str] = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    return order, known - set(order)


def would_cycle(spec: Spec, src: str, dst: str) -> bool:
    """True if an edge src -> dst would close a cycle (dst already reaches src)."""
    if src == dst:
        return True
    stack, seen = [dst], set()
    while stack:
        n = stack.pop()
        if n == src:
            return True
        if n in seen:
            continue
        seen.add(n)
        stack.extend(spec.outputs_of(n))
    return False


def infer(spec: Spec, data_info: Any | None) -> Report:
    """Check the graph and every layer, computing shapes where the inputs allow."""
    g = spec.generative
    if g is not None and g.is_gan:
        return _infer_gan(spec)
    rep = Report()
    probs = rep.problems

    def node_err(lid: str, msg: str, severity: str = "error") -> None:
        lay = spec.layer(lid)
        label = f"{lay.kind} {lid}" if lay else lid
        probs.append(Problem(lid, f"{label} {msg}", severity))
        if severity == "error":
            rep.node_errors.setdefault(lid, msg)

    seen: set[str] = set()
    for lay in spec.layers:
        if lay.id in seen:
            probs.append(Problem(lay.id, f"two layers share the id {lay.id} - rename one"))
        seen.add(lay.id)
        kind = REGISTRY.get(lay.kind)
        if kind is None:
            node_err(lay.id, f"has an unknown kind - use one of {', '.join(REGISTRY)}")
            continue
        for name, value in lay.params.items():
            par = kind.param_map.get(name)
            if par is None:
                node_err(lay.id, f"has an unknown parameter '{name}' - remove it")
            elif (msg := par.check(value)) is not None:
                node_err(lay.id, f"parameter {name} {msg}")

    ids = {lay.id for lay in spec.layers}
    seen_edges: set[tuple[str, str]] = set()
    for e in spec.edges:
        for end in (e.src, e.dst):
            if end not in ids:
                probs.append(Problem(f"edge {e.src}->{e.dst}", f"refers to a missing layer '{end}' - delete the edge"))
        if (e.src, e.dst) in seen_edges:
            probs.append(Problem(f"edge {e.src}->{e.dst}", "is duplicated - delete one copy"))
        seen_edges.add((e.src, e.dst))

    inputs = [lay.id for lay in spec.layers if lay.kind == "Input"]
    outputs = [lay.id for lay in spec.layers if lay.kind == "Output"]
    if not inputs:
        probs.append(Problem("design", "has no Input layer - drag one from the palette"))
    for extra in inputs[1:]:
        node_err(extra, "is a second Input - a design has exactly one")
    if not outputs:
        probs.append(Problem("design", "has no Output layer - add one at the end of the network"))
    for extra in outputs[1:]:
        node_err(extra, "is a second Output - a design has exactly one")
    rep.input_id = inputs[0] if inputs else None
    rep.output_id = outputs[0] if outputs else None

    order, cyclic = topo_order(spec)
    for lid in sorted(cyclic):
        node_err(lid, "is part of a cycle - remove one of the edges that loop back")

    for lay in spec.layers:
        kind = REGISTRY.get(lay.kind)
        if kind is None:
            continue
        n_in = len([s for s in spec.inputs_of(lay.id) if s in ids])
        if n_in < kind.min_inputs:
            need = "an input" if kind.min_inputs == 1 else f"at least {kind.min_inputs} inputs"
            node_err(lay.id, f"needs {need} but has {n_in} - connect a layer into it")
        elif n_in > kind.max_inputs:
            if kind.max_inputs == 0:
                node_err(lay.id, "cannot have inputs - remove the edges into it")
            else:
                node_err(lay.id, f"takes {kind.max_inputs} input(s) but has {n_in} - join branches with Add or Concat first")
        if lay.kind != "Output" and not spec.outputs_of(lay.id) and lay.id not in cyclic:
            node_err(lay.id, "leads nowhere - connect its output or delete it", "warning")

    # reachability from Input to Output
    if rep.input_id and rep.output_id and rep.output_id not in cyclic:
        reach, stack = set(), [rep.input_id]
        while stack:
            n = stack.pop()
            if n not in reach:
                reach.add(n)
                stack.extend(spec.outputs_of(n))
        if rep.output_id not in reach:
            probs.append(Problem(rep.output_id,
                                 f"Output {rep.output_id} is not connected to the Input - wire a path between them"))

    # shapes in topological order
    ctx = Context(n_classes=getattr(data_info, "n_classes", 2), loss=spec.training.loss,
                  task=getattr(data_info, "task", "classification"), n_targets=getattr(data_info, "n_targets", 1),
                  vocab=getattr(data_info, "vocab", 0),
                  target_shape=getattr(data_info, "target_shape", None))
    if g is not None and g.is_autoencoder and data_info is not None:
        ctx.target_shape = tuple(data_info.input_shape)  # the target is the input itself
    rep.order = order
    for lid in order:
        lay = spec.layer(lid)
        kind = REGISTRY.get(lay.kind)
        if kind is None or lid in rep.node_errors:
            continue
        if lay.kind == "Input":
            if data_info is not None:
                rep.shapes[lid] = tuple(data_info.input_shape)
                rep.counts[lid] = 0
            continue
        srcs = spec.inputs_of(lid)
        if not srcs or any(s not in rep.shapes for s in srcs):
            continue  # an upstream problem was already reported
        in_shapes = [rep.shapes[s] for s in srcs]
        params = kind.resolve(lay.params)
        try:
            out = kind.shape(in_shapes, params, ctx)
        except ShapeError as exc:
            node_err(lid, str(exc))
            continue
        rep.shapes[lid] = tuple(int(x) for x in out)
        rep.in_shapes[lid] = in_shapes
        rep.counts[lid] = kind.count(in_shapes, rep.shapes[lid], params)
    if ctx.loss == "bce" and ctx.n_classes > 2 and rep.output_id:
        probs.append(Problem("training.loss", f"BCE suits two classes but the dataset has {ctx.n_classes} - use cross_entropy"))
    return rep


@dataclass
class SubnetInfo:
    """What a GAN sub-network's shape checks need in place of a dataset."""

    input_shape: tuple[int, ...]
    target_shape: tuple[int, ...]
    n_classes: int = 2
    kind: str = "gan"


def gan_subnet_infos(g) -> dict[str, SubnetInfo]:
    """generator: noise -> a 2-D point; discriminator: a 2-D point -> one logit (real or fake)."""
    return {"generator": SubnetInfo((int(g.noise_dim),), (2,)), "discriminator": SubnetInfo((2,), (1,))}


def _infer_gan(spec: Spec) -> Report:
    """Each named sub-network checked as a design of its own; one report over all layers."""
    from engine.generative_spec import GAN_NETWORKS, sub_spec

    rep = Report()
    infos = gan_subnet_infos(spec.generative)
    claimed: set[str] = set()
    for name in GAN_NETWORKS:
        start = spec.generative.networks.get(name)
        lay = spec.layer(start) if start else None
        if lay is None or lay.kind != "Input":
            rep.problems.append(Problem("generative.networks", f"the {name} needs an Input layer - name its id in "
                                                               f"generative.networks.{name}"))
            continue
        sub = sub_spec(spec, name)
        part = infer(sub, infos[name])
        both = claimed & {lay.id for lay in sub.layers}
        if both:
            rep.problems.append(Problem(sorted(both)[0], "is wired into both the generator and the discriminator - "
                                                         "the two networks must not be connected"))
        claimed |= {lay.id for lay in sub.layers}
        rep.order += part.order
        for attr in ("shapes", "in_shapes", "counts", "node_errors"):
            getattr(rep, attr).update(getattr(part, attr))
        rep.problems += [Problem(p.where, f"{p.message} (in the {name})", p.severity) for p in part.problems]
        if name == "generator":
            rep.input_id, rep.output_id = part.input_id, part.output_id
    for lay in spec.layers:
        if lay.id not in claimed:
            rep.problems.append(Problem(lay.id, f"{lay.kind} {lay.id} belongs to neither network - connect it to the "
                                                "generator or the discriminator, or delete it", "warning"))
    return rep
