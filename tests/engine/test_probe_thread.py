"""The views' arrays computed beside training (engine.probe_thread) show the model of their snapshot."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from engine import datasets, probes
from engine import protocol as P
from engine.analysis import Ablations
from engine.build import build
from engine.probe_thread import ProbeThread
from engine.spec import load
from engine.trainer import Trainer


@pytest.fixture(scope="module")
def xor():
    spec = load("assets/examples/xor.json")
    spec.training.device = "cpu"
    return spec, datasets.load(spec.dataset)


@pytest.mark.parametrize("fused", [False, True])
def test_each_snapshot_shows_the_weights_of_its_own_step(xor, fused):
    """While training runs on, a snapshot's decision grid is that of the weights at its step."""
    spec, data = xor
    spec = spec.copy()
    spec.training.epochs = 300 if fused else 6  # the fused path is fast: more epochs for a few snapshots
    weights_at: dict[int, dict] = {}
    got: list[P.Snapshot] = []
    threads: set[str] = set()

    def observe(_epoch):  # the training thread, right when a snapshot is taken
        weights_at[trainer.step] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    def deliver(snap):
        threads.add(threading.current_thread().name)
        got.append(snap)

    prober = probes.Prober(data, spec.training.loss, {"neurons": False})
    trainer = Trainer(spec, data, probe=prober, on_snapshot=deliver, max_rate=200, probes_beside=True)
    trainer.use_fused = fused
    trainer.on_report = observe
    prober.budget = 0.9999  # recompute at every snapshot (by default a part is refreshed under a time budget)
    trainer.run()
    running = [s for s in got if s.state == "running" and "boundary" in s.extras]
    assert len(running) >= 3 and "probes" in threads
    assert got[-1].state == "finished" and [s.step for s in got] == sorted(s.step for s in got)
    reference = build(spec, data.info)
    for snap in running[-3:]:
        reference.load_state_dict(weights_at[snap.step])
        want = probes.decision_grid(reference, spec.training.loss, snap.extras["boundary_extent"], 100)
        np.testing.assert_allclose(snap.extras["boundary"], want, atol=1e-6)
    # the last report is computed on the final model, after every earlier one was delivered
    reference.load_state_dict(trainer.model.state_dict())
    final = probes.decision_grid(reference, spec.training.loss, got[-1].extras["boundary_extent"], 100)
    np.testing.assert_allclose(got[-1].extras["boundary"], final, atol=1e-6)


def test_the_copy_has_the_gradients_buffers_and_switched_off_units(xor):
    spec, data = xor
    model = build(spec, data.info)
    x = torch.as_tensor(data.x_train[:32])
    model(x).sum().backward()
    hidden = next(lid for lid in model.order if model.kinds.get(lid) == "Activation")
    ablations = Ablations()
    ablations.toggle(model, ("unit", hidden, 0), on=False)
    seen: dict = {}
    done = threading.Event()

    def probe(shadow):
        seen["out"] = shadow.forward_all(x)[hidden].detach().clone()
        seen["grads"] = [p.grad.clone() for p in shadow.parameters()]
        seen["same_object"] = shadow is model
        return {}

    pt = ProbeThread(probe, lambda snap: done.set())
    pt.submit(model, P.Snapshot("running", 0, 0, 1, 1, *[0.0] * 7, history={}))
    assert done.wait(10)
    pt.close()
    assert not seen["same_object"]
    assert torch.all(seen["out"][:, 0] == 0)  # the switched-off unit is off in the copy too
    for g_copy, p in zip(seen["grads"], model.parameters(), strict=True):
        assert torch.equal(g_copy, p.grad)


def test_unchanged_arrays_are_sent_once_and_restored_by_the_receiver():
    big = np.arange(10.0)
    first = P.Snapshot("running", 0, 1, 1, 1, *[0.0] * 7, history={}, extras={"boundary": big, "pred": 1})
    second = P.Snapshot("running", 0, 2, 1, 1, *[0.0] * 7, history={}, extras={"pred": 2}, same=("boundary",))
    received = P.merge_unchanged(first, None).extras
    again = P.Snapshot("running", 0, 3, 1, 1, *[0.0] * 7, history={}, extras={"boundary": big, "pred": 3})
    assert P.leave_out_unchanged(again, {}).same == ()  # nothing sent before: nothing left out
    slim = P.leave_out_unchanged(again, first.extras)
    assert slim.same == ("boundary",) and "boundary" not in slim.extras and slim.extras["pred"] == 3
    merged = P.merge_unchanged(second, received)
    assert merged.extras["boundary"] is big and merged.extras["pred"] == 2 and merged.same == ()


def test_a_snapshot_handed_over_after_close_does_not_block_the_run():
    """A run closed while it trains on (the worker's CloseRun) ends its probe thread; a running snapshot
    handed over after that left the thread "busy" forever, and the run's final report, which waits for
    it, blocked the training thread (with its model and data) for the life of the worker."""
    delivered = []
    pt = ProbeThread(lambda model: {"x": 1}, delivered.append)
    model = torch.nn.Linear(2, 1)
    pt.close()
    pt._thread.join(5)
    assert not pt._thread.is_alive()
    pt.submit(model, "a running snapshot")
    assert pt.wait_idle(5), "the final report would wait forever"
    assert delivered == []
