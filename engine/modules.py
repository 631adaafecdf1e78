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


class VAESample(nn.Module):
    """A VAE's sampling step: (mu, logvar) halves of the input -> z = mu + sigma * eps.

    In eval mode it returns mu, so evaluation, probes and exported graphs are deterministic.
    ``kl`` holds the last training batch's KL divergence to N(0, I), summed over the latent
    dimensions and averaged over the batch; the autoencoder trainer adds beta * kl to the loss.
    """

    def __init__(self):
        super().__init__()
        self.kl: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, logvar = x.chunk(2, dim=1)
        logvar = logvar.clamp(-10.0, 10.0)  # exp() of a wild log-variance would overflow the first steps
        if not self.training:
            self.kl = None
            return mu
        self.kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(dim=1).mean()
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
