"""The training loop, checked against a hand-written torch loop, torch's schedule formulas and the clock."""
from __future__ import annotations

import dataclasses
import math
import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine import datasets
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec, TrainingSpec
from engine.trainer import Snapshot, Trainer, choose_device, device_name


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models on 2 busy cores: extra torch threads only wait for each other (30 s instead of 2 s)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def mlp_spec(dataset: DatasetSpec | None = None, hidden: int = 6, **training) -> Spec:
    lays = [LayerSpec("in1", "Input"), LayerSpec("dense1", "Dense", {"units": hidden}),
            LayerSpec("act1", "Activation", {"function": "tanh"}), LayerSpec("out1", "Output")]
    # device "cpu", not the design default "auto": on a CUDA machine "auto" trains on the GPU, and these tests compare
    # with CPU references bit for bit (hand-written loop, equal histories, torch.equal weights)
    t = dict(optimizer="sgd", lr=0.1, momentum=0.0, batch_size=16, epochs=2, seed=7, device="cpu")
    t.update(training)
    return Spec(dataset=dataset or DatasetSpec("xor", {"n_points": 100, "val_fraction": 0.2, "seed": 1}), layers=lays,
                edges=[EdgeSpec(a.id, b.id) for a, b in zip(lays, lays[1:], strict=False)], training=TrainingSpec(**t))


def wait_until(cond, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def start(tr: Trainer) -> tuple[threading.Thread, list]:
    out: list = []
    th = threading.Thread(target=lambda: out.append(tr.run()), daemon=True)
    th.start()
    return th, out


# ---- against a hand-written loop ----------------------------------------------------------------

def reference_run(spec: Spec, data: datasets.Data, trainer_model) -> nn.Sequential:
    """The same training written out by hand: a Sequential with the same initial weights, torch's optimiser
    built directly, the same shuffling generator, the loss and penalties written from their formulas."""
    t = spec.training
    d1, out = trainer_model.layers["dense1"], trainer_model.layers["out1"]
    seq = nn.Sequential(nn.Linear(d1.in_features, d1.out_features), nn.Tanh(), nn.Linear(out.in_features, out.out_features))
    with torch.no_grad():
        for mine, theirs in ((seq[0], d1), (seq[2], out)):
            mine.weight.copy_(theirs.weight)
            mine.bias.copy_(theirs.bias)
    params = list(seq.parameters())
    opt = {
        "sgd": lambda: torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, nesterov=t.nesterov, weight_decay=t.weight_decay),
        "adam": lambda: torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay),
        "adamw": lambda: torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay),
        "rmsprop": lambda: torch.optim.RMSprop(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay),
        "adagrad": lambda: torch.optim.Adagrad(params, lr=t.lr, weight_decay=t.weight_decay),
    }[t.optimizer]()
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    n, bs = len(x), t.batch_size
    bounds = list(range(0, n, bs)) + [n]
    if n % bs == 1 and len(bounds) > 2:
        del bounds[-2]  # a lone last sample joins the batch before it
    gen = torch.Generator().manual_seed(t.seed)
    for epoch in range(t.epochs):
        if t.lr_schedule == "step":
            for g in opt.param_groups:
                g["lr"] = t.lr * t.gamma ** (epoch // t.step_size)
        perm = torch.randperm(n, generator=gen)
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            xb, yb = x[perm[lo:hi]], y[perm[lo:hi]]
            o = seq(xb)
            if t.loss == "cross_entropy":
                loss = F.cross_entropy(o, yb)
            elif o.shape[1] == 1:
                target = yb.float().unsqueeze(1)
                loss = F.binary_cross_entropy_with_logits(o, target) if t.loss == "bce" else F.mse_loss(o, target)
            else:
                loss = F.mse_loss(o, F.one_hot(yb, o.shape[1]).float())
            if t.l1 or t.l2:
                penalty = torch.zeros(())
                for w in (seq[0].weight, seq[2].weight):  # weights only, not biases
                    if t.l1:
                        penalty = penalty + t.l1 * w.abs().sum()
                    if t.l2:
                        penalty = penalty + t.l2 * (w * w).sum()
                loss = loss + penalty
            opt.zero_grad()
            loss.backward()
            if t.grad_clip:
                nn.utils.clip_grad_norm_(params, t.grad_clip)
            opt.step()
    return seq


def assert_same_weights(model, seq: nn.Sequential, exact: bool = True) -> None:
    got = [model.layers["dense1"].weight, model.layers["dense1"].bias, model.layers["out1"].weight, model.layers["out1"].bias]
    want = [seq[0].weight, seq[0].bias, seq[2].weight, seq[2].bias]
    for g, w in zip(got, want, strict=True):
        if exact:  # the eager path: torch's fused optimiser kernels, rounded differently from the loop's
            torch.testing.assert_close(g.detach(), w.detach(), rtol=1e-5, atol=1e-6)
        else:  # engine.fused does the same arithmetic in another order: equal to float rounding
            assert torch.allclose(g.detach(), w.detach(), rtol=1e-4, atol=1e-5), (g - w).abs().max()


CASES = {
    "sgd": dict(optimizer="sgd", lr=0.3),
    "sgd-momentum": dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=0.01),
    "sgd-nesterov": dict(optimizer="sgd", lr=0.1, momentum=0.8, nesterov=True),
    "adam": dict(optimizer="adam", lr=0.02, weight_decay=0.001),
    "adamw": dict(optimizer="adamw", lr=0.02, weight_decay=0.05),
    "rmsprop": dict(optimizer="rmsprop", lr=0.01, momentum=0.5),
    "adagrad": dict(optimizer="adagrad", lr=0.1),
    "bce": dict(optimizer="adam", lr=0.02, loss="bce"),
    "mse": dict(optimizer="sgd", lr=0.2, loss="mse"),
    "mse-3-classes": dict(optimizer="sgd", lr=0.2, loss="mse", dataset="gaussians"),
    "cross-entropy-3-classes": dict(optimizer="adam", lr=0.02, dataset="gaussians"),
    "l1-l2": dict(optimizer="sgd", lr=0.1, l1=0.01, l2=0.02),
    "clip": dict(optimizer="sgd", lr=1.0, grad_clip=0.05),
    "everything": dict(optimizer="adamw", lr=0.05, loss="bce", l1=0.001, l2=0.01, grad_clip=0.1, weight_decay=0.1),
    "step-schedule": dict(optimizer="sgd", lr=0.2, momentum=0.5, lr_schedule="step", step_size=1, gamma=0.5, epochs=3),
    "lone-last-sample": dict(optimizer="sgd", lr=0.1, batch_size=9),  # on 73 training points (set below)
}


