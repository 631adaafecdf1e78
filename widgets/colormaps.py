"""Colour maps shared by the live views: lookup tables (LUTs) as numpy uint8 arrays.

Conventions, kept everywhere so a colour means the same thing in every dock:

* class 0 / negative = TF-Playground blue, class 1 / positive = TF-Playground orange,
  0.5 / zero = near-white (``diverging_lut``, ``probability_lut``, ``weights_lut``);
* classes beyond two take the next colours of ``CLASS_COLORS`` (up to 10, then repeat);
* saliency and other magnitudes use a sequential map (``sequential_lut``, inferno by default).

A LUT is ``(n, 4)`` uint8 RGBA. Diverging LUTs have an odd length (255) so the neutral colour
is exactly the middle entry: p = 0.5 and a zero weight are white, not a tint of either side.
``to_rgba`` maps values through a LUT with given limits; NaN becomes fully transparent so
missing data never reads as a value.
"""
from __future__ import annotations

import numpy as np

TF_BLUE = "#0877bd"    # class 0, negative values
TF_ORANGE = "#f59322"  # class 1, positive values
TF_WHITE = "#f7f7f7"   # 0.5 / zero: a touch off pure white so white-outlined points stay visible
BACKGROUND_ALPHA = 160 / 255  # TF Playground paints the decision area at this opacity over white

# First two are the TF-Playground pair; the rest are Tableau-10 hues ordered for contrast.
CLASS_COLORS: tuple[str, ...] = (
    TF_BLUE, TF_ORANGE, "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
)


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b) ints."""
    c = color.lstrip("#")
    if len(c) != 6:
        raise ValueError(f"colour {color!r} must be written as #rrggbb")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def rgb_to_hex(rgb) -> str:
    r, g, b = (int(v) for v in list(rgb)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def gradient_lut(stops: list[tuple[float, str]], n: int = 256, alpha: int = 255) -> np.ndarray:
    """(n, 4) uint8 LUT interpolating linearly in RGB between ``(position 0..1, '#rrggbb')`` stops."""
    pos = np.array([p for p, _ in stops], np.float64)
    if len(pos) < 2 or np.any(np.diff(pos) <= 0) or pos[0] != 0 or pos[-1] != 1:
        raise ValueError("gradient stops must rise strictly from 0 to 1")
    rgb = np.array([hex_to_rgb(c) for _, c in stops], np.float64)
    t = np.linspace(0.0, 1.0, n)
    out = np.empty((n, 4), np.uint8)
    for ch in range(3):
        out[:, ch] = np.round(np.interp(t, pos, rgb[:, ch]))
    out[:, 3] = alpha
    return out


def diverging_lut(n: int = 255, negative: str = TF_BLUE, middle: str = TF_WHITE, positive: str = TF_ORANGE) -> np.ndarray:
    """Blue - white - orange: symmetric around the middle entry (negative / 0 / positive)."""
    return gradient_lut([(0.0, negative), (0.5, middle), (1.0, positive)], n)


def faded(lut: np.ndarray, opacity: float = BACKGROUND_ALPHA, over: str = "#ffffff") -> np.ndarray:
    """The LUT as it looks painted at ``opacity`` over a plain background, made opaque.

    Pre-compositing keeps the image item opaque (cheaper to draw) and gives the soft
    TF-Playground background against which the full-strength data points stand out.
    """
    base = np.array(hex_to_rgb(over), np.float64)
    out = lut.copy()
    out[:, :3] = np.round(lut[:, :3] * opacity + base * (1.0 - opacity))
    out[:, 3] = 255
    return out


def probability_lut(n: int = 255, background: bool = True) -> np.ndarray:
    """p(class 1) 0..1 -> blue..white..orange; ``background`` fades it like TF Playground's plane."""
    lut = diverging_lut(n)
    return faded(lut) if background else lut


def weights_lut(n: int = 255) -> np.ndarray:
    """Symmetric diverging map for weights, filters and neuron outputs (negative blue, positive orange)."""
    return diverging_lut(n)


