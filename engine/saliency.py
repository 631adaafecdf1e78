"""Saliency maps: which input pixels (or features) drive the network's score for a class.

Methods (captum where it provides them; captum is imported inside the functions because it
is slow to import):

* ``gradient``: vanilla gradient, max over channels of |d score / d input|.
* ``smoothgrad``: the mean gradient over 16 noisy copies (stdev 0.15 x the input's value
  range; Smilkov et al. 2017, eq. 1), then its absolute value, max over channels. Seeded with
  SMOOTHGRAD_SEED so the same input gives the same map.
* ``integrated_gradients``: captum IntegratedGradients from a zero baseline (the training
  mean after standardisation), summed over channels with its sign kept. 32 Gauss-Legendre
  steps, doubled (up to IG_MAX_STEPS) until the attributions add up to within 5 % of
  F(x) - F(baseline), the completeness check Sundararajan et al. 2017 ask for.
* ``gradcam``: captum LayerGradCam on an image layer (default: the last Conv2d), relu'd,
  upsampled bilinearly to the input's H x W and divided by its maximum (so 0..1).

The score for class t is the Output logit t; for a 1-unit head (binary BCE/MSE) it is the
logit for class 1 and its negative for class 0. Image inputs give (H, W); flat inputs give
(features,) for gradient, smoothgrad and integrated gradients (Grad-CAM needs images).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from engine.model_utils import as_sample, eval_mode, input_shape, model_device, n_classes_of, output_units

SALIENCY_METHODS = ("gradient", "smoothgrad", "integrated_gradients", "gradcam")
SMOOTHGRAD_SEED = 1234
SMOOTHGRAD_SAMPLES = 16
SMOOTHGRAD_NOISE = 0.15  # noise stdev as a fraction of the input's value range
IG_STEPS = 32
IG_MAX_STEPS = 512
IG_COMPLETENESS = 0.05  # |sum of attributions - (F(x) - F(0))| allowed, relative to |F(x) - F(0)|


def scores_fn(model):
    """forward(x) -> class scores (N, n_classes): the logits, or [-z, z] for a 1-unit head."""
    if output_units(model) == 1:
        return lambda x: _two_sided(model(x))
    return model


def _two_sided(z: torch.Tensor) -> torch.Tensor:
    return torch.cat([-z, z], dim=1)


def _prepare(model, x_np, target) -> tuple[torch.Tensor, int]:
    x = as_sample(model, x_np)
    k = n_classes_of(model)
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= int(target) < k:
        raise ValueError(f"saliency target {target!r} must be a class index 0..{k - 1}")
    return torch.from_numpy(x[None]).to(model_device(model)), int(target)


@contextmanager
def _seeded(device: torch.device, seed: int):
    """Seed the generator that draws noise on ``device``, then put every RNG state back."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)  # this device only, not all of them
        torch.random.default_generator.manual_seed(seed)
        if device.type == "mps":
            torch.mps.manual_seed(seed)  # fork_rng does not cover mps; restored below
        yield


def _mps_state(device: torch.device):
    return torch.mps.get_rng_state() if device.type == "mps" else None


def input_gradient(model, x_np: np.ndarray, target: int, loss: str = "cross_entropy") -> np.ndarray:
    """d score_target / d input with the input's own shape (C, H, W) or (features,), sign kept."""
    x, target = _prepare(model, x_np, target)
    f = scores_fn(model)
    with eval_mode(model), torch.enable_grad():
        x = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(f(x)[:, target].sum(), x)  # autograd.grad leaves param .grad alone
    return grad[0].detach().float().cpu().numpy()


def integrated_gradients_raw(model, x_np: np.ndarray, target: int, loss: str = "cross_entropy") -> np.ndarray:
    """Integrated-gradients attribution with the input's own shape, zero baseline, 32 or more steps."""
    from captum.attr import IntegratedGradients

    x, target = _prepare(model, x_np, target)
    ig = IntegratedGradients(scores_fn(model))
    base = torch.zeros_like(x)
    steps = IG_STEPS
    with eval_mode(model):
        with torch.no_grad():
            gap = abs(float((scores_fn(model)(x) - scores_fn(model)(base))[0, target]))
        while True:
            # along a ReLU path the integrand is piecewise constant, and a fixed rule can miss it
            attr, delta = ig.attribute(x, baselines=base, target=target, n_steps=steps, return_convergence_delta=True)
            if abs(float(delta[0])) <= IG_COMPLETENESS * gap + 1e-6 or steps >= IG_MAX_STEPS:
                break
            steps *= 2
    return attr[0].detach().float().cpu().numpy()