@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
@pytest.mark.parametrize("case", list(CASES))
def test_trainer_gives_the_same_weights_as_a_hand_written_torch_loop(case, fused):
    settings = dict(CASES[case])
    kind = settings.pop("dataset", "xor")
    params = {"n_points": 100, "val_fraction": 0.2, "seed": 1}
    if kind == "gaussians":
        params["classes"] = 3
    if case == "lone-last-sample":
        params["n_points"] = 91  # 73 training points: batches of 9 leave one over
    spec = mlp_spec(DatasetSpec(kind, params), **settings)
    data = datasets.load(spec.dataset)
    tr = Trainer(spec, data)
    tr.use_fused = fused  # eager: bit for bit; fused (where engine.fused takes the design): to float rounding
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    result = tr.run()
    assert result.stopped_reason == "finished all epochs" and result.epochs == spec.training.epochs
    assert tr.step == tr.steps_per_epoch * spec.training.epochs
    if case == "lone-last-sample":
        assert len(data.x_train) % 9 == 1 and tr.steps_per_epoch == len(data.x_train) // 9
    moved = any(not torch.equal(before[k], v) for k, v in tr.model.state_dict().items())
    assert moved
    fresh = Trainer(spec, data)  # same seed: the initial weights the trained model started from
    assert_same_weights(tr.model, reference_run(spec, data, fresh.model), exact=not fused)


