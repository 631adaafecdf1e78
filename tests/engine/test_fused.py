"""engine.fused: the fused path gives the eager trainer's results (torch autograd and torch.optim are
the reference) to float rounding, keeps the module's weights and gradients current for snapshots,
probes and diagnostics, and keeps Pause/Step/Stop to one batch."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import torch

from engine import datasets
from engine import spec as S
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec, TrainingSpec
from engine.trainer import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def chain_spec(dataset: DatasetSpec, layers: list[tuple[str, dict]], **training) -> Spec:
    lays = [LayerSpec("in1", "Input")] + [LayerSpec(f"l{i}", kind, params) for i, (kind, params) in enumerate(layers)]
    lays.append(LayerSpec("out1", "Output"))
    t = dict(optimizer="sgd", lr=0.1, momentum=0.0, batch_size=16, epochs=3, seed=3, device="cpu")
    t.update(training)
    return Spec(name="t", dataset=dataset, layers=lays, training=TrainingSpec(**t),
                edges=[EdgeSpec(a.id, b.id) for a, b in zip(lays, lays[1:], strict=False)])


XOR = DatasetSpec("xor", {"n_points": 120, "val_fraction": 0.25, "seed": 1})
GAUSS3 = DatasetSpec("gaussians", {"n_points": 150, "classes": 3, "val_fraction": 0.2, "seed": 2})
PLANE = DatasetSpec("reg_plane", {"n_points": 120, "val_fraction": 0.25, "seed": 4})
SINE = DatasetSpec("fit_sine", {"n_points": 100, "val_fraction": 0.2, "seed": 5})
TANH = [("Dense", {"units": 5}), ("Activation", {"function": "tanh"})]

CASES = {
    "mse-binary-sgd": (XOR, TANH, dict(loss="mse", lr=0.2)),
    "cross-entropy-adam-3-classes": (GAUSS3, TANH, dict(loss="cross_entropy", optimizer="adam", lr=0.02)),
    "bce-adamw-decay": (XOR, TANH, dict(loss="bce", optimizer="adamw", lr=0.03, weight_decay=0.05)),
    "adam-decay-exponential-schedule": (XOR, TANH, dict(optimizer="adam", lr=0.03, weight_decay=0.01,
                                                        lr_schedule="exponential", gamma=0.7)),
    "sgd-nesterov-decay-l1-l2-clip": (GAUSS3, TANH, dict(loss="mse", momentum=0.8, nesterov=True, weight_decay=0.01,
                                                         l1=0.002, l2=0.01, grad_clip=0.3, lr=0.3)),
    "sgd-momentum-step-schedule-odd-batches": (XOR, TANH, dict(momentum=0.9, lr=0.05, batch_size=7, lr_schedule="step",
                                                               step_size=1, gamma=0.5)),
    "mae-regression": (PLANE, TANH, dict(loss="mae", optimizer="adam", lr=0.02)),
    "huber-regression": (SINE, TANH, dict(loss="huber", momentum=0.5, lr=0.1)),
    "mse-regression-clip": (SINE, TANH, dict(loss="mse", lr=0.1, grad_clip=0.1)),
    "every-activation-no-bias-dropout-0": (XOR, [
        ("Dense", {"units": 6, "bias": False}), ("Activation", {"function": "relu"}),
        ("Dense", {"units": 5}), ("Activation", {"function": "leaky_relu", "slope": 0.1}),
        ("Dropout", {"rate": 0.0}),
        ("Dense", {"units": 4}), ("Activation", {"function": "sigmoid"}),
        ("Dense", {"units": 3}), ("Activation", {"function": "linear"})], dict(optimizer="adam", lr=0.02)),
}


def trained(spec: Spec, data, fused: bool, **kw) -> Trainer:
    tr = Trainer(spec, data, **kw)
    tr.use_fused = fused
    if fused:
        assert tr._fused_runner() is not None, "the design should take the fused path"
    tr.run()
    return tr


def assert_close_runs(a: Trainer, b: Trainer, rtol=1e-4, atol=2e-5) -> None:
    assert a.step == b.step and a.epoch == b.epoch and a.stop_reason == b.stop_reason
    sa, sb = a.model.state_dict(), b.model.state_dict()
    for k in sa:
        assert torch.allclose(sa[k], sb[k], rtol=rtol, atol=atol), (k, (sa[k] - sb[k]).abs().max())
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "val_mae", "lr"):
        np.testing.assert_allclose(a.history[key], b.history[key], rtol=rtol, atol=atol, err_msg=key)


@pytest.fixture(params=["numpy", "torch"])
def backend(request, monkeypatch):
    """The CPU's numpy code and the torch code a GPU runs (here on the CPU)."""
    from engine.fused import Fused

    monkeypatch.setattr(Fused, "numpy_on_cpu", request.param == "numpy")
    return request.param


@pytest.mark.parametrize("case", list(CASES))
def test_fused_training_equals_eager_torch(case, backend):
    ds, layers, settings = CASES[case]
    spec = chain_spec(ds, layers, **settings)
    data = datasets.load(spec.dataset)
    eager, fused = trained(spec, data, False), trained(spec, data, True)
    assert_close_runs(eager, fused)
    start = Trainer(spec, data).model.state_dict()
    assert any(not torch.equal(start[k], v) for k, v in fused.model.state_dict().items())  # it really trained


