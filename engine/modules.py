"""Torch modules the layer factories need beyond torch.nn's own.

torch only: nothing of the engine is imported here, so layers (whose factories import this
lazily) and build can both use it without a circle.
"""
from __future__ import annotations

import math

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


# ---- sequences and attention (engine.layers_sequence's factories) ------------------------------

class TokenEmbedding(nn.Module):
    """nn.Embedding over token ids that arrive as float32 (datasets keep one dtype for inputs)."""

    def __init__(self, vocab: int, dim: int):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.emb(x.long())


class Recurrent(nn.Module):
    """nn.RNN/LSTM/GRU (batch first) returning one tensor: every step, or the last hidden state.

    The last state of a bidirectional layer joins the forward direction's state after the last
    step with the backward direction's state after the first step (both have read everything).
    """

    def __init__(self, cell: str, inputs: int, units: int, layers: int, bidirectional: bool, sequence: bool):
        super().__init__()
        self.cell = cell
        self.sequence = sequence
        cls = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}[cell]
        self.rnn = cls(inputs, units, num_layers=layers, bidirectional=bidirectional, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, h = self.rnn(x)
        if self.sequence:
            return out
        if isinstance(h, tuple):  # LSTM: (h, c)
            h = h[0]
        if self.rnn.bidirectional:
            return torch.cat([h[-2], h[-1]], dim=1)
        return h[-1]

    def extra_repr(self) -> str:
        return f"{self.cell}, sequence={self.sequence}"


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention, written out so the weights can be kept
    (``keep = True`` stores them in ``weights``, (N, heads, T, T)) and ONNX export stays plain.

    Same parameters and layout as nn.MultiheadAttention: ``qkv`` is its in_proj, ``out`` its out_proj.
    """

    def __init__(self, dim: int, heads: int, causal: bool = False, residual: bool = True):
        super().__init__()
        self.heads, self.causal, self.residual = heads, causal, residual
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.qkv.weight)  # as nn.MultiheadAttention initialises its in_proj
        nn.init.zeros_(self.qkv.bias)
        nn.init.zeros_(self.out.bias)
        self.keep = False
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, f = x.shape
        d = f // self.heads
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d).permute(2, 0, 3, 1, 4)  # each (N, H, T, d)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)
        if self.causal:
            future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        w = torch.softmax(scores, dim=-1)
        if self.keep:
            self.weights = w.detach()
        y = self.out((w @ v).transpose(1, 2).reshape(n, t, f))
        return x + y if self.residual else y


class PositionalEncoding(nn.Module):
    """Adds a vector per step: the sine/cosine table of "Attention is all you need", or a learned one."""

    def __init__(self, steps: int, dim: int, kind: str = "sinusoidal"):
        super().__init__()
        self.kind = kind
        if kind == "learned":
            self.table = nn.Parameter(torch.randn(steps, dim) * 0.02)
        else:
            pos = torch.arange(steps, dtype=torch.float32)[:, None]
            rate = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
            table = torch.zeros(steps, dim)
            table[:, 0::2] = torch.sin(pos * rate)
            table[:, 1::2] = torch.cos(pos * rate)[:, :dim // 2]
            self.register_buffer("table", table, persistent=False)  # fixed: not a weight to save

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table


class SequencePool(nn.Module):
    """(N, T, F) -> (N, F): mean or max over the steps, or the last step."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "mean":
            return x.mean(dim=1)
        if self.mode == "max":
            return x.amax(dim=1)
        return x[:, -1]


class Reshape(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


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
