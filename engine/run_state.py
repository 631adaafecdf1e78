"""A trainer's whole state as plain data (numpy arrays, numbers, JSON-able structure), and back.

What a run needs to go on exactly where it stopped: the weights, the optimiser's state (Adam's
moments and step counts, SGD's momentum), the learning-rate schedule, the history (curves), the
epoch and step counters and the random generators training draws from - the shuffle generator
(engine.trainer.Trainer._gen, one randperm per epoch) and torch's global CPU generator (Dropout's
masks). numpy's and Python's global generators are not used by training, so they are not kept.

The state is taken between batches on the training thread (Trainer.call_soon). The shuffle
generator is kept as it was *before* the current epoch drew its order (Trainer._epoch_rng), and a
run taken in the middle of an epoch keeps that epoch's progress (Trainer._progress: batches done,
loss sum, samples seen, predictions for the epoch's accuracy): the restored run draws the same
order again, skips the batches done and finishes the epoch with the same numbers, so it goes on
exactly as an uninterrupted run would have - paused at an epoch boundary or half-way through one.

Only numpy crosses to the GUI (engine.protocol.RunState); engine.runfile writes it to disk.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

TENSOR = "$tensor"  # marks a tensor's place in the optimiser's JSON structure


def _to_plain(value: Any, tensors: dict[str, np.ndarray], key: str) -> Any:
    """``value`` with every tensor moved into ``tensors`` (under ``key``) and replaced by a marker."""
    import torch

    if torch.is_tensor(value):
        tensors[key] = value.detach().cpu().numpy().copy()
        return {TENSOR: key}
    if isinstance(value, dict):
        return {str(k): _to_plain(v, tensors, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"optimiser state: cannot store a {type(value).__name__} ({key})")


def _from_plain(value: Any, tensors: dict[str, np.ndarray]) -> Any:
    import torch

    if isinstance(value, dict):
        if set(value) == {TENSOR}:
            name = value[TENSOR]
            if name not in tensors:
                raise ValueError(f"optimiser state: tensor {name!r} is missing")
            return torch.from_numpy(np.array(tensors[name]))
        if set(value) == {"$float"}:
            return float(value["$float"])
        return {k: _from_plain(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_plain(v, tensors) for v in value]
    return value


def flatten_optimizer(state_dict: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """torch optimiser state_dict -> (JSON-able structure, tensors by name). Parameter indices
    (the state's int keys) become strings; unflatten_optimizer turns them back."""
    tensors: dict[str, np.ndarray] = {}
    structure = {"state": {str(k): _to_plain(v, tensors, f"state.{k}") for k, v in state_dict["state"].items()},
                 "param_groups": _to_plain(state_dict["param_groups"], tensors, "param_groups")}
    return structure, tensors


def unflatten_optimizer(structure: dict, tensors: dict[str, np.ndarray]) -> dict:
    state = {int(k): _from_plain(v, tensors) for k, v in structure.get("state", {}).items()}
    groups = _from_plain(structure.get("param_groups", []), tensors)
    for g in groups:
        if "betas" in g and isinstance(g["betas"], list):
            g["betas"] = tuple(g["betas"])  # JSON has no tuples; torch's Adam keeps a tuple
    return {"state": state, "param_groups": groups}


def capture(trainer) -> dict:
    """The trainer's state as plain data (call on its training thread, between batches)."""
    import torch

    from engine.model_utils import state_to_numpy

    opt = getattr(trainer, "optimizer", None)
    others = [v for v in vars(trainer).values() if isinstance(v, torch.optim.Optimizer) and v is not opt]
    if not isinstance(opt, torch.optim.Optimizer) or others:
        raise ValueError("this kind of run (several optimisers, e.g. a GAN) cannot be saved as a run yet - "
                         "save the design instead")
    structure, opt_tensors = flatten_optimizer(opt.state_dict())
    sched = getattr(trainer, "scheduler", None)
    shuffle = getattr(trainer, "_epoch_rng", None)
    if shuffle is None:  # not started yet: the generator has drawn nothing
        shuffle = trainer._gen.get_state()
    progress = getattr(trainer, "_progress", None)
    if progress is not None and progress[0] > 0 and getattr(trainer, "_epoch_rng", None) is not None:
        batches, loss_sum, seen, preds = progress
        preds = preds() if callable(preds) else preds  # engine.fused hands a function: its outputs turned into classes
        progress = {"batches": int(batches), "loss_sum": float(loss_sum), "seen": int(seen),
                    "preds": torch.cat(preds).detach().cpu().numpy().copy() if preds else np.zeros(0, np.int64)}
    else:
        progress = None
    return {
        "progress": progress,
        "weights": state_to_numpy(trainer.model),
        "optimizer": {"structure": structure, "tensors": opt_tensors},
        "scheduler": _to_plain(sched.state_dict(), {}, "scheduler") if sched is not None else None,
        "history": {k: np.asarray(v, dtype=np.float64) for k, v in trainer.history.items()},
        "epoch": int(trainer.epoch),
        "step": int(trainer.step),
        "epochs": int(trainer.spec.training.epochs),
        "rng": {"shuffle": shuffle.numpy().copy(), "torch": torch.get_rng_state().numpy().copy()},
    }


def restore(trainer, state: dict) -> None:
    """Put ``state`` (from capture, or engine.runfile.read_run) into a freshly made trainer of the
    same design, before its run() starts. The weights are expected to be loaded already (the
    worker builds the model from them) unless ``state`` holds them and the model has other values."""
    import torch

    weights = state.get("weights")
    if weights:
        trainer.model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
    opt = state.get("optimizer")
    if opt:
        trainer.optimizer.load_state_dict(unflatten_optimizer(opt["structure"], opt["tensors"]))
    if state.get("scheduler") is not None and getattr(trainer, "scheduler", None) is not None:
        trainer.scheduler.load_state_dict(_from_plain(state["scheduler"], {}))
    history = state.get("history") or {}
    for k in trainer.history:
        trainer.history[k] = [float(v) for v in np.asarray(history.get(k, ()), dtype=np.float64)]
    progress = state.get("progress")
    if progress:  # the epoch in progress: its first batches are done (Trainer._resume_epoch)
        preds = torch.from_numpy(np.array(progress["preds"])).to(trainer.device)
        trainer._resume_progress = (int(progress["batches"]), float(progress["loss_sum"]), [preds],
                                    int(progress["seen"]))
    trainer.epoch = int(state.get("epoch", 0))
    trainer.step = int(state.get("step", 0))
    rng = state.get("rng") or {}
    if "shuffle" in rng:
        trainer._gen.set_state(torch.from_numpy(np.array(rng["shuffle"], dtype=np.uint8)))
    if "torch" in rng:
        torch.set_rng_state(torch.from_numpy(np.array(rng["torch"], dtype=np.uint8)))