def test_the_playground_example_takes_the_fused_path_and_equals_eager():
    spec = S.load(os.path.join(ROOT, "assets", "examples", "playground_default.json"))
    data = datasets.load(spec.dataset)
    assert_close_runs(trained(spec, data, False, epochs=4), trained(spec, data, True, epochs=4))


@pytest.mark.parametrize("change", ["dropout", "rmsprop", "batchnorm", "step-hook", "deeper-than-playground",
                                    "activation-first"])
def test_designs_it_cannot_match_stay_eager_and_still_train(change):
    layers = list(TANH)
    settings = {}
    if change == "dropout":
        layers.append(("Dropout", {"rate": 0.3}))
    elif change == "batchnorm":
        layers.insert(1, ("BatchNorm", {}))
    elif change == "rmsprop":
        settings["optimizer"] = "rmsprop"
    elif change == "deeper-than-playground":  # 7 hidden Dense layers + the head: more than TensorFlow Playground's 6
        layers = TANH * 7
    elif change == "activation-first":  # Input -> Activation -> Output (found by NP_SLOW=3000 of test_whole_system)
        layers = [TANH[1]]
    spec = chain_spec(XOR, layers, **settings)
    tr = Trainer(spec)
    steps = [0]
    if change == "step-hook":  # someone counts optimizer.step(): it must see real steps
        tr.optimizer.register_step_post_hook(lambda *a: steps.__setitem__(0, steps[0] + 1))
    assert tr._fused_runner() is None
    result = tr.run()
    assert result.stopped_reason == "finished all epochs" and np.isfinite(result.train_loss)
    if change == "step-hook":
        assert steps[0] == tr.step > 0


class Recorder:
    """A probe as engine.probes.Prober is called: the model at every snapshot, before_step before reported steps."""

    def __init__(self):
        self.snaps: list[tuple] = []
        self.before: list[int] = []

    def before_step(self, model, step: int) -> None:
        self.before.append(step)

    def __call__(self, model, force: bool = False) -> dict:
        grads = {k: (p.grad.clone() if p.grad is not None else None) for k, p in model.named_parameters()}
        with torch.no_grad():
            out = model(torch.linspace(-1, 1, 10).reshape(5, 2)).clone()
        self.snaps.append(({k: v.clone() for k, v in model.state_dict().items()}, grads, out))
        return {}


def test_snapshots_probes_and_diagnostics_see_the_current_weights_and_gradients(backend):
    """Reporting after every step (max_rate 0): at each snapshot the module's weights, the step's gradients
    in p.grad and a forward pass through the module equal the eager run's."""
    spec = chain_spec(XOR, TANH, optimizer="adam", lr=0.05, epochs=2, l2=0.01, grad_clip=0.5)
    data = datasets.load(spec.dataset)
    runs = []
    for fused in (False, True):
        rec = Recorder()
        trained(spec, data, fused, probe=rec, max_rate=0.0, on_snapshot=lambda s: None)
        runs.append(rec)
    eager, fused = runs
    assert fused.before == eager.before == list(range(1, len(eager.before) + 1))
    assert len(fused.snaps) == len(eager.snaps) > 10
    for (we, ge, oe), (wf, gf, of) in zip(eager.snaps, fused.snaps, strict=True):
        for k in we:
            assert torch.allclose(we[k], wf[k], rtol=1e-4, atol=2e-5), k
        for k in ge:
            if ge[k] is None:  # before the first step
                assert gf[k] is None
            else:
                assert torch.allclose(ge[k], gf[k], rtol=1e-3, atol=1e-5), k
        assert torch.allclose(oe, of, rtol=1e-4, atol=2e-5)


def test_switching_between_fused_and_eager_keeps_the_optimiser_state(backend):
    """Two epochs fused, then two eager (torch.optim reads the moments the fused steps left) = four eager."""
    for settings in (dict(optimizer="adam", lr=0.03), dict(momentum=0.9, lr=0.05)):
        spec = chain_spec(XOR, TANH, epochs=4, **settings)
        data = datasets.load(spec.dataset)
        mixed = Trainer(spec, data, epochs=2)
        mixed.run()
        mixed.spec.training.epochs = 4
        mixed.use_fused = False
        mixed.run()
        assert_close_runs(trained(spec, data, False), mixed)


def test_divergence_is_caught_and_the_last_good_weights_are_kept(backend):
    spec = chain_spec(XOR, TANH, lr=300.0, loss="mse", epochs=20)
    data = datasets.load(spec.dataset)
    tr = Trainer(spec, data)
    start = {k: v.clone() for k, v in tr.model.state_dict().items()}
    result = tr.run()
    eager = Trainer(spec, data)
    eager.use_fused = False
    eager.run()
    assert tr.ended == eager.ended == "diverged" and "the loss became" in result.stopped_reason
    assert result.stopped_reason == eager.stop_reason and tr.step == eager.step  # the same step, the same message
    good = tr._good_state
    assert all(torch.isfinite(v).all() for v in tr.model.state_dict().values())
    assert all(torch.equal(good[k], v) for k, v in tr.model.state_dict().items())
    assert tr.epoch > 0 or all(torch.equal(start[k], v) for k, v in tr.model.state_dict().items())


