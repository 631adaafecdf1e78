"""Training and saliency on a CUDA GPU agree with the CPU (tests marked gpu; skipped without CUDA).

The CPU tests pin device="cpu" because they compare with CPU references bit for bit; these are the
place where "auto" and "cuda" are exercised, with tolerances for float32 reductions done in
another order on the GPU. TF32 is switched off so the GPU computes in true float32.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import datasets, saliency
from engine.build import build
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec, TrainingSpec
from engine.trainer import Trainer, choose_device

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def true_float32():
    """No TF32 in matmuls or convolutions, deterministic cuDNN; the previous settings come back afterwards."""
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul


def chain(dataset: DatasetSpec, layers: list[tuple[str, str, dict]], device: str, **training) -> Spec:
    """No Dropout: its masks come from the CPU or the CUDA generator, which differ by design."""
    lays = [LayerSpec(lid, kind, params) for lid, kind, params in layers]
    t = dict(optimizer="sgd", lr=0.1, momentum=0.5, batch_size=16, epochs=3, seed=7, device=device)
    t.update(training)
    return Spec(dataset=dataset, layers=lays, edges=[EdgeSpec(a.id, b.id) for a, b in zip(lays, lays[1:], strict=False)],
                training=TrainingSpec(**t))


MLP = [("in1", "Input", {}), ("dense1", "Dense", {"units": 8}), ("act1", "Activation", {"function": "tanh"}),
       ("out1", "Output", {})]
CNN = [("in1", "Input", {}), ("conv1", "Conv2d", {"filters": 4, "kernel": 3}), ("act1", "Activation", {"function": "relu"}),
       ("pool1", "MaxPool2d", {}), ("flat1", "Flatten", {}), ("out1", "Output", {})]


def test_auto_picks_cuda_when_there_is_one():
    assert choose_device("auto").type == "cuda"
    tr = Trainer(chain(DatasetSpec("xor", {"n_points": 100}), MLP, "auto", epochs=1))
    assert tr.device.type == "cuda" and next(tr.model.parameters()).is_cuda
    assert tr.run().device.startswith("CUDA")


@pytest.mark.parametrize("layers, dataset, training", [
    (MLP, DatasetSpec("xor", {"n_points": 200, "val_fraction": 0.2, "seed": 1}), {}),
    (MLP, DatasetSpec("gaussians", {"classes": 3, "n_points": 200, "seed": 1}), {"optimizer": "adam", "lr": 0.02}),
    (CNN, DatasetSpec("digits", {"val_fraction": 0.3}), {"optimizer": "adam", "lr": 0.01, "batch_size": 64}),
], ids=["xor-sgd", "gaussians-adam", "digits-cnn"])
def test_training_on_cuda_gives_the_cpu_weights_and_history(layers, dataset, training):
    data = datasets.load(dataset)
    cpu = Trainer(chain(dataset, layers, "cpu", **training), data)
    gpu = Trainer(chain(dataset, layers, "cuda", **training), data)
    for a, b in zip(cpu.model.state_dict().values(), gpu.model.state_dict().values(), strict=True):
        assert torch.equal(a, b.cpu())  # the same initial weights: built on the CPU, then moved
    rc, rg = cpu.run(), gpu.run()
    assert gpu.device.type == "cuda" and rg.device.startswith("CUDA") and rc.device == "CPU"
    assert rg.steps == rc.steps and rg.epochs == rc.epochs
    for (k, a), b in zip(cpu.model.state_dict().items(), gpu.model.state_dict().values(), strict=True):
        assert b.is_cuda, k
        torch.testing.assert_close(b.cpu(), a, rtol=1e-3, atol=1e-4, msg=k)
    np.testing.assert_allclose(rg.history["train_loss"], rc.history["train_loss"], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(rg.history["val_loss"], rc.history["val_loss"], rtol=1e-3, atol=1e-5)
    assert rg.val_accuracy == pytest.approx(rc.val_accuracy, abs=0.02)


@pytest.mark.parametrize("method", ["gradient", "integrated_gradients", "gradcam"])
def test_saliency_on_a_cuda_model_matches_the_cpu(method):
    """SmoothGrad is left out: its noise comes from the CUDA generator there, from the CPU one here."""
    dataset = DatasetSpec("digits")
    data = datasets.load(dataset)
    spec = chain(dataset, CNN, "cpu")
    cpu = build(spec, data.info)
    gpu = build(spec, data.info).cuda()
    x = data.x_val[3]
    for target in (0, 4):
        ref = saliency.saliency(cpu, x, target, method)
        got = saliency.saliency(gpu, x, target, method)
        assert got.dtype == np.float32 and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * float(np.abs(ref).max()) + 1e-7)
