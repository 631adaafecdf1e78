"""The design as the source of a plain ``nn.Module`` (the exported project's ``model.py``).

The generated class builds the very modules engine.build.GraphNet builds, in the same
(topological) order with the same initialisation, under ``self.layers[<layer id>]``: so
state_dict keys match our exports (``layers.dense1.weight``), ``torch.manual_seed(seed); Net()``
gives the playground's initial weights, and the forward pass runs the same operations in the
same order (dropout draws the same numbers). Helper modules (TokenEmbedding, Recurrent, ...)
are copied from engine.modules, so the file needs only torch.
"""
from __future__ import annotations

import inspect
import keyword

from engine import init as init_mod
from engine import layers as L
from engine import modules
from engine.project.readme import plain_name
from engine.spec import Spec

RESERVED = {"self", "torch", "nn", "F", "math"}
# the design kinds that cannot become a plain classifier/regressor module
REFUSED_KINDS = {"VAESample": "a VAE's sampling layer"}


class ProjectError(ValueError):
    """The design cannot be exported as a project; the message names the layer or kind and why."""


def var(layer_id: str) -> str:
    """A Python variable for a layer's value: the id itself unless it is a keyword or one of ours."""
    return layer_id + "_" if keyword.iskeyword(layer_id) or layer_id in RESERVED else layer_id


def shape_text(shape) -> str:
    return "(N, " + ", ".join(str(s) for s in shape) + ")"


def _r(v) -> str:
    return repr(float(v)) if isinstance(v, float) else repr(v)


def _q(v) -> str:
    """Strings in double quotes (as the rest of the file), numbers as they are."""
    return f'"{v}"' if isinstance(v, str) else repr(v)


def _layer(kind: str, p: dict, ins: list, out: tuple) -> tuple[str | None, set[str]]:
    """(constructor source or None for an inline operation, helper classes it needs)."""
    i0 = ins[0]
    if kind == "Dense":
        return f"nn.Linear({i0[0]}, {p['units']}, bias={p['bias']})", set()
    if kind == "Output":
        if len(out) > 1:
            raise ProjectError("reconstruction heads (autoencoders) are not exported as projects")
        return f"nn.Linear({i0[0]}, {out[0]})", set()
    if kind == "Flatten":
        return "nn.Flatten()", set()
    if kind == "Conv2d":
        pad, _ = L._conv_geometry(p, i0[1])
        if p["padding"] == "same" and p["stride"] == 1 and p["kernel"] % 2 == 0:
            pad = "same"
        return (f"nn.Conv2d({i0[0]}, {p['filters']}, {p['kernel']}, stride={p['stride']}, padding={_q(pad)}, "
                f"bias={p['bias']})"), set()
    if kind == "ConvTranspose2d":
        return (f"nn.ConvTranspose2d({i0[0]}, {p['filters']}, {p['kernel']}, stride={p['stride']}, "
                f"padding={p['padding']}, output_padding={p['output_padding']}, bias={p['bias']})"), set()
    if kind in ("MaxPool2d", "AvgPool2d"):
        return f"nn.{kind}({p['size']}, stride={p['stride'] or p['size']}, ceil_mode={p['ceil_mode']})", set()
    if kind == "GlobalAvgPool":
        return "nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())", set()
    if kind == "Dropout":
        cls = "Dropout2d" if p["spatial"] and len(i0) == 3 else "Dropout"
        return f"nn.{cls}({_r(p['rate'])})", set()
    if kind == "BatchNorm":
        cls = "BatchNorm1d" if len(i0) == 1 else "BatchNorm2d"
        return f"nn.{cls}({i0[0]}, momentum={_r(p['momentum'])})", set()
    if kind == "LayerNorm":
        return f"nn.LayerNorm({list(i0)})", set()
    if kind == "Activation":
        fn = p["function"]
        if fn == "softmax":
            return "nn.Softmax(dim=1)", set()
        if fn == "leaky_relu":
            return f"nn.LeakyReLU({_r(p['slope'])})", set()
        return "nn." + {"linear": "Identity", "sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU", "elu": "ELU",
                        "gelu": "GELU", "silu": "SiLU", "softplus": "Softplus"}[fn] + "()", set()
    if kind == "Upsample":
        return f"nn.Upsample(scale_factor={p['scale']}, mode={_q(p['mode'])})", set()
    if kind == "Reshape":
        if len(i0) == 1:
            return f"nn.Unflatten(1, {tuple(out)})", set()
        return f"nn.Sequential(nn.Flatten(), nn.Unflatten(1, {tuple(out)}))", set()
    if kind in ("Add", "Concat"):
        return None, set()
    if kind == "Embedding":
        return f"TokenEmbedding({p['vocab']}, {p['dim']})", {"TokenEmbedding"}
    if kind in ("RNN", "LSTM", "GRU"):
        return (f"Recurrent({_q(kind)}, {i0[1]}, {p['units']}, layers={p['layers']}, "
                f"bidirectional={p['bidirectional']}, sequence={p['sequence']})"), {"Recurrent"}
    if kind == "SelfAttention":
        return (f"SelfAttention({i0[1]}, heads={p['heads']}, causal={p['causal']}, residual={p['residual']})",
                {"SelfAttention"})
    if kind == "PositionalEncoding":
        return f"PositionalEncoding({i0[0]}, {i0[1]}, {_q(p['kind'])})", {"PositionalEncoding"}
    if kind == "SequencePool":
        return f"SequencePool({_q(p['mode'])})", {"SequencePool"}
    if kind == "ToSequence":
        return f"Reshape({tuple(out)})", {"Reshape"}
    raise ProjectError(f"layer kind {kind} cannot be written as plain PyTorch code yet")