def test_penalties_leave_normalisation_gains_alone():
    """One full-batch SGD step with and without L1/L2: same data gradient, so only penalised tensors differ."""
    lays = [LayerSpec("in1", "Input"), LayerSpec("conv1", "Conv2d", {"filters": 2}), LayerSpec("norm1", "LayerNorm"),
            LayerSpec("flat1", "Flatten"), LayerSpec("out1", "Output")]
    spec = Spec(dataset=DatasetSpec("digits", {"val_fraction": 0.5}), layers=lays,
                edges=[EdgeSpec(a.id, b.id) for a, b in zip(lays, lays[1:], strict=False)],
                training=TrainingSpec(optimizer="sgd", lr=0.5, momentum=0.0, batch_size=65536, epochs=1,
                                             device="cpu"))
    data = datasets.load(spec.dataset)
    plain = Trainer(spec, data)
    plain.run()
    spec.training.l1, spec.training.l2 = 0.01, 0.01
    penalised = Trainer(spec, data)
    penalised.run()
    a, b = plain.model.state_dict(), penalised.model.state_dict()
    assert plain.step == penalised.step == 1
    for k in ("layers.conv1.weight", "layers.out1.weight"):
        assert not torch.equal(a[k], b[k]), k
    for k in ("layers.conv1.bias", "layers.norm1.weight", "layers.norm1.bias", "layers.out1.bias"):
        assert torch.equal(a[k], b[k]), k


def test_batchnorm_design_trains_when_one_sample_is_left_over():
    lays = [LayerSpec("in1", "Input"), LayerSpec("d1", "Dense"), LayerSpec("bn1", "BatchNorm"), LayerSpec("out1", "Output")]
    spec = Spec(dataset=DatasetSpec("iris", {"val_fraction": 0.2}), layers=lays,
                training=TrainingSpec(batch_size=17, epochs=2, device="cpu"),
                edges=[EdgeSpec(a.id, b.id) for a, b in zip(lays, lays[1:], strict=False)])
    result = Trainer(spec).run()  # 120 training rows = 7 * 17 + 1
    assert result.stopped_reason == "finished all epochs" and math.isfinite(result.train_loss)


