"""Small helpers for reading a built model (engine.build.GraphNet) that probes and saliency share.

torch and numpy only; nothing of the engine is imported, so every module above the builder
can use these without a circle.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Run in eval mode, then give every module back its own previous mode."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, was_training in modes:
            m.training = was_training  # not m.train(): that would recurse and undo children


def model_device(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def input_shape(model) -> tuple[int, ...]:
    return tuple(model.shapes[model.input_id])


def output_units(model) -> int:
    return int(model.shapes[model.output_id][0])


def n_classes_of(model) -> int:
    """Classes the head predicts: a 1-unit head is binary."""
    return max(2, output_units(model))


def as_sample(model, x_np: np.ndarray) -> np.ndarray:
    """One sample as float32 with the model's input shape; (H, W) is accepted for 1-channel images."""
    shape = input_shape(model)
    x = np.asarray(x_np, dtype=np.float32)
    if len(shape) == 3 and shape[0] == 1 and x.shape == shape[1:]:
        x = x[None]
    if x.shape != shape:
        raise ValueError(f"sample has shape {'x'.join(map(str, x.shape))} but the network's Input expects "
                         f"{'x'.join(map(str, shape))} - pick a sample from the dataset the design was built for")
    if not np.isfinite(x).all():
        raise ValueError("sample contains NaN or infinite values - redraw or pick another sample")
    return x


def state_to_numpy(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The model's state dict as CPU numpy copies: what crosses to the GUI, a run file or a checkpoint."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
