"""The 2-D distributions a GAN learns to imitate (numpy only).

Each lies roughly within [-1.5, 1.5]^2 so the views share one plane: a ring of radius
RING_RADIUS, two moons, a mixture of eight Gaussians on a circle, a line segment, and the
points a user drew (each drawn point is the centre of a small Gaussian).
"""
from __future__ import annotations

import numpy as np

RING_RADIUS = 1.0
PLANE = (-1.6, 1.6, -1.6, 1.6)  # xmin, xmax, ymin, ymax of the GAN views


def sample(target: str, n: int, rng: np.random.Generator, points=None) -> np.ndarray:
    """``n`` points (float32, (n, 2)) from the named target distribution."""
    if target == "ring":
        a = rng.uniform(0, 2 * np.pi, n)
        r = RING_RADIUS + rng.normal(0, 0.03, n)
        out = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    elif target == "moons":
        a = rng.uniform(0, np.pi, n)
        upper = rng.random(n) < 0.5
        x = np.where(upper, np.cos(a), 1 - np.cos(a)) - 0.5
        y = np.where(upper, np.sin(a), 0.5 - np.sin(a)) - 0.25
        out = np.stack([x, y], 1) * 1.1 + rng.normal(0, 0.04, (n, 2))
    elif target == "gaussians":
        k = rng.integers(0, 8, n)
        centres = np.stack([np.cos(k * np.pi / 4), np.sin(k * np.pi / 4)], 1)
        out = centres + rng.normal(0, 0.06, (n, 2))
    elif target == "line":
        t = rng.uniform(-1, 1, n)
        out = np.stack([t, 0.5 * t], 1) + rng.normal(0, 0.02, (n, 2))
    elif target == "drawn":
        pts = np.asarray(points if points is not None else [], np.float64).reshape(-1, 2)
        if len(pts) < 2:
            raise ValueError("generative.points: draw at least 2 points of the target in the GAN view "
                             "(or choose another target)")
        out = pts[rng.integers(0, len(pts), n)] + rng.normal(0, 0.03, (n, 2))
    else:
        raise ValueError(f"generative.target: unknown target {target!r:.40} - use ring, moons, gaussians, line or drawn")
    return out.astype(np.float32)