@pytest.mark.parametrize("schedule, gamma, formula", [
    ("none", 0.5, lambda e: 0.1),
    ("step", 0.5, lambda e: 0.1 * 0.5 ** (e // 2)),
    ("exponential", 0.7, lambda e: 0.1 * 0.7 ** e),
    ("cosine", 0.5, lambda e: 0.1 * (1 + math.cos(math.pi * e / 6)) / 2),
])
def test_lr_history_follows_the_schedule_formulas(schedule, gamma, formula):
    spec = mlp_spec(DatasetSpec("xor", {"n_points": 40}), lr=0.1, epochs=6, lr_schedule=schedule, step_size=2, gamma=gamma)
    tr = Trainer(spec)
    result = tr.run()
    assert np.allclose(result.history["lr"], [formula(e) for e in range(6)], rtol=1e-6, atol=1e-12)
    assert len(result.history["lr"]) == 6 == len(result.history["val_loss"])


# ---- device and reproducibility -----------------------------------------------------------------

def test_auto_device_is_the_cpu_without_gpus_and_missing_gpus_are_refused_clearly(monkeypatch):
    # a machine without GPUs, also on one that has them (this used to be skipped there)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert choose_device("auto").type == "cpu" and device_name(choose_device("auto")) == "CPU"
    with pytest.raises(ValueError, match="training.device.*auto or cpu"):
        choose_device("cuda")
    with pytest.raises(ValueError, match="training.device.*auto or cpu"):
        choose_device("mps")
    tr = Trainer(mlp_spec(epochs=1, device="auto"))
    assert tr.device.type == "cpu" and next(tr.model.parameters()).device.type == "cpu"
    assert tr.run().device == "CPU"


def test_same_seed_same_history_different_seed_different_history():
    spec = mlp_spec(optimizer="adam", lr=0.05, epochs=3)
    spec.layers.insert(3, LayerSpec("drop1", "Dropout", {"rate": 0.3}))
    spec.edges = [EdgeSpec("in1", "dense1"), EdgeSpec("dense1", "act1"), EdgeSpec("act1", "drop1"), EdgeSpec("drop1", "out1")]
    a, b = Trainer(spec).run(), Trainer(spec).run()
    c = Trainer(spec, seed=8).run()
    assert a.history == b.history
    assert a.history["train_loss"] != c.history["train_loss"]


# ---- control from another thread ----------------------------------------------------------------

def counting(tr: Trainer) -> list[int]:
    """Counts real optimiser steps (torch's own hook, not the trainer's counter)."""
    count = [0]
    tr.optimizer.register_step_post_hook(lambda *a: count.__setitem__(0, count[0] + 1))
    return count


def test_pause_step_resume_and_stop():
    snaps: list[Snapshot] = []
    tr = Trainer(mlp_spec(epochs=100000), on_snapshot=snaps.append)
    count = counting(tr)
    tr.pause()
    th, out = start(tr)
    wait_until(lambda: snaps and snaps[-1].state == "paused")
    time.sleep(0.1)
    assert count[0] == 0 and tr.paused
    tr.step_once()
    wait_until(lambda: snaps[-1].step == 1 and snaps[-1].state == "paused")
    time.sleep(0.15)
    assert count[0] == 1 == tr.step
    for _ in range(3):  # quick clicks: one batch each
        tr.step_once()
    wait_until(lambda: count[0] >= 4)
    time.sleep(0.15)
    assert count[0] == 4 == tr.step and snaps[-1].state == "paused" and snaps[-1].step == 4
    tr.resume()
    wait_until(lambda: count[0] > 50)
    tr.pause()
    wait_until(lambda: snaps[-1].state == "paused")
    paused_at = count[0]
    time.sleep(0.15)
    assert count[0] == paused_at == tr.step  # paused means paused
    tr.stop()
    th.join(5)
    assert not th.is_alive()
    assert out[0].stopped_reason == "stopped by the user" and snaps[-1].state == "stopped"


def test_stop_from_another_thread_ends_the_run_within_a_batch():
    spec = mlp_spec(DatasetSpec("xor", {"n_points": 2000}), epochs=100000, batch_size=32)
    snaps: list[Snapshot] = []
    tr = Trainer(spec, on_snapshot=snaps.append)
    count = counting(tr)
    th, out = start(tr)
    wait_until(lambda: count[0] > 20)
    t0 = time.perf_counter()
    tr.stop()
    at_stop = count[0]  # read after stop(): at most the batch already in flight may still finish
    th.join(5)
    assert time.perf_counter() - t0 < 2.0 and not th.is_alive()
    assert count[0] - at_stop <= 1  # only the batch in flight finishes
    assert out[0].stopped_reason == "stopped by the user" and snaps[-1].state == "stopped"
    assert snaps[-1].message == "stopped by the user"


def test_hyperparameters_changed_while_running_take_effect():
    tr = Trainer(mlp_spec(epochs=100000, lr=0.1, momentum=0.5))
    count = counting(tr)
    th, _ = start(tr)
    wait_until(lambda: count[0] > 10)
    tr.set_hyper(lr=0.0123, momentum=0.7, weight_decay=0.01)
    g = tr.optimizer.param_groups[0]
    wait_until(lambda: (g["lr"], g["momentum"], g["weight_decay"]) == (0.0123, 0.7, 0.01))
    n_epochs = len(tr.history["lr"])
    wait_until(lambda: len(tr.history["lr"]) >= n_epochs + 2)
    assert tr.history["lr"][-1] == 0.0123 and tr.history["lr"][0] == 0.1
    # a learning rate of zero (no momentum, no decay) must freeze the weights from the next batch on
    tr.set_hyper(lr=0.0, momentum=0.0, weight_decay=0.0)
    wait_until(lambda: (g["lr"], g["momentum"], g["weight_decay"]) == (0.0, 0.0, 0.0))
    at = count[0]
    wait_until(lambda: count[0] > at + 2)
    frozen = {k: v.clone() for k, v in tr.model.state_dict().items()}
    at = count[0]
    wait_until(lambda: count[0] > at + 20)
    tr.stop()
    th.join(5)
    assert all(torch.equal(frozen[k], v) for k, v in tr.model.state_dict().items())


def _walk(value, path: str = "snapshot") -> None:
    """Snapshots cross threads: numpy arrays and plain Python values only, never tensors."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), path
            _walk(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _walk(v, f"{path}[{i}]")
    elif isinstance(value, np.ndarray):
        assert value.dtype != object, path
    else:
        assert value is None or isinstance(value, (bool, int, float, str, np.generic)), (path, type(value))


def test_snapshots_come_at_a_bounded_rate_and_carry_numpy_only():
    spec = mlp_spec(DatasetSpec("xor", {"n_points": 400}), epochs=100000, batch_size=8)
    snaps: list[Snapshot] = []
    probe = lambda model: {"w": model.layers["dense1"].weight.detach().cpu().numpy(), "scale": 2.0,  # noqa: E731
                           "maps": [np.zeros((2, 2))]}
    tr = Trainer(spec, on_snapshot=snaps.append, probe=probe, max_rate=30)
    th, out = start(tr)
    time.sleep(1.0)
    tr.stop()
    th.join(5)
    running = [s for s in snaps if s.state == "running"]
    assert len(snaps) <= 37 and len(running) <= 35, len(snaps)
    assert tr.step > 3 * len(snaps)  # many steps per snapshot, not one snapshot per step
    gaps = np.diff([s.elapsed for s in running])
    assert (gaps > 1 / 30 * 0.8).all()
    for s in snaps:
        for f in dataclasses.fields(s):
            _walk(getattr(s, f.name), f.name)
        assert set(s.history) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "val_mae"}
    assert snaps[-1].extras["w"].shape == (6, 2) and len(snaps[-1].history["val_acc"]) == tr.epoch


# ---- divergence -----------------------------------------------------------------------------------

def test_absurd_lr_diverges_keeping_the_last_finite_weights():
    snaps: list[Snapshot] = []
    tr = Trainer(mlp_spec(loss="mse", lr=1e6, epochs=5), on_snapshot=snaps.append)
    start_weights = {k: v.clone() for k, v in tr.model.state_dict().items()}
    result = tr.run()
    assert snaps[-1].state == "diverged" and "lower the learning rate" in result.stopped_reason
    assert snaps[-1].message == result.stopped_reason and result.epochs == 0
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())
    assert all(torch.equal(start_weights[k], v) for k, v in tr.model.state_dict().items())


def test_divergence_mid_run_restores_the_end_of_the_last_good_epoch():
    spec = mlp_spec(loss="mse", lr=0.05, epochs=6)
    good = Trainer(spec, epochs=2)
    good.run()
    tr = Trainer(spec)
    real_end_epoch = tr._end_epoch

    def end_epoch(*args):
        real_end_epoch(*args)
        if tr.epoch == 2:
            tr.set_hyper(lr=1e6)  # the user drags the LR slider all the way up
    tr._end_epoch = end_epoch
    result = tr.run()
    assert tr.stop_reason.startswith("the loss became") and "lower the learning rate" in tr.stop_reason
    assert result.epochs == 2 == len(result.history["train_loss"])
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())
    want = good.model.state_dict()
    assert all(torch.equal(want[k], v) for k, v in tr.model.state_dict().items())


def test_a_poisoned_dataset_diverges_instead_of_training_on_nan():
    spec = mlp_spec(optimizer="adam", lr=0.01, epochs=3)
    data = datasets.load(spec.dataset)
    data.x_train[3, 1] = np.nan
    tr = Trainer(spec, data)
    first = {k: v.clone() for k, v in tr.model.state_dict().items()}
    result = tr.run()
    assert "lower the learning rate" in result.stopped_reason and result.epochs == 0
    assert all(torch.equal(first[k], v) for k, v in tr.model.state_dict().items())


def test_an_empty_validation_set_is_not_divergence():
    spec = mlp_spec(epochs=2)
    d = datasets.load(spec.dataset)
    data = dataclasses.replace(d, x_val=d.x_val[:0], y_val=d.y_val[:0])
    result = Trainer(spec, data).run()
    assert result.stopped_reason == "finished all epochs" and math.isnan(result.val_loss)


# ---- it learns ---------------------------------------------------------------------------------

def test_xor_trains_to_99_percent_validation_accuracy():
    spec = mlp_spec(DatasetSpec("xor", {"n_points": 400, "noise": 0.1, "seed": 2}), hidden=8, optimizer="adam", lr=0.03,
                    batch_size=32, epochs=60, seed=0)
    tr = Trainer(spec)
    result = tr.run()
    assert result.val_accuracy >= 0.99
    with torch.no_grad():  # recount by hand
        pred = tr.model(torch.as_tensor(tr.data.x_val)).argmax(1).numpy()
    assert (pred == tr.data.y_val).mean() == pytest.approx(result.val_accuracy)
