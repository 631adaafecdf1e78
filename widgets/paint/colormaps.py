"""Value -> colour: the one pipeline of every view, built on pyqtgraph's ``ColorMap``.

A map is named ("diverging", "plane", "inferno", ...); ``colormap(name)`` is the
``pg.ColorMap`` and ``lut(name)`` its (LUT_SIZE, 4) uint8 RGBA table, sampled once and cached.
Values go through ``lut_indices`` (limits -> first/last entry, clipped; NaN/inf -> a flag),
then come out as what the caller paints:

* ``map_argb``  -> uint32 0xFFRRGGBB for QImage (NaN grey)       - tiles, saliency, draw pad
* ``map_rgb``   -> (..., 3) uint8 (NaN grey)
* ``to_rgba``   -> (..., 4) uint8 for pyqtgraph images (NaN transparent) - boundary, neuron maps

Maps:

* ``diverging``: TF-Playground blue - white - orange, for weights, filters and signed outputs; the
  table has an odd length so zero (or p = 0.5) is exactly the white middle entry;
* ``plane``: the same, faded as TF Playground paints its decision plane (p(class 1), neuron maps);
* ``viridis``, ``inferno``, ``magma``, ``plasma``, ``cividis``: pyqtgraph's perceptual maps (saliency);
* ``gray``, ``blues``, ``oranges``: sequential ramps (images, confusion matrix).
"""
from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from widgets.paint.palette import BACKGROUND_ALPHA, NAN_RGB, TF_BLUE, TF_ORANGE, TF_WHITE, hex_to_rgb

LUT_SIZE = 255  # odd, so a symmetric range puts 0 exactly on the middle entry

_PERCEPTUAL = ("viridis", "inferno", "magma", "plasma", "cividis")
_RAMPS: dict[str, list[str]] = {
    "gray": ["#000000", "#ffffff"],
    "blues": ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"],
    "oranges": ["#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704"],
}
NAMES = ("diverging", "plane", *_PERCEPTUAL, *_RAMPS)

if TYPE_CHECKING:
    import pyqtgraph as pg


def _faded(hex_color: str, opacity: float = BACKGROUND_ALPHA, over: str = "#ffffff") -> tuple[int, int, int]:
    """The colour as it looks painted at ``opacity`` over a plain background, made opaque.

    Pre-compositing keeps image items opaque (cheaper to draw) and gives the soft TF-Playground
    background against which the full-strength data points stand out.
    """
    c, b = np.array(hex_to_rgb(hex_color), float), np.array(hex_to_rgb(over), float)
    return tuple(int(v) for v in np.round(c * opacity + b * (1.0 - opacity)))


@cache
def colormap(name: str) -> pg.ColorMap:
    """The named ``pg.ColorMap`` (see the module docstring for the names)."""
    # imported here: the editor's canvas colours with these maps, and the window shows before pyqtgraph loads
    import pyqtgraph as pg

    if name == "diverging":
        return pg.ColorMap([0.0, 0.5, 1.0], [TF_BLUE, TF_WHITE, TF_ORANGE], name=name)
    if name == "plane":
        return pg.ColorMap([0.0, 0.5, 1.0], [_faded(TF_BLUE), _faded(TF_WHITE), _faded(TF_ORANGE)], name=name)
    if name in _RAMPS:
        stops = _RAMPS[name]
        return pg.ColorMap(np.linspace(0.0, 1.0, len(stops)), stops, name=name)
    if name in _PERCEPTUAL:
        return pg.colormap.get(name)
    raise ValueError(f"unknown colour map {name!r}; use one of {', '.join(NAMES)}")


@cache
def lut(name: str, n: int = LUT_SIZE) -> np.ndarray:
    """(n, 4) uint8 RGBA table of the named map, read-only."""
    out = np.ascontiguousarray(colormap(name).getLookupTable(0.0, 1.0, n, alpha=True, mode="byte"), dtype=np.uint8)
    out[:, 3] = 255
    out.setflags(write=False)
    return out


