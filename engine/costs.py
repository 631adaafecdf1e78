"""Multiply-accumulate counts per sample, from the layer registry's shapes (no torch).

One MAC is one multiplication added to a running sum. Counted the usual way (as fvcore and
ptflops do): Dense/Output in*out, Conv2d out_h*out_w*filters*(in_channels*k*k); element-wise
layers (activations, normalisation, pooling, merges) count one operation per output value,
so their share shows, though they are tiny next to the weighted layers.
"""
from __future__ import annotations

import math

from engine import layers as L

ELEMENTWISE = ("Activation", "BatchNorm", "LayerNorm", "Add", "MaxPool2d", "AvgPool2d", "GlobalAvgPool")


def layer_macs(kind: str, in_shapes: list[tuple[int, ...]], out_shape: tuple[int, ...], params: dict) -> int:
    """MACs for one sample through one layer."""
    if kind in ("Dense", "Output"):
        return int(in_shapes[0][0]) * int(out_shape[0])
    if kind == "Conv2d":
        k = int(params["kernel"])
        c_in = int(in_shapes[0][0])
        return int(math.prod(out_shape)) * c_in * k * k
    if kind in ("MaxPool2d", "AvgPool2d"):
        size = int(params["size"])
        return int(math.prod(out_shape)) * size * size
    if kind == "GlobalAvgPool":
        return int(math.prod(in_shapes[0]))
    if kind in ELEMENTWISE:
        return int(math.prod(out_shape))
    return 0  # Input, Flatten, Dropout (identity at inference), Concat: no arithmetic


def design_macs(spec, report: L.Report) -> dict[str, int]:
    """{layer id: MACs per sample} for every layer whose shapes are known."""
    out: dict[str, int] = {}
    for lid, ins in report.in_shapes.items():
        lay = spec.layer(lid)
        kind = L.REGISTRY.get(lay.kind) if lay is not None else None
        if kind is None or lid not in report.shapes:
            continue
        out[lid] = layer_macs(lay.kind, ins, report.shapes[lid], kind.resolve(lay.params))
    return out


def fmt_count(n: float) -> str:
    """1234 -> 1.2k, 3.4M, 5.6G."""
    n = float(n)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


def fmt_bytes(n: float) -> str:
    n = float(n)
    for unit, div in (("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n:.0f} B"
