"""The training session: worker thread, bounded snapshot rate, controls, clean shutdown."""
import threading
import time

import numpy as np
import pytest

from app.session import TrainingSession, wait_until
from engine import datasets
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec


def xor_spec(epochs=200, lr=0.03) -> Spec:
    s = Spec(name="xor", dataset=DatasetSpec("xor", {"n_points": 400, "noise": 0.1, "val_fraction": 0.25}))
    s.layers = [LayerSpec("input", "Input"), LayerSpec("dense1", "Dense", {"units": 8}),
                LayerSpec("act1", "Activation", {"function": "tanh"}), LayerSpec("output", "Output")]
    s.edges = [EdgeSpec("input", "dense1"), EdgeSpec("dense1", "act1"), EdgeSpec("act1", "output")]
    s.training.lr = lr
    s.training.epochs = epochs
    s.training.batch_size = 16
    s.training.device = "cpu"  # not "auto" (= cuda on a GPU machine): thresholds and timings are CPU ones
    return s


@pytest.fixture
def session(qtbot):
    s = TrainingSession()
    yield s
    s.shutdown()


def test_snapshots_arrive_in_gui_thread_at_bounded_rate(session, qtbot):
    spec = xor_spec(epochs=150)
    data = datasets.load(spec.dataset)
    threads, stamps = [], []
    session.snapshot_ready.connect(lambda s: (threads.append(threading.current_thread()), stamps.append(time.perf_counter())))
    with qtbot.waitSignal(session.finished, timeout=60000):
        session.start(spec, data)
    assert session.state == "finished"
    assert all(t is threading.main_thread() for t in threads)
    steps = session.last_snapshot.step
    duration = stamps[-1] - stamps[0]
    assert steps > len(stamps) * 5, "one signal per step would flood the GUI"
    # <= ~30/s plus the start/end reports
    assert len(stamps) <= 30 * duration + 5
    assert session.last_snapshot.val_acc >= 0.97


def test_pause_step_and_stop(session, qtbot):
    spec = xor_spec(epochs=100000)
    data = datasets.load(spec.dataset)
    session.start(spec, data)
    assert wait_until(lambda: session.state == "running", 20)
    session.pause()
    assert wait_until(lambda: session.state == "paused", 5)
    time.sleep(0.2)
    wait_until(lambda: False, 0.1)
    step0 = session.last_snapshot.step
    time.sleep(0.2)
    assert session.trainer.step == step0, "paused training must not step"
    session.step()
    assert wait_until(lambda: session.last_snapshot.step == step0 + 1, 5)
    time.sleep(0.2)
    assert session.trainer.step == step0 + 1, "Step runs exactly one batch"
    session.resume()
    assert wait_until(lambda: session.last_snapshot.step > step0 + 5, 5)
    t0 = time.perf_counter()
    session.stop()
    assert wait_until(lambda: not session.running, 5)
    assert time.perf_counter() - t0 < 0.5
    assert session.state == "stopped"


def test_lr_change_applies_while_running(session, qtbot):
    spec = xor_spec(epochs=100000)
    session.start(spec, datasets.load(spec.dataset))
    assert wait_until(lambda: session.state == "running", 20)
    session.set_hyper(lr=0.001)
    assert wait_until(lambda: session.last_snapshot is not None and abs(session.last_snapshot.lr - 0.001) < 1e-12, 5)


def test_divergence_is_reported_not_crashed(session, qtbot):
    spec = xor_spec(epochs=50, lr=1e6)
    spec.training.optimizer = "sgd"
    spec.training.loss = "mse"
    with qtbot.waitSignal(session.finished, timeout=30000):
        session.start(spec, datasets.load(spec.dataset))
    assert session.state == "diverged"
    assert "learning rate" in session.last_snapshot.message
    weights = [p.detach().numpy() for p in session.trainer.model.parameters()]
    assert all(np.isfinite(w).all() for w in weights)


def test_shutdown_during_training_is_prompt(qtbot):
    session = TrainingSession()
    spec = xor_spec(epochs=100000)
    session.start(spec, datasets.load(spec.dataset))
    assert wait_until(lambda: session.state == "running", 20)
    t0 = time.perf_counter()
    assert session.shutdown()
    assert time.perf_counter() - t0 < 1.0
    assert not session.running