def wait_until(cond, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_pause_step_and_stop_act_within_one_batch_on_the_fused_path():
    spec = chain_spec(DatasetSpec("xor", {"n_points": 400, "seed": 1}), TANH, optimizer="adam", lr=0.02,
                      epochs=100000, batch_size=10)
    data = datasets.load(spec.dataset)
    snaps: list = []
    pause_at: list[int] = []
    tr = Trainer(spec, data, on_snapshot=snaps.append)
    assert tr._fused_runner() is not None
    tr.pause()
    out: list = []
    th = threading.Thread(target=lambda: out.append(tr.run()), daemon=True)
    th.start()
    wait_until(lambda: snaps and snaps[-1].state == "paused")
    assert tr.step == 0
    tr.step_once()
    wait_until(lambda: snaps[-1].step == 1 and snaps[-1].state == "paused")
    time.sleep(0.1)
    assert tr.step == 1
    # the weights after exactly one batch: those of an eager run of one step
    ref = Trainer(spec, data)
    ref.use_fused = False
    ref.pause()
    ref.step_once()
    th_ref = threading.Thread(target=ref.run, daemon=True)
    th_ref.start()
    wait_until(lambda: ref.step == 1 and ref.paused and ref._last_emit == (1, "paused"))
    done = threading.Event()
    got: dict = {}
    tr.call_soon(lambda: (got.update({k: v.clone() for k, v in tr.model.state_dict().items()}), done.set()))
    assert done.wait(5)
    for k, v in ref.model.state_dict().items():
        assert torch.allclose(v, got[k], rtol=1e-5, atol=1e-6), k
    ref.stop()
    th_ref.join(5)
    for _ in range(3):  # quick clicks: one batch each
        tr.step_once()
    wait_until(lambda: tr.step >= 4 and snaps[-1].state == "paused")
    time.sleep(0.1)
    assert tr.step == 4 == snaps[-1].step
    # free running, paused from the training thread itself (in a snapshot): no batch runs after it
    tr.on_snapshot = lambda s: (snaps.append(s), s.step > 200 and not pause_at and (pause_at.append(s.step), tr.pause()))
    tr.resume()
    wait_until(lambda: pause_at and snaps[-1].state == "paused")
    time.sleep(0.1)
    assert tr.step == pause_at[0] == snaps[-1].step
    tr.on_snapshot = snaps.append
    tr.resume()
    wait_until(lambda: tr.step > pause_at[0] + 50)
    tr.stop()
    at_stop = tr.step
    th.join(5)
    assert not th.is_alive() and out[0].stopped_reason == "stopped by the user"
    assert tr.step - at_stop <= 1 and snaps[-1].state == "stopped"


# ---- the speed control (Trainer.set_pace), on both paths --------------------------------------

@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
def test_a_speed_cap_holds_training_to_that_many_epochs_per_second(fused):
    spec = chain_spec(XOR, TANH, epochs=100000)
    tr = Trainer(spec)
    tr.use_fused = fused
    tr.set_pace(10.0)  # 10 epochs/s = 60 steps/s here (6 batches an epoch)
    t0 = time.perf_counter()
    th = threading.Thread(target=tr.run, daemon=True)
    th.start()
    wait_until(lambda: tr.epoch >= 4)
    steps, elapsed = tr.step, time.perf_counter() - t0
    tr.set_pace(0.0)  # full speed again: the cap goes at once
    wait_until(lambda: tr.epoch >= 60)
    tr.stop()
    th.join(5)
    assert tr.steps_per_epoch == 6
    assert steps <= 60 * elapsed + 2, f"{steps} steps in {elapsed:.2f} s is over the cap"


@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
def test_slow_motion_reports_every_single_step(fused):
    snaps: list = []
    tr = Trainer(chain_spec(XOR, TANH, epochs=100000), on_snapshot=snaps.append, max_rate=30.0)
    tr.use_fused = fused
    tr.set_pace(slow_motion=True)
    th = threading.Thread(target=tr.run, daemon=True)
    th.start()
    wait_until(lambda: len(snaps) >= 12)
    tr.stop()
    th.join(5)
    steps = [s.step for s in snaps if s.state == "running"]
    assert len(steps) >= 10 and np.all(np.diff(steps) == 1), steps


def test_a_run_over_before_its_first_report_interval_still_measures_its_last_step():
    """The health badges describe the end of a run, not its first step, even when it all took < 1 s."""
    rec = Recorder()
    tr = trained(chain_spec(XOR, TANH, optimizer="adam", lr=0.03, epochs=5), None, True, probe=rec, max_rate=0.2,
                 on_snapshot=lambda s: None)
    assert rec.before[0] == 1 and rec.before[-1] == tr.step == 5 * tr.steps_per_epoch
