"""Torch modules the layer factories need beyond torch.nn's own.

torch only: nothing of the engine is imported here, so layers (whose factories import this
lazily) and build can both use it without a circle.
"""
from __future__ import annotations

import torch
from torch import nn


class Merge(nn.Module):
    """Joins several inputs: element-wise sum (residual Add) or channel concat."""

    def __init__(self, op: str):
        super().__init__()
        self.op = op

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.op == "add":
            out = xs[0]
            for x in xs[1:]:
                out = out + x
            return out
        return torch.cat(xs, dim=1)  # dim 0 is the batch

    def extra_repr(self) -> str:
        return self.op
