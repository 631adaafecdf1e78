"""The generated "shapes" image set: circles, squares, triangles, crosses and lines (numpy only)."""
from __future__ import annotations

import math

import numpy as np

SHAPE_NAMES = ["circle", "square", "triangle", "cross", "line"]


def render_shapes(n_per_class: int, size: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x (N, 1, size, size) float32 in 0..1, y (N,) int64), classes in SHAPE_NAMES order.

    Each shape is a signed distance field in pixel units, turned into anti-aliased coverage
    (a one-pixel ramp at the edge), so thin strokes stay visible at any position and angle.
    """
    n = n_per_class * len(SHAPE_NAMES)
    y = np.repeat(np.arange(len(SHAPE_NAMES), dtype=np.int64), n_per_class)
    s = float(size)
    radius = rng.uniform(0.22, 0.42, n) * s  # every shape fits a circle of this radius
    centre = rng.uniform(-1, 1, (n, 2)) * (s / 2 - radius - 1)[:, None]
    angle = rng.uniform(0, 2 * np.pi, n)
    thick = rng.uniform(1.0, 2.6, n) * s / 28
    filled = rng.random(n) < 0.5  # circles, squares, triangles only; crosses and lines are strokes
    fg, bg = rng.uniform(0.65, 1.0, n), rng.uniform(0.0, 0.15, n)
    grid = np.arange(size, dtype=np.float32) + 0.5 - s / 2
    col = lambda v: np.asarray(v, np.float32)[:, None, None]  # noqa: E731  (n, 1, 1) for broadcasting
    cx, cy, cos, sin, r, t = map(col, (centre[:, 0], centre[:, 1], np.cos(angle), np.sin(angle), radius, thick))
    lo, span = col(bg), col(fg - bg)
    outline = (~filled & (y < 3))[:, None, None]  # closed shapes drawn as a band around their edge
    x = np.empty((n, 1, size, size), np.float32)
    step = max(1, 2_000_000 // (size * size))  # bounded memory per chunk
    for a in range(0, n, step):
        c = slice(a, min(n, a + step))
        gx, gy = grid[None, None, :] - cx[c], grid[None, :, None] - cy[c]
        u, v = cos[c] * gx + sin[c] * gy, cos[c] * gy - sin[c] * gx  # (m, S, S) in the shape's own frame
        d = np.empty_like(u)
        for k, sdf in enumerate((_sdf_circle, _sdf_square, _sdf_triangle, _sdf_cross, _sdf_line)):
            m = y[c] == k
            if m.any():
                d[m] = sdf(u[m], v[m], r[c][m], t[c][m])
        d = np.where(outline[c], np.abs(d) - t[c] / 2, d)
        cover = np.clip(0.5 - d, 0, 1)  # signed distance -> anti-aliased coverage
        img = lo[c] + span[c] * cover + rng.standard_normal(cover.shape, dtype=np.float32) * noise
        x[c, 0] = np.clip(img, 0, 1)
    return x, y


def _sdf_circle(u, v, r, t):
    return np.hypot(u, v) - 0.8 * r


def _sdf_square(u, v, r, t):
    a = r / math.sqrt(2)  # half side; the corners touch the bounding circle
    qx, qy = np.abs(u) - a, np.abs(v) - a
    return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)


def _sdf_triangle(u, v, r, t):
    # equilateral triangle with circumradius r (Inigo Quilez's exact distance)
    k, h = math.sqrt(3), r * math.sqrt(3) / 2  # h = half the side
    px, py = np.abs(u) - h, v + h / k
    flip = px + k * py > 0
    px, py = np.where(flip, (px - k * py) / 2, px), np.where(flip, (-k * px - py) / 2, py)
    px = px - np.clip(px, -2 * h, 0)
    return -np.hypot(px, py) * np.sign(py)


def _segment(u, v, half, t):
    return np.hypot(np.maximum(np.abs(u) - half, 0), v) - t / 2


def _sdf_line(u, v, r, t):
    return _segment(u, v, r, t)


def _sdf_cross(u, v, r, t):
    return np.minimum(_segment(u, v, 0.9 * r, t), _segment(v, u, 0.9 * r, t))