def sequential_lut(name: str = "inferno", n: int = 256) -> np.ndarray:
    """A perceptually uniform sequential map from pyqtgraph's colour maps (for saliency, magnitudes)."""
    import pyqtgraph as pg  # here, so numpy-only users of this module do not load Qt

    hint = f"unknown colour map {name!r}; try 'inferno', 'viridis', 'magma' or 'plasma'"
    if not name.replace("_", "").isalnum():  # pyqtgraph would read any path as a map file
        raise ValueError(hint)
    try:
        cmap = pg.colormap.get(name)
    except (FileNotFoundError, OSError, KeyError):
        cmap = None
    if cmap is None:
        raise ValueError(hint)
    lut = np.asarray(cmap.getLookupTable(0.0, 1.0, n, alpha=True), dtype=np.float64)
    if lut.max() <= 1.0:  # some pyqtgraph versions return floats 0..1
        lut = lut * 255
    return np.round(lut).astype(np.uint8)


def class_colors(k: int) -> np.ndarray:
    """(k, 3) uint8 colours for k classes: the palette, repeated beyond 10 classes."""
    k = max(int(k), 0)
    return np.array([hex_to_rgb(CLASS_COLORS[i % len(CLASS_COLORS)]) for i in range(k)], np.uint8).reshape(k, 3)


def symmetric_limit(values: np.ndarray, floor: float = 1e-12) -> float:
    """max |v| over the finite values (at least ``floor``), for limits symmetric around zero."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    m = float(np.abs(finite).max()) if finite.size else 0.0
    return max(m, floor)


def to_rgba(values: np.ndarray, lut: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Map values (any shape) through ``lut`` with vmin -> lut[0], vmax -> lut[-1]; (..., 4) uint8.

    Values outside the limits are clipped; NaN maps to fully transparent.
    """
    v = np.asarray(values, dtype=np.float32)
    lut = np.asarray(lut, dtype=np.uint8)
    if lut.shape[1] == 3:
        lut = np.concatenate([lut, np.full((len(lut), 1), 255, np.uint8)], axis=1)
    n = len(lut)
    span = float(vmax) - float(vmin)
    scale = (n - 1) / span if span > 0 else 0.0
    nan = np.isnan(v)
    with np.errstate(invalid="ignore"):
        idx = np.clip((v - np.float32(vmin)) * np.float32(scale) + np.float32(0.5), 0, n - 1)
    idx = np.where(nan, 0, idx).astype(np.intp)
    out = lut[idx]
    if nan.any():
        out[nan] = 0
    return out


def neuron_rgba(values: np.ndarray, limit: float | None = None) -> np.ndarray:
    """A unit's output grid (res, res) as TF-Playground colours, symmetric around zero: (res, res, 4) uint8.

    ``limit`` None normalises by max |v| (unbounded outputs). Rows follow y upwards as in
    engine.probes grids; flip them (``[::-1]``) for a QImage, whose first row is the top.
    """
    m = float(limit) if limit is not None and float(limit) > 0 else symmetric_limit(values, floor=1e-6)
    return to_rgba(values, _NEURON_LUT, -m, m)


def blend_classes(probs: np.ndarray, colors: np.ndarray, opacity: float = BACKGROUND_ALPHA,
                  discretize: bool = False) -> np.ndarray:
    """Colour a (..., k) probability grid: class colours mixed by probability, paler where unsure.

    The hue is the probability-weighted mean of the class colours; the strength grows from
    white at a uniform prediction (max p = 1/k) to ``opacity`` at a certain one, as
    TF Playground does for two classes. ``discretize`` paints each cell in its argmax colour.
    Returns (..., 4) uint8, opaque.
    """
    p = np.asarray(probs, dtype=np.float32)
    k = p.shape[-1]
    cols = np.asarray(colors, dtype=np.float32)[:k, :3]
    p = np.nan_to_num(p, nan=1.0 / k)
    if discretize:
        hue = cols[p.argmax(axis=-1)]
        strength = np.full(p.shape[:-1] + (1,), opacity, np.float32)
    else:
        total = p.sum(axis=-1, keepdims=True)
        p = p / np.where(total > 0, total, 1.0)
        hue = p @ cols
        certainty = (p.max(axis=-1, keepdims=True) - 1.0 / k) / (1.0 - 1.0 / k)
        strength = np.clip(certainty, 0.0, 1.0) * opacity
    rgb = hue * strength + 255.0 * (1.0 - strength)
    out = np.empty(p.shape[:-1] + (4,), np.uint8)
    out[..., :3] = np.clip(rgb + 0.5, 0, 255)
    out[..., 3] = 255
    return out


_NEURON_LUT = faded(weights_lut())
