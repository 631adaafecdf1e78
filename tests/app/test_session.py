"""The run channel as the GUI uses it: the worker process (the default path) and the same
worker in a thread. Commands, events, several runs, probes while paused, a dying worker, closing."""
import os
import signal
import threading
import time

import pytest

from app.session import RunSession, wait_until
from engine import protocol as P
from engine import spec as S
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec


def xor_spec(epochs=200, lr=0.03, units=8) -> Spec:
    s = Spec(name="xor", dataset=DatasetSpec("xor", {"n_points": 400, "noise": 0.1, "val_fraction": 0.25}))
    s.layers = [LayerSpec("input", "Input"), LayerSpec("dense1", "Dense", {"units": units}),
                LayerSpec("act1", "Activation", {"function": "tanh"}), LayerSpec("output", "Output")]
    s.edges = [EdgeSpec("input", "dense1"), EdgeSpec("dense1", "act1"), EdgeSpec("act1", "output")]
    s.training.lr = lr
    s.training.epochs = epochs
    s.training.batch_size = 16
    s.training.device = "cpu"
    return s


class Recorder:
    """Everything a session emitted, per run."""

    def __init__(self, session: RunSession):
        self.snaps: dict[int, list] = {}
        self.threads: set = set()
        self.stamps: list[float] = []
        self.ended: dict[int, P.RunEnded] = {}
        self.failed: dict[int, str] = {}
        self.started: dict[int, P.RunStarted] = {}
        session.snapshot_ready.connect(self._on_snapshot)
        session.run_ended.connect(lambda ev: self.ended.__setitem__(ev.run_id, ev))
        session.run_failed.connect(lambda rid, msg: self.failed.__setitem__(rid, msg))
        session.run_started.connect(lambda ev: self.started.__setitem__(ev.run_id, ev))

    def _on_snapshot(self, run_id, snap):
        self.snaps.setdefault(run_id, []).append(snap)
        self.threads.add(threading.current_thread())
        self.stamps.append(time.perf_counter())

    def last(self, run_id):
        return self.snaps.get(run_id, [None])[-1]

    def step(self, run_id) -> int:
        snap = self.last(run_id)
        return -1 if snap is None else snap.step


@pytest.fixture(params=["process", "thread"])
def session(request, qtbot):
    s = RunSession(in_thread=request.param == "thread")
    yield s
    s.close()


@pytest.fixture
def process_session(qtbot):
    s = RunSession(in_thread=False)
    yield s
    s.close()


def _gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_snapshots_arrive_in_the_gui_thread_at_a_bounded_rate(session, qtbot):
    rec = Recorder(session)
    rid = session.start_run(S.dumps(xor_spec(epochs=150)), max_rate=10.0)
    assert wait_until(lambda: rid in rec.ended, 90)
    assert rec.threads == {threading.main_thread()}
    snap = rec.ended[rid].snapshot
    assert snap.state == "finished" and snap.val_acc >= 0.97
    duration = rec.stamps[-1] - rec.stamps[0]
    assert snap.step > len(rec.stamps) * 5, "one message per step would flood the GUI"
    assert len(rec.stamps) <= 10 * duration + 5
    assert rec.started[rid].device == "CPU"
    assert rec.started[rid].data.y_val.shape == (100,), "the views get the labels from the worker"


def test_commands_sent_before_the_trainer_exists_are_applied(process_session, qtbot):
    s = process_session
    rec = Recorder(s)
    rid = s.start_run(S.dumps(xor_spec(epochs=100000)))
    # sent at once: the worker may still be importing torch, the run's data not yet loaded
    s.send(P.SetHyper(rid, {"lr": 0.0007}))
    s.control(rid, "pause")
    assert rid not in rec.started
    assert wait_until(lambda: rec.last(rid) is not None and rec.last(rid).state == "paused", 60)
    assert abs(rec.last(rid).lr - 0.0007) < 1e-12
    step = rec.step(rid)
    time.sleep(0.3)
    s.send(P.Refresh(rid))
    assert wait_until(lambda: len(rec.snaps[rid]) >= 2 and rec.snaps[rid][-1] is not rec.snaps[rid][-2], 5)
    assert rec.step(rid) == step, "a paused run does not train"
    s.control(rid, "stop")
    assert wait_until(lambda: rid in rec.ended, 10)