def check_design(spec: Spec) -> None:
    """ProjectError naming the design kind or the layer if ``spec`` cannot become a project."""
    g = spec.generative
    if g is not None:
        what = {"gan": "a GAN (two networks trained against each other)", "vae": "a VAE",
                "autoencoder": "an autoencoder"}.get(g.kind, g.kind)
        raise ProjectError(f"'{spec.name}' is {what}: only classifier and regression designs can be exported as a "
                           "PyTorch project for now - export its weights instead (File > Export weights)")
    for lay in spec.layers:
        if lay.kind in REFUSED_KINDS:
            raise ProjectError(f"{lay.kind} {lay.id} is {REFUSED_KINDS[lay.kind]}, which a project export cannot "
                               "write yet - remove it or export the weights instead")


def model_source(spec: Spec, report: L.Report) -> str:
    """The text of model.py for a design whose shapes ``report`` (engine.layers.infer) has checked."""
    check_design(spec)
    order = [lid for lid in report.order if lid in report.shapes]
    ctor, fwd, helpers = [], [], set()
    in_var = var(report.input_id)
    for lid in order:
        lay = spec.layer(lid)
        out_shape = report.shapes[lid]
        if lay.kind == "Input":
            continue
        kind = L.REGISTRY[lay.kind]
        p = kind.resolve(lay.params)
        try:
            code, need = _layer(lay.kind, p, report.in_shapes[lid], out_shape)
        except ProjectError as exc:
            raise ProjectError(f"{lay.kind} {lid}: {exc}") from None
        helpers |= need
        srcs = [var(s) for s in spec.inputs_of(lid)]
        note = "" if lid == report.output_id or spec.outputs_of(lid) else "  (leads nowhere in the design)"
        if code is not None:
            ctor.append(f'        self.layers["{lid}"] = {code}')
            ctor += _init_lines(spec, lid, lay.kind, p)
            expr = f'self.layers["{lid}"](' + ", ".join(srcs) + ")"
        elif lay.kind == "Add":
            expr = " + ".join(srcs)
        else:
            expr = f"torch.cat([{', '.join(srcs)}], dim=1)"
        fwd.append(f"        {var(lid)} = {expr}  # {shape_text(out_shape)}{note}")
    fwd.append(f"        return {var(report.output_id)}")
    n_params = sum(report.counts.values())
    parts = [_HEADER.format(name=plain_name(spec.name), n_params=n_params, in_shape=shape_text(report.shapes[report.input_id]),
                            out_shape=shape_text(report.shapes[report.output_id]),
                            imports=_imports(helpers, ctor))]
    if any("init_weight" in line for line in ctor):
        parts.append(inspect.getsource(init_mod.fans))
        parts.append(inspect.getsource(init_mod.init_weight))
    for name in ("TokenEmbedding", "Recurrent", "SelfAttention", "PositionalEncoding", "SequencePool", "Reshape"):
        if name in helpers:
            parts.append(inspect.getsource(getattr(modules, name)))
    body = "\n".join(ctor) if ctor else "        pass"
    parts.append(_CLASS.format(name=plain_name(spec.name), body=body, in_var=in_var,
                               in_shape=shape_text(report.shapes[report.input_id]), forward="\n".join(fwd)))
    parts.append(_FOOTER)
    return "\n\n".join(part.rstrip("\n") + "\n" for part in parts)


def _imports(helpers: set[str], ctor: list[str]) -> str:
    """math only when a copied helper or init_weight uses it."""
    uses_math = bool(helpers & {"SelfAttention", "PositionalEncoding"}) or any("init_weight" in c for c in ctor)
    return ("import math\n\n" if uses_math else "") + "import torch\nfrom torch import nn"


def _init_lines(spec: Spec, lid: str, kind: str, p: dict) -> list[str]:
    """The design's weight/bias initialisation, right after construction (as engine.init does it)."""
    if kind not in init_mod.WEIGHTED_KINDS:
        return []
    out = []
    scheme = p.get("init", "default")
    if scheme != "default":
        g = init_mod.gain(*init_mod.following_activation(spec, lid))
        value = _r(float(p.get("init_value", 0.05)))
        out.append(f'        init_weight(self.layers["{lid}"].weight, {_q(scheme)}, {value}, {_r(g)})')
    if p.get("bias", True) and p.get("bias_init", "default") != "default":
        value = 0.0 if p["bias_init"] == "zeros" else float(p.get("bias_value", 0.0))
        out.append(f'        with torch.no_grad():\n            self.layers["{lid}"].bias.fill_({_r(value)})')
    return out


_HEADER = '''"""The network of the Neural Playground design "{name}" as a plain PyTorch module.

{n_params} parameters; input {in_shape}, output {out_shape} (logits, or the predicted numbers
for regression; the loss in train.py applies softmax/sigmoid). Layer names are the design's
layer ids, so ``Net().load_state_dict(torch.load("weights.pt", weights_only=True)["state_dict"])``
reads the playground's exported weights. ``torch.manual_seed(seed); Net()`` gives the same
starting weights as the playground with that seed: layers are built in the same order.
"""
{imports}'''

_CLASS = '''class Net(nn.Module):
    """Generated from the design "{name}"; N in the shape comments is the batch size."""

    def __init__(self):
        super().__init__()
        # built in the design's topological order: the seed then fixes every weight
        self.layers = nn.ModuleDict()
{body}

    def forward(self, {in_var}: torch.Tensor) -> torch.Tensor:  # {in_shape}
{forward}'''

_FOOTER = '''if __name__ == "__main__":
    net = Net()
    print(net)
    print(sum(p.numel() for p in net.parameters()), "parameters")'''
