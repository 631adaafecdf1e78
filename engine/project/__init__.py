"""Export a design as a plain PyTorch project: a folder that trains it with torch alone.

    model.py          the network as a readable nn.Module (engine.project.model_code)
    data.py           the dataset, regenerated or read as the playground does (engine.project.data_code)
    train.py          the training loop for one process or torchrun (engine.project.train_code)
    snapshot.pt       the current weights and optimiser state (``torch.load(..., weights_only=True)``)
    config.json       the design; requirements.txt; README.md with the commands

``export_project`` writes it; ``trainer_state`` takes a live trainer's weights, optimiser,
schedule, epoch and RNG states, so ``python train.py --resume snapshot.pt`` goes on where the
playground stopped (exactly, when it stopped between epochs).
"""
from __future__ import annotations

import io
import os
from typing import Any

from engine import datasets
from engine import layers as L
from engine import spec as spec_mod
from engine.project.data_code import data_source, needs_sklearn, write_extras
from engine.project.model_code import ProjectError, check_design, model_source
from engine.project.readme import project_readme
from engine.project.train_code import train_source
from engine.spec import Spec, write_bytes_atomic, write_text_atomic
from engine.validation import errors, validate

__all__ = ["ProjectError", "check_design", "export_project", "trainer_state"]

SNAPSHOT = "snapshot.pt"
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")


def _cpu(value: Any) -> Any:
    """Tensors moved to the CPU inside nested dicts and lists (optimiser states)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu(v) for v in value)
    return value


def trainer_state(tr) -> dict:
    """A checkpoint of a live engine.trainer.Trainer in train.py's layout (run on its training thread)."""
    import torch

    return {
        "format": "neural-playground-checkpoint", "epoch": int(tr.epoch), "step": int(tr.step),
        "model": _cpu(tr.model.state_dict()), "optimizer": _cpu(tr.optimizer.state_dict()),
        "scheduler": tr.scheduler.state_dict() if tr.scheduler is not None else None,
        "rng": {"torch": torch.get_rng_state(), "shuffle": tr._gen.get_state()},
        "history": {k: [float(v) for v in tr.history.get(k, [])] for k in HISTORY_KEYS},
    }


def fresh_state(spec: Spec, info) -> dict:
    """A checkpoint of the design's freshly initialised weights (the seed's), before any training."""
    import torch

    from engine.build import build

    model = build(spec, info)  # seeds torch's generator with the design's seed, as train.py does
    return {"format": "neural-playground-checkpoint", "epoch": 0, "step": 0, "model": _cpu(model.state_dict()),
            "optimizer": None, "scheduler": None,
            "rng": {"torch": torch.get_rng_state(), "shuffle": torch.Generator().manual_seed(spec.training.seed).get_state()},
            "history": {k: [] for k in HISTORY_KEYS}}


def check_outdir(outdir: str) -> None:
    """ProjectError if ``outdir`` cannot take an export: its parent must exist, and it must be new, empty or an
    earlier export without a training checkpoint (train.py would resume that)."""
    outdir = os.path.abspath(os.fspath(outdir))
    parent = os.path.dirname(outdir)
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise ProjectError(f"{outdir} is a file - choose a folder for the project")
    if not os.path.isdir(parent):
        raise ProjectError(f"{outdir}: the folder {parent} does not exist - create it or choose another place")
    if os.path.exists(os.path.join(outdir, "checkpoints", "last.pt")):
        raise ProjectError(f"{outdir} holds a training checkpoint (checkpoints/last.pt), which train.py would resume - "
                           "choose a new folder, or delete the checkpoints folder first")
    if os.path.isdir(outdir) and os.listdir(outdir) and not all(
            os.path.exists(os.path.join(outdir, f)) for f in ("config.json", "train.py", "model.py")):
        raise ProjectError(f"{outdir} is not empty - choose an empty or new folder (an earlier export may be "
                           "overwritten)")
    if not os.access(outdir if os.path.isdir(outdir) else parent, os.W_OK):
        raise ProjectError(f"{outdir} is not writable - choose another place")


def export_project(spec: Spec, outdir: str | os.PathLike, state: dict | None = None, data=None) -> list[str]:
    """Write the project for ``spec`` into ``outdir`` (created if needed); returns the files written.

    ``state`` is the snapshot (``trainer_state``); without it the design's initial weights are
    written. ProjectError says what cannot be exported and why.
    """
    import torch

    outdir = os.path.abspath(os.fspath(outdir))
    check_design(spec)
    try:
        info = datasets.describe(spec.dataset)
    except ValueError as exc:
        raise ProjectError(f"the dataset cannot be read: {exc}") from None
    problems = errors(validate(spec, info))
    if problems:
        raise ProjectError("the design has problems - fix them first:\n" + "\n".join(f"  {p}" for p in problems))
    report = L.infer(spec, info)
    check_outdir(outdir)
    sources = {
        "model.py": model_source(spec, report),
        "data.py": data_source(spec.dataset),
        "train.py": train_source(spec, info.task == "regression"),
        "config.json": spec_mod.dumps(spec),
        "requirements.txt": "torch>=2.1\nnumpy>=1.24\n" + ("scikit-learn>=1.2\n" if needs_sklearn(spec.dataset) else ""),
        "README.md": project_readme(spec, info),
    }
    state = state if state is not None else fresh_state(spec, info)
    buf = io.BytesIO()
    torch.save(state, buf)
    os.makedirs(outdir, exist_ok=True)
    written = []
    for name, text in sources.items():
        write_text_atomic(os.path.join(outdir, name), text)
        written.append(name)
    write_bytes_atomic(os.path.join(outdir, SNAPSHOT), buf.getvalue())
    written.append(SNAPSHOT)
    written += write_extras(spec.dataset, outdir, data)
    return written
