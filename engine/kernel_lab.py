"""The kernel lab's numbers: one convolution, pooling or transposed convolution on plain arrays.

``compute`` runs the very torch functions the engine's layers wrap (conv2d, max_pool2d,
avg_pool2d, conv_transpose2d) in float64, so what the lab shows is what a Conv2d, MaxPool2d,
AvgPool2d or ConvTranspose2d layer computes. ``explain`` spells out the multiply-add behind one
output cell, ``size_formula`` the output size with the numbers filled in. Everything takes
plain arguments (lists or numpy arrays), so tests, the CLI and the worker call it alike.
torch is imported inside ``compute`` only: the presets and formulas load without it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.layers import pool_out

OPS = ("conv", "maxpool", "avgpool", "transposed")
OP_LABELS = {"conv": "convolution (cross-correlation)", "maxpool": "max pool", "avgpool": "average pool",
             "transposed": "transposed convolution"}


class LabError(ValueError):
    """Arguments the lab cannot use; the message names the field and the fix."""


@dataclass
class LabResult:
    output: np.ndarray  # (maps, oh, ow) float64
    out_size: tuple[int, int]
    pad: int
    formula: str  # the output-size formula with the numbers filled in
    params: int  # parameters of the equivalent layer (weights + one bias per map)
    layer: str  # that layer, e.g. "Conv2d(3 -> 6, 5x5, stride 1, padding 0)"
    op: str = "conv"
    extra: dict = field(default_factory=dict)


def _as_input(x) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (ValueError, TypeError):
        raise LabError("input: every row needs the same number of values") from None
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or min(a.shape) < 1:
        raise LabError(f"input: needs rows x columns numbers (or channels x rows x columns), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise LabError("input: every cell must be a finite number")
    return a


def _as_kernel(k, channels: int, op: str) -> np.ndarray:
    """(maps, channels, k, k) for conv; (channels, maps, k, k) for transposed conv (torch's layouts)."""
    try:
        a = np.asarray(k, dtype=np.float64)
    except (ValueError, TypeError):
        raise LabError("kernel: every row needs the same number of values") from None
    if a.ndim == 2:
        a = np.broadcast_to(a, (channels, *a.shape)).copy() if channels > 1 else a[None]
    if a.ndim == 3:
        a = a[None] if op == "conv" else a[:, None]
    if a.ndim != 4 or a.shape[2] != a.shape[3] or a.shape[2] < 1:
        raise LabError(f"kernel: needs a square k x k grid (per channel), got shape {np.asarray(k).shape}")
    if (a.shape[1] if op == "conv" else a.shape[0]) != channels:
        raise LabError(f"kernel: has {a.shape[1] if op == 'conv' else a.shape[0]} channel(s) but the input has {channels} "
                       "- give one k x k grid per input channel")
    if not np.all(np.isfinite(a)):
        raise LabError("kernel: every cell must be a finite number")
    return a


def resolve_padding(padding, k: int, stride: int, op: str) -> int:
    if padding == "same":
        if op == "transposed":
            raise LabError("padding: 'same' applies to convolution and pooling - give a number for transposed convolution")
        return (k - 1) // 2
    try:
        p = int(padding)
    except (TypeError, ValueError):
        raise LabError(f"padding: {padding!r:.20} must be a whole number or 'same'") from None
    if p < 0 or p > 10:
        raise LabError(f"padding: {p} must be between 0 and 10")
    return p


def size_formula(op: str, i: int, k: int, p: int, s: int, ceil_mode: bool = False) -> tuple[int, str]:
    """(output size, the formula with the numbers filled in) for one spatial side."""
    if op == "transposed":
        o = (i - 1) * s - 2 * p + k
        return o, f"o = (i - 1) s - 2p + k = ({i} - 1)*{s} - 2*{p} + {k} = {o}"
    if op != "conv" and ceil_mode:
        o = pool_out(i, k, s, p, True)
        note = "" if o == -(-(i + 2 * p - k) // s) + 1 else " (the last window would start in the padding: one less)"
        return o, f"o = ceil((i + 2p - k) / s) + 1 = ceil(({i} + 2*{p} - {k}) / {s}) + 1 = {o}{note}"
    o = math.floor((i + 2 * p - k) / s) + 1
    return o, f"o = floor((i + 2p - k) / s) + 1 = floor(({i} + 2*{p} - {k}) / {s}) + 1 = {o}"


def compute(x, kernel=None, *, op: str = "conv", stride: int = 1, padding=0, size: int = 2, ceil_mode: bool = False,
            bias: float = 0.0) -> LabResult:
    """Apply one operation with torch; ``kernel`` is unused by pools (their window is ``size``)."""
    import torch
    import torch.nn.functional as F

    if op not in OPS:
        raise LabError(f"operation: {op!r:.20} is not one of {', '.join(OPS)}")
    a = _as_input(x)
    c, h, w = a.shape
    stride = int(stride)
    if not 1 <= stride <= 8:
        raise LabError(f"stride: {stride} must be between 1 and 8")
    if op in ("conv", "transposed"):
        if kernel is None:
            raise LabError("kernel: give a k x k grid of numbers")
        kk = _as_kernel(kernel, c, op)
        k = kk.shape[2]
    else:
        k = int(size)
        if not 1 <= k <= 8:
            raise LabError(f"window size: {k} must be between 1 and 8")
    p = resolve_padding(padding, k, stride, op)
    if op in ("maxpool", "avgpool") and p > k // 2:
        raise LabError(f"padding: {p} is more than half the {k}x{k} window (torch refuses it) - use at most {k // 2}")
    oh, fh = size_formula(op, h, k, p, stride, ceil_mode)
    ow, _ = size_formula(op, w, k, p, stride, ceil_mode)
    if oh < 1 or ow < 1:
        raise LabError(f"kernel: a {k}x{k} window does not fit a {h}x{w} input with padding {p} - "
                       "use a smaller kernel or more padding")
    t = torch.from_numpy(a)[None]
    even_same = op == "conv" and padding == "same" and stride == 1 and k % 2 == 0
    with torch.no_grad():
        if op == "conv":
            wt = torch.from_numpy(kk)
            b = torch.full((kk.shape[0],), float(bias), dtype=torch.float64)
            y = F.conv2d(t, wt, b, stride=stride, padding="same" if even_same else p)
            params = kk.size + kk.shape[0]
            layer = f"Conv2d({c} -> {kk.shape[0]}, {k}x{k}, stride {stride}, padding {padding})"
        elif op == "transposed":
            wt = torch.from_numpy(kk)
            b = torch.full((kk.shape[1],), float(bias), dtype=torch.float64)
            y = F.conv_transpose2d(t, wt, b, stride=stride, padding=p)
            params = kk.size + kk.shape[1]
            layer = f"ConvTranspose2d({c} -> {kk.shape[1]}, {k}x{k}, stride {stride}, padding {p})"
        elif op == "maxpool":
            y = F.max_pool2d(t, k, stride, p, ceil_mode=ceil_mode)
            params, layer = 0, f"MaxPool2d({k}x{k}, stride {stride}{', ceil mode' if ceil_mode else ''})"
        else:
            # count_include_pad=False: a window that hangs over the border averages only real cells
            y = F.avg_pool2d(t, k, stride, p, ceil_mode=ceil_mode, count_include_pad=False)
            params, layer = 0, f"AvgPool2d({k}x{k}, stride {stride}{', ceil mode' if ceil_mode else ''})"
    out = y[0].numpy().copy()
    if out.shape[1:] != (oh, ow):  # the formula and torch must agree; say so rather than show a wrong formula
        fh += f"  (torch gives {out.shape[1]})"
    return LabResult(out, (out.shape[1], out.shape[2]), p, fh, int(params), layer, op)


def explain(x, kernel, *, op: str, stride: int, pad: int, row: int, col: int, size: int = 2,
            out_map: int = 0) -> dict:
    """The window behind output cell (row, col): input cells (with -1/-2... for padding) and the sum.

    Returns ``{"cells": [(channel, r, c)], "text": "3*1 + 0*0 + ...", "value": float}`` where
    ``cells`` are input coordinates (outside 0..H-1 means padding). Plain numpy: it is the
    derivation shown next to the number ``compute`` returned.
    """
    a = _as_input(x)
    c, h, w = a.shape
    cells, terms, total = [], [], 0.0

    def at(ch, r, q):
        return a[ch, r, q] if 0 <= r < h and 0 <= q < w else 0.0

    if op == "transposed":
        kk = _as_kernel(kernel, c, op)
        k = kk.shape[2]
        for ch in range(c):
            for r in range(h):
                for q in range(w):
                    u, v = row + pad - r * stride, col + pad - q * stride
                    if 0 <= u < k and 0 <= v < k:
                        wv = kk[ch, out_map, u, v]
                        cells.append((ch, r, q))
                        terms.append(f"{_n(a[ch, r, q])}*{_n(wv)}")
                        total += a[ch, r, q] * wv
        text = " + ".join(terms) + f" = {_n(total)}" if terms else "0 (no input reaches this cell)"
        return {"cells": cells, "text": text, "value": total}
    k = _as_kernel(kernel, c, op).shape[2] if op == "conv" else size
    r0, c0 = row * stride - pad, col * stride - pad
    vals = []
    for ch in range(c):
        for u in range(k):
            for v in range(k):
                r, q = r0 + u, c0 + v
                cells.append((ch, r, q))
                if op == "conv":
                    wv = _as_kernel(kernel, c, op)[out_map, ch, u, v]
                    terms.append(f"{_n(at(ch, r, q))}*{_n(wv)}")
                    total += at(ch, r, q) * wv
                elif 0 <= r < h and 0 <= q < w:
                    vals.append(a[ch, r, q])
    if op == "maxpool":
        total = max(vals) if vals else 0.0
        return {"cells": cells, "text": f"max({', '.join(_n(v) for v in vals)}) = {_n(total)}", "value": total}
    if op == "avgpool":
        total = sum(vals) / len(vals) if vals else 0.0
        return {"cells": cells, "text": f"({' + '.join(_n(v) for v in vals)}) / {len(vals)} = {_n(total)}", "value": total}
    return {"cells": cells, "text": " + ".join(terms) + f" = {_n(total)}", "value": total}


def _n(v: float) -> str:
    return f"{v:g}" if float(v).is_integer() else f"{v:.3g}"


# ---- presets: the kernels of the notes and the worked examples -------------------------------------

SHAPE_8 = [[0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 9, 9, 9, 9, 0, 0],
           [0, 0, 9, 0, 0, 9, 0, 0],
           [0, 0, 9, 0, 0, 9, 0, 0],
           [0, 0, 9, 9, 9, 9, 0, 0],
           [0, 0, 0, 0, 0, 9, 0, 0],
           [0, 0, 0, 0, 0, 9, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0]]  # a hand-drawn "9"
NG_IMAGE = [[3, 0, 1, 2, 7, 4], [1, 5, 8, 9, 3, 1], [2, 7, 2, 5, 1, 3],
            [0, 1, 3, 1, 7, 8], [4, 2, 1, 6, 2, 8], [2, 4, 5, 2, 3, 9]]
KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "edge (Laplacian)": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "Gaussian blur": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "Sobel x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Sobel y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "vertical edge": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
}


def _by_hand(x, k, pad: int = 0) -> list[list[float]]:
    """Cross-correlation with plain loops: the independent 'expected' for the kernel presets."""
    h, w, n = len(x), len(x[0]), len(k)
    xp = [[x[r - pad][c - pad] if 0 <= r - pad < h and 0 <= c - pad < w else 0 for c in range(w + 2 * pad)]
          for r in range(h + 2 * pad)]
    oh, ow = h + 2 * pad - n + 1, w + 2 * pad - n + 1
    return [[sum(xp[r + u][c + v] * k[u][v] for u in range(n) for v in range(n)) for c in range(ow)] for r in range(oh)]


def _preset(title, x, kernel=None, expected=None, note="", **settings) -> dict:
    d = {"title": title, "input": x, "kernel": kernel, "expected": expected, "note": note,
         "op": "conv", "stride": 1, "padding": 0, "size": 2, "ceil_mode": False}
    d.update(settings)
    return d


PRESETS: dict[str, dict] = {}
for _name, _k in KERNELS.items():
    if _name != "vertical edge":
        PRESETS[_name] = _preset(f"{_name} on a hand-drawn 9 (padding 1)", SHAPE_8, _k, _by_hand(SHAPE_8, _k, 1),
                                 "expected: the same sum written as plain loops", padding=1)
PRESETS.update({
    "worked: 6x6 vertical edge": _preset(
        "6x6 image, vertical-edge kernel, stride 1, no padding (notes item 18)", NG_IMAGE, KERNELS["vertical edge"],
        [[-5, -4, 0, 8], [-10, -2, 2, 3], [0, -2, -4, -7], [-3, -2, -3, -16]],
        "cross-correlation: the kernel is not flipped"),
    "worked: size i4 k3 p0 s1": _preset("output size (4, 3, 0, 1) -> 2", [[1] * 4] * 4, [[1] * 3] * 3,
                                        [[9, 9], [9, 9]], "o = 2"),
    "worked: size i5 k4 p2 s1": _preset("output size (5, 4, 2, 1) -> 6", [[1] * 5] * 5, [[1] * 4] * 4, None,
                                        "o = 6", padding=2, expected_size=(6, 6)),
    "worked: size i5 k3 p1 s1": _preset("output size (5, 3, 1, 1) -> 5", [[1] * 5] * 5, [[1] * 3] * 3, None,
                                        "o = 5 ('same')", padding=1, expected_size=(5, 5)),
    "worked: size i5 k3 p0 s2": _preset("output size (5, 3, 0, 2) -> 2", [[1] * 5] * 5, [[1] * 3] * 3,
                                        [[9, 9], [9, 9]], "o = 2", stride=2),
    "worked: six 5x5x3 filters": _preset(
        "32x32x3 input, six 5x5 filters -> 28x28x6, 456 parameters", np.zeros((3, 32, 32)).tolist(),
        np.ones((6, 3, 5, 5)).tolist(), None, "6 x (5x5x3 + 1) = 456", expected_size=(28, 28), expected_params=456,
        expected_maps=6),
    "worked: 2x2 max pool": _preset("2x2 max pooling, stride 2: keeps the strongest value",
                                    [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], None,
                                    [[6, 8], [3, 4]], "each side halves", op="maxpool", stride=2),
    "worked: 2x2 average pool": _preset("2x2 average pooling, stride 2: keeps the mean",
                                        [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], None,
                                        [[3.25, 5.25], [2, 2]], "each side halves", op="avgpool", stride=2),
    "worked: odd side, floor": _preset("5x5 max pool 2x2 without ceil mode drops the last row and column",
                                       np.arange(25).reshape(5, 5).tolist(), None, [[6, 8], [16, 18]],
                                       "o = floor(3/2) + 1 = 2", op="maxpool", stride=2),
    "worked: odd side, ceil": _preset("5x5 max pool 2x2 in ceil mode keeps them",
                                      np.arange(25).reshape(5, 5).tolist(), None, [[6, 8, 9], [16, 18, 19], [21, 23, 24]],
                                      "o = ceil(3/2) + 1 = 3", op="maxpool", stride=2, ceil_mode=True),
    "worked: transposed, overlap": _preset("transposed conv, stride 1: scattered copies of the kernel overlap and add",
                                           [[1, 2], [3, 4]], [[1, 1], [1, 1]], [[1, 3, 2], [4, 10, 6], [3, 7, 4]],
                                           "o = (2 - 1)*1 - 0 + 2 = 3", op="transposed"),
    "worked: transposed, stride 2": _preset("transposed conv, stride 2: learned upsampling 2x2 -> 4x4",
                                            [[1, 2], [3, 4]], [[1, 1], [1, 1]],
                                            [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]],
                                            "o = (2 - 1)*2 - 0 + 2 = 4", op="transposed", stride=2),
})


def run_preset(name: str) -> tuple[LabResult, dict]:
    """(result, preset) for one preset; the preset carries what the notes expect."""
    p = PRESETS[name]
    res = compute(p["input"], p["kernel"], op=p["op"], stride=p["stride"], padding=p["padding"], size=p["size"],
                  ceil_mode=p["ceil_mode"])
    return res, p


def preset_matches(res: LabResult, p: dict, tol: float = 1e-9) -> bool:
    """True if the computed result equals everything the preset expects."""
    ok = True
    if p.get("expected") is not None:
        exp = np.asarray(p["expected"], dtype=np.float64)
        ok &= res.output.shape[1:] == exp.shape and bool(np.allclose(res.output[0], exp, atol=tol, rtol=0))
    if "expected_size" in p:
        ok &= tuple(res.out_size) == tuple(p["expected_size"])
    if "expected_params" in p:
        ok &= res.params == p["expected_params"]
    if "expected_maps" in p:
        ok &= res.output.shape[0] == p["expected_maps"]
    return bool(ok)
