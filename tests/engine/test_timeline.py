"""The training timeline: checkpoints within a memory budget, the views at an old epoch, forks."""

import numpy as np
import torch

from engine import protocol as P
from engine import spec as S
from engine.timeline import LatestOnly, Timeline
from engine.trainer import Trainer
from tests.engine.harness import events_until, thread_worker, xor_spec

MB = 1024 * 1024


def fake_state(epoch: int, mb: float = 1.0) -> dict:
    n = int(mb * MB) // 4
    return {"layers.big.weight": np.full(n, float(epoch), np.float32)}


def test_a_big_model_over_many_epochs_stays_in_budget_keeps_first_latest_and_an_even_spread():
    tl = Timeline(budget=20 * MB)  # twenty 1 MB checkpoints fit
    for epoch in range(0, 1001):
        tl.add(epoch, fake_state(epoch))
        assert tl.nbytes <= 20 * MB, f"over budget after epoch {epoch}: {tl.nbytes / MB:.1f} MB"
        epochs = tl.epochs()
        assert epochs[-1] == epoch, "the latest epoch is always kept"
        assert epochs[0] == 0, "the first epoch is kept"
    epochs = tl.epochs()
    assert len(epochs) >= 10, f"thinning should keep about half the budget or more, kept {len(epochs)}"
    gaps = np.diff(epochs[:-1])  # the latest may sit between grid points
    assert len(set(gaps.tolist())) == 1, f"old checkpoints should be evenly spread, gaps {gaps}"
    assert epochs[-1] - epochs[-2] <= gaps[0]
    # what is kept is what was recorded at that epoch
    for e in epochs:
        assert tl.get(int(e))["layers.big.weight"][0] == float(e)


def test_a_long_run_of_a_small_model_keeps_at_most_max_count_evenly_spread():
    tl = Timeline(max_count=50)
    tiny = {"w": np.zeros(8, np.float32)}
    for epoch in range(0, 5000):
        tl.add(epoch, tiny)
        assert len(tl.epochs()) <= 50
    epochs = tl.epochs()
    assert epochs[0] == 0 and epochs[-1] == 4999 and len(epochs) >= 25
    assert len(set(np.diff(epochs[:-1]).tolist())) == 1


def test_a_checkpoint_bigger_than_the_budget_keeps_only_the_latest():
    tl = Timeline(budget=3 * MB)
    for epoch in range(5):
        tl.add(epoch, fake_state(epoch, mb=2.0))
        assert tl.epochs().tolist() == [epoch] if epoch else [0]
    assert tl.nearest(2) == 4 and tl.nearest(100) == 4


def test_nearest_picks_the_closest_kept_epoch():
    tl = Timeline(budget=8 * MB)
    for epoch in range(0, 30):
        tl.add(epoch, fake_state(epoch))
    kept = tl.epochs().tolist()
    for asked in range(0, 30):
        got = tl.nearest(asked)
        assert got in kept and all(abs(got - asked) <= abs(k - asked) for k in kept)


def test_only_the_latest_request_is_kept_while_one_is_queued():
    box = LatestOnly()
    assert box.ask(3) is True  # nothing queued: the caller queues a computation
    assert box.ask(5) is False and box.ask(7) is False  # already queued: only the value changes
    assert box.take() == 7 and box.take() is None


# ---- in the worker ------------------------------------------------------------------------------







