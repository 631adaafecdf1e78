"""The data a GAN run trains on: real points of its target in the engine's Data layout (numpy only)."""
from __future__ import annotations

import numpy as np

from engine.datasets.base import Data, DataInfo
from engine.datasets.gan_targets import sample
from engine.spec import Spec

N_REAL = 2000


def load_gan_data(spec: Spec) -> Data:
    """Real points (label 0 "real") for training and validation; not standardised, so the plane is in data units."""
    g = spec.generative
    rng = np.random.default_rng(spec.training.seed)
    x = sample(g.target, N_REAL, rng, g.points)
    y = np.zeros(len(x), np.int64)
    n_val = len(x) // 5
    info = DataInfo(f"gan_{g.target}", (2,), 1, ["real"], ["x1", "x2"])
    zeros, ones = np.zeros((1, 2), np.float32), np.ones((1, 2), np.float32)
    return Data(info, x[n_val:], y[n_val:], x[:n_val], y[:n_val], zeros, ones, x[n_val:], x[:n_val])
