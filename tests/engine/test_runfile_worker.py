"""A saved run through the worker (engine.worker): FetchRunState answers with numpy and JSON only (the
GUI holds no torch), and StartRun.run_state starts the run paused exactly where it was saved - no
batch trained - and Resume goes on as an uninterrupted run of the same seed (the reference)."""

import numpy as np
import torch

from engine import protocol as P
from engine import spec as S
from engine.trainer import Trainer
from tests.engine.harness import events_until, thread_worker, xor_spec


def leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from leaves(v)
    else:
        yield value


def test_saved_state_restarts_paused_and_goes_on_as_if_never_stopped():
    conn = thread_worker()
    try:
        conn.send(P.StartRun(1, S.dumps(xor_spec(4)), "cpu"))
        events_until(conn, lambda e: isinstance(e, P.RunEnded) and e.run_id == 1)
        conn.send(P.FetchRunState(1))
        got = events_until(conn, lambda e: isinstance(e, P.RunState))[-1]
        assert isinstance(got, P.RunState) and not got.error and got.state["epoch"] == 4
        assert not any(torch.is_tensor(v) for v in leaves(got.state))  # numpy, numbers and strings only
        assert all(isinstance(v, (np.ndarray, int, float, str, bool, type(None))) for v in leaves(got.state))

        state = got.state
        conn.send(P.StartRun(2, S.dumps(xor_spec(9)), "cpu", initial_state=state["weights"], run_state=state))
        evs = events_until(conn, lambda e: isinstance(e, P.SnapshotReady) and e.run_id == 2)
        snap = evs[-1].snapshot
        assert snap.state == "paused" and snap.epoch == 4 and snap.step == state["step"]  # no batch trained
        np.testing.assert_array_equal(snap.history["train_loss"], state["history"]["train_loss"])
        conn.send(P.Control(2, "resume"))
        ended = events_until(conn, lambda e: isinstance(e, P.RunEnded) and e.run_id == 2)[-1]
        assert isinstance(ended, P.RunEnded) and ended.result.epochs == 9
    finally:
        conn.send(P.Quit())
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = Trainer(xor_spec(9), device="cpu", max_rate=0)
        ref.run()
    finally:
        torch.set_num_threads(old)
    for k in ("train_loss", "val_loss", "train_acc", "val_acc"):
        np.testing.assert_allclose(ended.result.history[k], ref.history[k], rtol=1e-5, atol=1e-6, err_msg=k)