def test_commands_for_an_older_run_are_dropped(process_session, qtbot):
    s = process_session
    rec = Recorder(s)
    old = s.start_run(S.dumps(xor_spec(epochs=100000)))
    assert wait_until(lambda: rec.step(old) > 0, 60)
    s.close_run(old)
    new = s.start_run(S.dumps(xor_spec(epochs=100000, lr=0.05)))
    s.control(old, "stop")  # a Stop that crossed the start of the next run
    s.send(P.SetHyper(old, {"lr": 9.0}))
    assert wait_until(lambda: rec.step(new) > 50, 30)
    time.sleep(0.3)
    assert wait_until(lambda: rec.step(new) > 100, 30)
    assert rec.last(new).state == "running" and rec.last(new).lr == pytest.approx(0.05)
    n_old = len(rec.snaps[old])
    time.sleep(0.3)
    wait_until(lambda: False, 0.2)
    assert len(rec.snaps[old]) == n_old, "a closed run's snapshots are not delivered"
    s.control(new, "stop")
    assert wait_until(lambda: new in rec.ended, 10)


def test_a_probe_request_while_paused_is_answered(session, qtbot):
    rec = Recorder(session)
    rid = session.start_run(S.dumps(xor_spec(epochs=100000)), view_options={"boundary": True, "grid_res": 100})
    assert wait_until(lambda: rec.step(rid) > 20, 60)
    session.control(rid, "pause")
    assert wait_until(lambda: rec.last(rid).state == "paused", 10)
    assert rec.last(rid).extras["boundary"].shape[:2] == (100, 100)
    session.send(P.SetViewOptions(rid, {"boundary": True, "grid_res": 24}))
    assert wait_until(lambda: rec.last(rid).extras.get("boundary", []).shape[:2] == (24, 24), 10)
    assert rec.last(rid).state == "paused"
    session.control(rid, "stop")
    assert wait_until(lambda: rid in rec.ended, 10)
    # a finished run still answers, and its weights can be fetched
    session.send(P.SetViewOptions(rid, {"boundary": True, "grid_res": 12}))
    assert wait_until(lambda: rec.last(rid).extras.get("boundary", []).shape[:2] == (12, 12), 10)
    weights = session.fetch_weights(rid)
    assert weights["layers.dense1.weight"].shape == (8, 2)


def test_a_second_run_does_not_disturb_the_first(process_session, qtbot):
    s = process_session
    rec = Recorder(s)
    first = s.start_run(S.dumps(xor_spec(epochs=100000, lr=0.02)))
    assert wait_until(lambda: rec.step(first) > 10, 60)
    second = s.start_run(S.dumps(xor_spec(epochs=40, units=3)))
    assert wait_until(lambda: second in rec.ended, 90)
    assert rec.ended[second].snapshot.epoch == 40
    before = rec.step(first)
    assert wait_until(lambda: rec.step(first) > before + 20, 20), "the first run kept training"
    assert rec.last(first).state == "running" and rec.last(first).lr == pytest.approx(0.02)
    assert first not in rec.ended and first not in rec.failed
    assert s.fetch_weights(first)["layers.dense1.weight"].shape == (8, 2)
    assert s.fetch_weights(second)["layers.dense1.weight"].shape == (3, 2)
    s.control(first, "stop")
    assert wait_until(lambda: first in rec.ended, 10)
    assert rec.ended[first].snapshot.state == "stopped"


def test_a_worker_that_dies_mid_run_gives_a_message_and_train_works_again(process_session, qtbot):
    s = process_session
    rec = Recorder(s)
    rid = s.start_run(S.dumps(xor_spec(epochs=100000)))
    assert wait_until(lambda: rec.step(rid) > 10, 60)
    pid = s.pid
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: rid in rec.failed, 10)
    assert "ended unexpectedly" in rec.failed[rid] and "Train" in rec.failed[rid]
    again = s.start_run(S.dumps(xor_spec(epochs=5)))
    assert wait_until(lambda: again in rec.ended, 90)
    assert s.pid != pid and rec.ended[again].snapshot.epoch == 5


