"""A GPU failure in the middle of training moves the run to the CPU instead of ending it.

There is no GPU here, so the device is made to fail: the trainer believes it trains on CUDA
and its model raises the CUDA-style errors torch raises (out of memory, a lost device)."""
import pytest
import torch

from engine import spec as S
from engine.trainer import Trainer, is_device_error


def _failing_trainer(error: Exception, fail_at_call: int = 30, epochs: int = 12):
    spec = S.load("assets/examples/xor.json")
    spec.training.epochs = epochs
    spec.training.device = "cpu"
    tr = Trainer(spec)
    tr.device = torch.device("cuda")  # what the trainer believes; its tensors stay on the CPU
    calls = {"n": 0}
    real_forward = tr.model.forward

    def forward(x):
        calls["n"] += 1
        if calls["n"] == fail_at_call:
            raise error
        return real_forward(x)

    tr.model.forward = forward
    return tr, calls


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 4.00 GiB total capacity)"),
    RuntimeError("CUDA error: an illegal memory access was encountered"),
])
def test_a_gpu_error_continues_the_run_on_the_cpu(error):
    tr, calls = _failing_trainer(error)
    notices = []
    result = tr.run_with_cpu_fallback(notices.append)
    assert calls["n"] > 30, "training went on after the failure"
    assert tr.device.type == "cpu" and result.device == "CPU"
    assert result.epochs == 12 and result.stopped_reason == "finished all epochs"
    assert len(notices) == 1 and "GPU error" in notices[0] and "CPU" in notices[0]
    assert result.val_accuracy > 0.9


def test_an_error_of_the_design_is_not_mistaken_for_a_gpu_error():
    tr, _ = _failing_trainer(RuntimeError("mat1 and mat2 shapes cannot be multiplied (16x3 and 2x8)"))
    with pytest.raises(RuntimeError, match="shapes"):
        tr.run_with_cpu_fallback(lambda m: None)


def test_on_the_cpu_nothing_falls_back():
    spec = S.load("assets/examples/xor.json")
    spec.training.device = "cpu"
    tr = Trainer(spec)
    tr.model.forward = lambda x: (_ for _ in ()).throw(RuntimeError("CUDA error: out of memory"))
    with pytest.raises(RuntimeError):
        tr.run_with_cpu_fallback(lambda m: None)


def test_device_errors_are_told_apart():
    assert is_device_error(torch.OutOfMemoryError("x"))
    assert is_device_error(RuntimeError("CUDA error: device-side assert triggered"))
    assert not is_device_error(RuntimeError("Expected all tensors to be on the same dtype"))