def _smoothgrad(model, x_np, target) -> np.ndarray:
    from captum.attr import NoiseTunnel, Saliency

    x, target = _prepare(model, x_np, target)
    stdev = float(SMOOTHGRAD_NOISE * (x.max() - x.min()).item())
    dev = x.device
    mps_before = _mps_state(dev)
    try:
        with eval_mode(model), _seeded(dev, SMOOTHGRAD_SEED):
            attr = NoiseTunnel(Saliency(scores_fn(model))).attribute(
                x, nt_type="smoothgrad", nt_samples=SMOOTHGRAD_SAMPLES, stdevs=stdev, target=target, abs=False)
    finally:
        if mps_before is not None:
            torch.mps.set_rng_state(mps_before)
    return attr[0].detach().float().cpu().numpy()


def last_conv(model) -> str | None:
    convs = [lid for lid in model.order if model.kinds.get(lid) == "Conv2d"]
    return convs[-1] if convs else None


def gradcam(model, x_np: np.ndarray, target: int, layer_id: str | None = None) -> np.ndarray:
    """Grad-CAM heat map float32 (H, W) in [0, 1] for an image layer (default: the last Conv2d)."""
    from captum.attr import LayerAttribution, LayerGradCam

    shape = input_shape(model)
    if len(shape) != 3:
        raise ValueError("Grad-CAM needs image inputs - use gradient or integrated_gradients for tabular data")
    layer_id = layer_id or last_conv(model)
    if layer_id is None:
        raise ValueError("Grad-CAM needs a Conv2d layer in the design - add one or pick another saliency method")
    if layer_id not in model.layers or len(model.shapes.get(layer_id, ())) != 3:
        images = [lid for lid in model.order if lid in model.layers and len(model.shapes[lid]) == 3]
        raise ValueError(f"Grad-CAM layer {layer_id!r} is not an image layer of this network - choose one of "
                         f"{', '.join(images) or '(none)'}")
    x, target = _prepare(model, x_np, target)
    with eval_mode(model):
        cam = LayerGradCam(scores_fn(model), model.layers[layer_id]).attribute(x, target=target, relu_attributions=True)
        cam = LayerAttribution.interpolate(cam.detach(), tuple(shape[1:]), interpolate_mode="bilinear")
    cam = cam[0, 0].float().cpu().numpy()
    top = float(cam.max())
    return (cam / top if top > 0 else np.zeros_like(cam)).astype(np.float32)


def saliency(model, x_np: np.ndarray, target: int, method: str = "gradient", layer_id: str | None = None,
             loss: str = "cross_entropy") -> np.ndarray:
    """Saliency map float32: (H, W) for an image sample, (features,) for a flat one.

    ``layer_id`` is only used by gradcam. ``loss`` does not change the score (always the
    logit), it is accepted so callers can pass the design's settings through.
    """
    if method not in SALIENCY_METHODS:
        raise ValueError(f"saliency method {method!r} is unknown - use one of {', '.join(SALIENCY_METHODS)}")
    image = len(input_shape(model)) == 3
    if method == "gradcam":
        return gradcam(model, x_np, target, layer_id)
    if method == "gradient":
        attr = np.abs(input_gradient(model, x_np, target, loss))
        return (attr.max(axis=0) if image else attr).astype(np.float32)
    if method == "smoothgrad":
        attr = np.abs(_smoothgrad(model, x_np, target))  # |mean gradient|: the sign cancels noise, then it is shown
        return (attr.max(axis=0) if image else attr).astype(np.float32)
    attr = integrated_gradients_raw(model, x_np, target, loss)
    return (attr.sum(axis=0) if image else attr).astype(np.float32)