def hand_forward_proba(state: dict, points: np.ndarray) -> np.ndarray:
    """The xor example's net written out: tanh(W1 x + b1) -> tanh(W2 h + b2) -> softmax(W3 h + b3)."""
    x = points.astype(np.float64)
    g = {k: np.asarray(v, np.float64) for k, v in state.items()}
    h = np.tanh(x @ g["layers.dense1.weight"].T + g["layers.dense1.bias"])
    h = np.tanh(h @ g["layers.dense2.weight"].T + g["layers.dense2.bias"])
    z = h @ g["layers.output1.weight"].T + g["layers.output1.bias"]
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def test_the_views_at_epoch_k_are_those_of_the_weights_the_run_had_at_epoch_k():
    torch.set_num_threads(1)
    spec = xor_spec(epochs=6)
    conn = thread_worker()
    try:
        conn.send(P.StartRun(1, S.dumps(spec), "cpu", view_options={"grid_res": 30}))
        evs = events_until(conn, lambda ev: isinstance(ev, (P.RunEnded, P.RunFailed)))
        assert isinstance(evs[-1], P.RunEnded), evs[-1]
        final = [ev.snapshot for ev in evs if isinstance(ev, P.SnapshotReady)][-1]
        assert final.timeline["epochs"].tolist() == list(range(0, 7)), "epoch 0 (initial weights) and every epoch"
        assert 0 < final.timeline["bytes"] <= final.timeline["budget"]

        # the weights at epoch 2, as an independent run of the same design trained for 2 epochs has them
        conn.send(P.FetchCheckpoint(1, 2))
        ck = events_until(conn, lambda ev: isinstance(ev, P.Checkpoint))[-1]
        assert ck.epoch == 2 and not ck.error
        ref = Trainer(spec, epochs=2, device="cpu")
        ref.run()
        for k, v in ref.model.state_dict().items():
            np.testing.assert_allclose(ck.state[k], v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)

        # the boundary at epoch 2 is the hand-written forward of those weights on the grid
        conn.send(P.ShowEpoch(1, 2))
        hist = events_until(conn, lambda ev: isinstance(ev, P.SnapshotReady) and ev.snapshot.at_epoch >= 0)[-1].snapshot
        assert hist.at_epoch == 2 and hist.epoch == 6, "the snapshot keeps the run's progress, its views are old"
        xmin, xmax, ymin, ymax = hist.extras["boundary_extent"]
        xs, ys = np.linspace(xmin, xmax, 30), np.linspace(ymin, ymax, 30)
        gx, gy = np.meshgrid(xs, ys)
        want = hand_forward_proba(ck.state, np.stack([gx.ravel(), gy.ravel()], 1)).reshape(30, 30, 2)
        np.testing.assert_allclose(hist.extras["boundary"], want, atol=1e-5)
        assert not np.allclose(final.extras["boundary"], hist.extras["boundary"], atol=1e-3)

        # back to now: the final model's boundary again
        conn.send(P.ShowEpoch(1, -1))
        now = events_until(conn, lambda ev: isinstance(ev, P.SnapshotReady))[-1].snapshot
        assert now.at_epoch == -1
        np.testing.assert_allclose(now.extras.get("boundary", final.extras["boundary"]), final.extras["boundary"],
                                   atol=1e-6)
    finally:
        conn.send(P.Quit())


def test_a_fork_starts_from_the_checkpoint_and_numbers_its_epochs_on():
    torch.set_num_threads(1)
    spec = xor_spec(epochs=4)
    conn = thread_worker()
    try:
        conn.send(P.StartRun(1, S.dumps(spec), "cpu"))
        events_until(conn, lambda ev: isinstance(ev, P.RunEnded))
        conn.send(P.FetchCheckpoint(1, 3))
        ck = events_until(conn, lambda ev: isinstance(ev, P.Checkpoint))[-1]
        spec.training.lr = 0.001
        conn.send(P.StartRun(2, S.dumps(spec), "cpu", initial_state=ck.state, start_epoch=ck.epoch))
        evs = events_until(conn, lambda ev: isinstance(ev, P.RunEnded) and ev.run_id == 2)
        snap = evs[-1].snapshot
        assert snap.history["epoch"].tolist() == [4.0, 5.0, 6.0, 7.0], "4 more epochs, numbered on from 3"
        assert snap.epoch == 7 and snap.epochs == 7
        assert snap.timeline["epochs"][0] == 3, "the fork's timeline starts at its checkpoint"
        # the fork started from the checkpoint's weights
        conn.send(P.FetchCheckpoint(2, 3))
        first = events_until(conn, lambda ev: isinstance(ev, P.Checkpoint) and ev.run_id == 2)[-1]
        for k, v in ck.state.items():
            np.testing.assert_array_equal(first.state[k], v)
    finally:
        conn.send(P.Quit())
