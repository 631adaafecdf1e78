"""Trained weights out to files other tools read, and back into a model of the same design.

Formats, picked by the file extension (``export``):

* ``.safetensors`` - the state_dict, with the design JSON in the header metadata
  (``{"format": "neural-playground-weights", "version": "1", "design": <design JSON>}``).
* ``.pt`` / ``.pth`` - ``torch.save`` of a plain dict
  ``{"format": ..., "version": "1", "design": <design JSON>, "state_dict": {key: tensor}}``.
  Only str and tensors inside, so it loads with ``torch.load(path, weights_only=True)``;
  another tool takes ``ckpt["state_dict"]``. A bare state_dict is read as well.
* ``.onnx`` - the model graph for inference (opset 17, batch axis dynamic, input ``input``,
  output ``logits``), with the design in the model's metadata_props. Uses the TorchScript-based
  exporter (``dynamo=False``), which needs only the ``onnx`` package.
* ``.pt2`` - a ``torch.export`` ExportedProgram (``torch.export.load``), batch axis dynamic.
* ``.ts`` / ``.torchscript`` - ``torch.jit.trace`` (``torch.jit.load``); torch marks TorchScript
  deprecated, ``.pt2`` is its successor, but many C++ and mobile runtimes still read it.

State-dict keys are the model's own (``layers.dense1.weight``), so they name the design's layers.
Every write is atomic (temporary file in the target folder, then ``os.replace``), so a failed
export never leaves half a file over an old one. Nothing is ever unpickled.
"""
from __future__ import annotations

import copy
import io
import os
import warnings
from typing import TYPE_CHECKING, Any

from engine import spec as spec_mod
from engine.spec import Spec, SpecError, write_bytes_atomic

if TYPE_CHECKING:  # torch is imported where it is used, so the format list is available without it
    import torch

WEIGHTS_FORMAT = "neural-playground-weights"
WEIGHTS_VERSION = "1"
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "logits"

# extension -> short description, in the order shown to the user
FORMATS: dict[str, str] = {
    ".safetensors": "safetensors weights (+ design)",
    ".pt": "PyTorch state_dict (+ design)",
    ".pth": "PyTorch state_dict (+ design)",
    ".onnx": "ONNX model for inference",
    ".pt2": "torch.export program",
    ".ts": "TorchScript (traced)",
    ".torchscript": "TorchScript (traced)",
}
WEIGHT_FORMATS = (".safetensors", ".pt", ".pth")  # the ones load_weights_into reads


def extension(path: str | os.PathLike) -> str:
    return os.path.splitext(os.fspath(path))[1].lower()


def check_path(path: str | os.PathLike, formats: tuple[str, ...] | None = None) -> str:
    """The extension of ``path`` if it is a supported format and its folder exists, else ValueError.

    Called before training so that a long run never ends in an unwritable export.
    """
    allowed = formats or tuple(FORMATS)
    ext = extension(path)
    if ext not in allowed:
        shown = f"'{ext}'" if ext else "no extension"
        raise ValueError(f"{os.fspath(path)}: {shown} is not a supported format - use one of {', '.join(allowed)}")
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise ValueError(f"{os.fspath(path)}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"{os.fspath(path)} is a folder - give a file name such as model{ext}")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{os.fspath(path)}: the folder {folder} is not writable - choose another place")
    return ext


def export(model: torch.nn.Module, spec: Spec, path: str | os.PathLike) -> str:
    """Write ``model`` (a GraphNet built from ``spec``) in the format named by the extension; returns the path."""
    ext = check_path(path)
    if ext == ".safetensors":
        save_safetensors(model, spec, path)
    elif ext in (".pt", ".pth"):
        save_state_dict(model, spec, path)
    elif ext == ".onnx":
        save_onnx(model, spec, path)
    elif ext == ".pt2":
        save_exported_program(model, spec, path)
    else:
        save_torchscript(model, spec, path)
    return os.fspath(path)


# ---- weights: safetensors and .pt ------------------------------------------------------

def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share memory, and the copy is detached from training
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def _metadata(spec: Spec) -> dict[str, str]:
    return {"format": WEIGHTS_FORMAT, "version": WEIGHTS_VERSION, "design": spec_mod.dumps(spec)}


def _parse_design(text: Any) -> Spec | None:
    """The design stored beside the weights; None if absent or unreadable (the weights stay usable)."""
    if not isinstance(text, str):
        return None
    try:
        return spec_mod.loads(text)
    except SpecError:
        return None


def save_safetensors(model: torch.nn.Module, spec: Spec, path: str | os.PathLike) -> None:
    """State dict as safetensors; the design JSON goes in the header metadata (string values only)."""
    from safetensors.torch import save

    write_bytes_atomic(path, save(_cpu_state(model), metadata=_metadata(spec)))


