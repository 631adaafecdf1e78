"""Checking a design: training settings, the dataset's params, the graph and its shapes.

Sits above spec, layers and datasets (it uses all three) and below build. No torch: the
editor validates designs before torch has loaded.
"""
from __future__ import annotations

from typing import Any

from engine import datasets
from engine import layers as L
from engine.generative_validation import validate_generative
from engine.spec import DEVICES, LOSSES, OPTIMIZERS, SCHEDULES, Problem, Spec


def validate(spec: Spec, data_info: Any | None = None) -> list[Problem]:
    """Every problem with the design at once: graph, params, training settings, shapes.

    ``data_info`` (an engine.datasets.DataInfo) supplies the input shape and class count
    for shape checks; without it the dataset is looked up (cheap, no torch).
    """
    problems: list[Problem] = []
    problems += _validate_training(spec)
    if data_info is None:
        try:
            data_info = datasets.describe(spec.dataset)
        except ValueError as exc:
            # one "dataset.params.noise: what to do" per line; other messages stay whole
            for line in str(exc).splitlines():
                where, sep, msg = line.partition(": ")
                ok = sep and where.startswith("dataset") and " " not in where
                problems.append(Problem(where, msg) if ok else Problem("dataset", line))
            data_info = None
    report = L.infer(spec, data_info)
    problems += report.problems
    if spec.training.batch_size == 1:
        # BatchNorm1d averages each feature over the batch: one sample gives nothing to normalise
        problems += [Problem(lay.id, "BatchNorm needs at least 2 samples per batch while training on flat features - "
                                     "raise training.batch_size or remove the layer")
                     for lay in spec.layers
                     if lay.kind == "BatchNorm" and len(report.in_shapes.get(lay.id, [()])[0] or ()) == 1]
    if getattr(data_info, "task", "") == "regression" and spec.training.loss in ("cross_entropy", "bce"):
        problems.append(Problem("training.loss", f"{spec.training.loss} needs classes but {spec.dataset.kind} has numbers "
                                "to predict (regression) - use mse, mae or huber"))
    problems += validate_generative(spec, data_info)
    return problems


def errors(problems: list[Problem]) -> list[Problem]:
    """The problems that block training (warnings are only shown)."""
    return [p for p in problems if p.severity == "error"]


def _validate_training(spec: Spec) -> list[Problem]:
    t = spec.training
    out: list[Problem] = []

    def bad(fld: str, msg: str) -> None:
        out.append(Problem(f"training.{fld}", msg))

    if t.optimizer not in OPTIMIZERS:
        bad("optimizer", f"unknown optimiser {t.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if t.loss not in LOSSES:
        bad("loss", f"unknown loss {t.loss!r}; choose one of {', '.join(LOSSES)}")
    if t.lr_schedule not in SCHEDULES:
        bad("lr_schedule", f"unknown schedule {t.lr_schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if t.device not in DEVICES:
        bad("device", f"unknown device {t.device!r}; choose one of {', '.join(DEVICES)}")
    if not (0 < t.lr <= 1e6):
        bad("lr", f"learning rate {t.lr} must be in (0, 1e6]")
    if not (1 <= t.batch_size <= 65536):
        bad("batch_size", f"{t.batch_size} must be between 1 and 65536")
    if not (1 <= t.epochs <= 100000):
        bad("epochs", f"{t.epochs} must be between 1 and 100000")
    for fld in ("l1", "l2", "weight_decay", "grad_clip"):
        if getattr(t, fld) < 0:
            bad(fld, "must be 0 or more")
    if not (0 <= t.momentum < 1):
        bad("momentum", f"{t.momentum} must be in [0, 1)")
    if t.nesterov and (t.optimizer != "sgd" or t.momentum == 0):
        bad("nesterov", "Nesterov needs SGD with momentum > 0")
    if not (0 < t.gamma <= 1):
        bad("gamma", f"{t.gamma} must be in (0, 1]")
    if t.step_size < 1:
        bad("step_size", "must be at least 1 epoch")
    if not (0 <= t.seed < 2**31):
        bad("seed", "must be between 0 and 2^31-1")
    return out