@cache
def _lut32(name: str) -> np.ndarray:
    """The table packed as 0xFFRRGGBB, plus one trailing NaN-grey entry, for QImage.Format_RGB32."""
    rgb = np.vstack([lut(name)[:, :3], np.asarray([NAN_RGB], np.uint8)]).astype(np.uint32)
    out = (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32)
    out.setflags(write=False)
    return out


def lut_indices(values: np.ndarray, lo: float, hi: float, n: int = LUT_SIZE) -> np.ndarray:
    """Table entry per value: lo -> 0, hi -> n - 1 (clipped), NaN/inf -> n (one past the end)."""
    a = np.asarray(values, dtype=np.float32)
    span = float(hi) - float(lo)
    scale = (n - 1) / span if span > 0 and np.isfinite(span) else 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        idx = np.rint((a - np.float32(lo)) * np.float32(scale))
        np.clip(idx, 0, n - 1, out=idx)
    finite = np.isfinite(a)
    out = idx.astype(np.intp) if finite.all() else np.where(finite, np.nan_to_num(idx), n).astype(np.intp)
    if scale == 0.0 and span <= 0:
        # A constant picture: with a symmetric range it is 0 -> neutral middle; otherwise the low colour.
        out[finite] = (n - 1) // 2 if lo < 0 < hi else 0
    return out


def map_argb(values: np.ndarray, cmap: str, lo: float, hi: float) -> np.ndarray:
    """uint32 0xFFRRGGBB array of the same shape: ``values`` coloured with ``cmap`` over [lo, hi]."""
    return _lut32(cmap)[lut_indices(values, lo, hi)]


def map_rgb(values: np.ndarray, cmap: str, lo: float, hi: float) -> np.ndarray:
    """(..., 3) uint8 RGB of ``values`` coloured with ``cmap`` over [lo, hi] (NaN -> grey)."""
    table = np.vstack([lut(cmap)[:, :3], np.asarray([NAN_RGB], np.uint8)])
    return table[lut_indices(values, lo, hi)]


def to_rgba(values: np.ndarray, cmap: str | np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(..., 4) uint8 RGBA of ``values`` coloured with ``cmap`` (a name or an RGBA table) over [lo, hi].

    Values outside the limits are clipped; NaN/inf map to fully transparent, so missing data
    never reads as a value.
    """
    table = lut(cmap) if isinstance(cmap, str) else np.asarray(cmap, np.uint8)
    if table.shape[1] == 3:
        table = np.concatenate([table, np.full((len(table), 1), 255, np.uint8)], axis=1)
    table = np.vstack([table, np.zeros((1, 4), np.uint8)])
    return table[lut_indices(values, lo, hi, n=len(table) - 1)]


def symmetric_limit(values: np.ndarray, floor: float = 0.0) -> float:
    """max |finite value| (at least ``floor``), the half-width of a diverging scale; 1.0 if all are 0 / NaN."""
    a = np.asarray(values, dtype=np.float32)
    finite = a[np.isfinite(a)] if a.size else a
    m = float(np.abs(finite).max()) if finite.size else 0.0
    return max(m, floor) if m > 0 else 1.0


def finite_range(values: np.ndarray) -> tuple[float, float]:
    """(min, max) over finite values; (0, 1) when there are none."""
    a = np.asarray(values, dtype=np.float32)
    finite = a[np.isfinite(a)] if a.size else a
    if not finite.size:
        return 0.0, 1.0
    return float(finite.min()), float(finite.max())


def neuron_rgba(values: np.ndarray, limit: float | None = None) -> np.ndarray:
    """A unit's output grid (res, res) in the faded diverging map, symmetric around zero: (res, res, 4) uint8.

    ``limit`` None normalises by max |v| (unbounded outputs). Rows follow y upwards as in
    engine.probes grids; flip them (``[::-1]``) for a QImage, whose first row is the top.
    """
    m = float(limit) if limit is not None and float(limit) > 0 else symmetric_limit(values, floor=1e-6)
    return to_rgba(values, "plane", -m, m)


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