def load_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Spec | None]:
    """(state_dict on CPU, design or None); ValueError if the file is not safetensors."""
    from safetensors import safe_open

    try:
        with safe_open(os.fspath(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    except FileNotFoundError:
        raise ValueError(f"{os.fspath(path)}: no such file") from None
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise ValueError(f"{os.fspath(path)}: not a readable safetensors file ({exc})") from None
    return state, _parse_design(meta.get("design"))


def save_state_dict(model: torch.nn.Module, spec: Spec, path: str | os.PathLike) -> None:
    """``torch.save`` of {"format", "version", "design", "state_dict"}: loads with weights_only=True."""
    import torch

    payload = dict(_metadata(spec), state_dict=_cpu_state(model))
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_bytes_atomic(path, buf.getvalue())


def load_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Spec | None]:
    """(state_dict on CPU, design or None) from our .pt or a bare state_dict; never unpickles objects."""
    import torch

    try:
        obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"{os.fspath(path)}: no such file") from None
    except Exception as exc:  # UnpicklingError for foreign objects, RuntimeError for non-zip files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{os.fspath(path)}: not a PyTorch weights file that can be loaded safely ({first})") from None
    design = None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        design = _parse_design(obj.get("design"))
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise ValueError(f"{os.fspath(path)}: holds no state_dict (a mapping of names to tensors)")
    return dict(obj), design


def load_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Spec | None]:
    """Read a .safetensors / .pt / .pth weights file by its extension."""
    ext = extension(path)
    if ext == ".safetensors":
        return load_safetensors(path)
    if ext in (".pt", ".pth"):
        return load_state_dict(path)
    raise ValueError(f"{os.fspath(path)}: weights are read from {', '.join(WEIGHT_FORMATS)} files, not '{ext or 'no extension'}'")


def load_weights_into(model: torch.nn.Module, path: str | os.PathLike) -> Spec | None:
    """Copy the file's weights into ``model`` after checking every key and shape; returns the stored design.

    ValueError names the first key that does not fit; the model is unchanged in that case.
    """
    state, design = load_weights(path)
    check_state_matches(model, state, os.path.basename(os.fspath(path)))
    model.load_state_dict(state, strict=True)
    return design


def check_state_matches(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str = "the file") -> None:
    own = model.state_dict()
    hint = "the weights belong to another design (or the design was edited since they were saved)"
    for key, mine in own.items():
        if key not in state:
            raise ValueError(f"{source}: has no weights for '{key}' - {hint}")
        theirs = state[key]
        if tuple(theirs.shape) != tuple(mine.shape):
            raise ValueError(f"{source}: '{key}' has shape {_fmt(theirs.shape)} in the file but {_fmt(mine.shape)} "
                             f"in this design - {hint}")
        if theirs.is_floating_point() != mine.is_floating_point():
            raise ValueError(f"{source}: '{key}' holds {theirs.dtype} in the file but {mine.dtype} here - {hint}")
    extra = [k for k in state if k not in own]
    if extra:
        raise ValueError(f"{source}: has weights for '{extra[0]}', which this design lacks - {hint}")


def _fmt(shape) -> str:
    return "x".join(str(int(s)) for s in shape) or "scalar"


# ---- graphs: ONNX, torch.export, TorchScript -------------------------------------------

def _inference_copy(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.Tensor]:
    """A CPU copy in eval mode (the live model may be training in another thread) and an example batch."""
    import torch

    clone = copy.deepcopy(model).to("cpu").eval()
    shape = tuple(clone.shapes[clone.input_id])
    # batch of 2: with 1, tracing may bake in a batch size of 1 and BatchNorm checks get confused
    return clone, torch.rand(2, *shape)  # in [0, 1): also valid token ids (0) for an Embedding


def save_onnx(model: torch.nn.Module, spec: Spec, path: str | os.PathLike) -> None:
    """ONNX (opset 17) with a dynamic batch axis; the design JSON is stored in metadata_props."""
    import onnx
    import torch

    clone, example = _inference_copy(model)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # the TorchScript-based exporter is deprecated in favour of dynamo, which needs onnxscript
        warnings.simplefilter("ignore")
        torch.onnx.export(clone, (example,), buf, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in _metadata(spec).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "Neural Playground"
    write_bytes_atomic(path, proto.SerializeToString())


def save_exported_program(model: torch.nn.Module, spec: Spec, path: str | os.PathLike) -> None:
    """``torch.export`` program (load with ``torch.export.load``); design in extra file design.json."""
    import torch

    clone, example = _inference_copy(model)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(clone, (example,), dynamic_shapes=({0: batch},))
    buf = io.BytesIO()
    torch.export.save(program, buf, extra_files={"design.json": spec_mod.dumps(spec)})
    write_bytes_atomic(path, buf.getvalue())


def save_torchscript(model: torch.nn.Module, spec: Spec, path: str | os.PathLike) -> None:
    """Traced TorchScript (``torch.jit.load``); design in extra file design.json."""
    import torch

    clone, example = _inference_copy(model)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated; the format is still widely read
        traced = torch.jit.trace(clone, (example,))
        torch.jit.save(traced, buf, _extra_files={"design.json": spec_mod.dumps(spec)})
    write_bytes_atomic(path, buf.getvalue())


def onnx_design(path: str | os.PathLike) -> Spec | None:
    """The design stored in an exported ONNX file's metadata, if any."""
    import onnx

    proto = onnx.load(os.fspath(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    return _parse_design(meta.get("design"))


# ---- files -------------------------------------------------------------------------------



def describe_formats() -> str:
    """One line per format for --help and file dialogs."""
    return "\n".join(f"{ext:<13} {what}" for ext, what in FORMATS.items())