def test_a_design_the_worker_cannot_train_fails_with_the_reason(session, qtbot):
    rec = Recorder(session)
    spec = xor_spec()
    spec.training.device = "cuda" if not _cuda() else "nonsense"
    rid = session.start_run(S.dumps(spec))
    assert wait_until(lambda: rid in rec.failed, 60)
    assert "training.device" in rec.failed[rid]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_closing_ends_the_worker_process_at_once(process_session, qtbot):
    s = process_session
    rec = Recorder(s)
    rid = s.start_run(S.dumps(xor_spec(epochs=100000)))
    assert wait_until(lambda: rec.step(rid) > 10, 60)
    pid = s.pid
    t0 = time.perf_counter()
    s.close()
    assert time.perf_counter() - t0 < 1.0
    assert wait_until(lambda: _gone(pid), 2), "the worker process is gone"


def test_the_worker_process_ends_cleanly_when_told_to_quit_mid_training(process_session, qtbot):
    from tests.conftest import EXAMPLES

    s = process_session
    rec = Recorder(s)
    spec = S.load(os.path.join(EXAMPLES, "digits_cnn.json"))  # a CNN: its run thread is inside torch at Quit
    spec.training.epochs, spec.training.device = 1000, "cpu"
    rid = s.start_run(S.dumps(spec))
    assert wait_until(lambda: rec.step(rid) > 10, 90)
    proc = s._proc
    s.send(P.Quit())
    proc.join(30)
    assert proc.exitcode == 0, f"the trainer process ended with {proc.exitcode} (-6: aborted in its teardown)"


def test_closing_while_the_worker_imports_torch_is_instant(qtbot):
    s = RunSession(in_thread=False)
    s.start_worker()
    pid = s.pid
    time.sleep(0.2)  # the spawned interpreter is starting / importing torch
    assert not s.ready
    t0 = time.perf_counter()
    s.close()
    assert time.perf_counter() - t0 < 1.0
    assert wait_until(lambda: _gone(pid), 2)


def _snap(step, state="running"):
    nan = float("nan")
    return P.Snapshot(state, 0, step, 1, 1, nan, nan, nan, nan, 0.1, 0.0, 0.0, {})


def test_events_keep_their_order_and_only_the_newest_waiting_snapshot_is_delivered(qtbot):
    s = RunSession(in_thread=True)
    s.open.update({1, 2})
    s.training.update({1, 2})
    seen = []
    s.snapshot_ready.connect(lambda rid, snap: seen.append(("snap", rid, snap.step)))
    s.run_started.connect(lambda ev: seen.append(("started", ev.run_id)))
    s.run_ended.connect(lambda ev: seen.append(("ended", ev.run_id)))
    data = P.RunData(info=None, y_train=None, y_val=None)
    result = P.Result(1, 1, 0.0, 1.0, 0.0, 1.0, 0.1, "CPU", "finished all epochs", {})

    def reader():  # as the reader thread receives them, while the GUI is busy
        for ev in (P.SnapshotReady(1, _snap(5)), P.RunStarted(2, "CPU", data), P.SnapshotReady(2, _snap(1)),
                   P.SnapshotReady(1, _snap(6)), P.SnapshotReady(2, _snap(2)), P.RunEnded(1, result, _snap(7, "finished")),
                   P.SnapshotReady(1, _snap(8, "finished"))):
            s._post(ev)

    t = threading.Thread(target=reader)
    t.start()
    t.join()
    assert wait_until(lambda: len(seen) >= 5, 5)
    wait_until(lambda: False, 0.1)
    assert seen == [("snap", 1, 6), ("started", 2), ("snap", 2, 2), ("ended", 1), ("snap", 1, 8)], \
        "a run's data comes before its snapshots, a waiting snapshot is replaced by the newest, nothing overtakes an event"
