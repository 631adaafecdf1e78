"""Spec -> torch nn.Module that runs the layer graph in topological order."""
from __future__ import annotations

import torch
from torch import nn

from engine import datasets
from engine import layers as L
from engine.init import WEIGHTED_KINDS, init_layer
from engine.spec import Spec, SpecError
from engine.validation import errors, validate


class GraphNet(nn.Module):
    """The design as a module; ``forward`` returns the Output layer's values (logits).

    ``layers`` is a ModuleDict keyed by layer id, so state_dict keys read
    ``layers.dense1.weight`` and match the design.
    """

    def __init__(self, spec: Spec, report: L.Report):
        super().__init__()
        self.input_id = report.input_id
        self.output_id = report.output_id
        self.order = [lid for lid in report.order if lid in report.shapes]
        self.sources = {lid: spec.inputs_of(lid) for lid in self.order}
        # position in the order of each value's last reader, so forward() can free activations early
        self._last_use = {s: i for i, lid in enumerate(self.order) for s in self.sources[lid]}
        self.shapes = dict(report.shapes)
        self.kinds = {lay.id: lay.kind for lay in spec.layers}
        self.layers = nn.ModuleDict()
        for lid in self.order:
            lay = spec.layer(lid)
            if lay.kind == "Input":
                continue
            # construction order = topological order, so the seed fixes every weight
            kind = L.REGISTRY[lay.kind]
            self.layers[lid] = kind.make(report.in_shapes[lid], report.shapes[lid], lay.params)
            if lay.kind in WEIGHTED_KINDS:  # right after construction, so the RNG order stays fixed
                init_layer(self.layers[lid], kind.resolve(lay.params), spec, lid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x, keep=False)[self.output_id]

    def forward_all(self, x: torch.Tensor, keep: bool = True) -> dict[str, torch.Tensor]:
        """Every node's output for batch ``x`` (keep=False drops values no longer needed)."""
        vals: dict[str, torch.Tensor] = {self.input_id: x}
        for i, lid in enumerate(self.order):
            if lid == self.input_id:
                continue
            srcs = self.sources[lid]
            mod = self.layers[lid]
            vals[lid] = mod(*[vals[s] for s in srcs]) if len(srcs) > 1 else mod(vals[srcs[0]])
            if not keep:
                for s in srcs:
                    if self._last_use[s] == i and s != self.output_id:
                        vals.pop(s, None)
        if not keep:
            return {self.output_id: vals[self.output_id]}
        return vals


def build(spec: Spec, data_info=None, seed: int | None = None) -> GraphNet:
    """Build the module; raises SpecError listing every problem if the design is invalid."""
    if data_info is None:
        data_info = datasets.describe(spec.dataset)
    problems = errors(validate(spec, data_info))
    if problems:
        raise SpecError(problems)
    report = L.infer(spec, data_info)
    torch.manual_seed(spec.training.seed if seed is None else seed)
    return GraphNet(spec, report)
