"""A comparison in the worker (engine.compare_host): bounded snapshots, per-variant control, weights."""
import os
import time

import numpy as np
import torch

from engine import protocol as P
from engine import spec as S
from engine.build import build
from engine.sweep_spec import Axis, Sweep
from tests.conftest import EXAMPLES
from tests.engine.harness import events_for, events_until, thread_worker


def xor_sweep(lrs, epochs=3000) -> S.Spec:
    spec = S.load(os.path.join(EXAMPLES, "xor.json"))
    spec.training.epochs = epochs
    spec.training.device = "cpu"
    spec.compare = Sweep([Axis("training.lr", list(lrs))])
    return spec






def test_snapshots_and_probes_stay_bounded_and_one_variant_stops_alone():
    conn = thread_worker()
    n, rate, interval = 5, 10.0, 0.5
    conn.send(P.StartComparison(1, S.dumps(xor_sweep([0.01, 0.03, 0.1, 0.3, 1.0])), max_rate=rate,
                                view_options={"probe_interval": interval}))
    started = events_until(conn, lambda ev: isinstance(ev, P.ComparisonStarted))
    assert started[-1].labels == ("lr=0.01", "lr=0.03", "lr=0.1", "lr=0.3", "lr=1")
    t0 = time.perf_counter()
    evs = events_until(conn, lambda ev: time.perf_counter() - t0 > 3.0)
    conn.send(P.StopVariant(1, 2))
    evs += events_until(conn, lambda ev: time.perf_counter() - t0 > 5.0)
    elapsed = time.perf_counter() - t0
    conn.send(P.Control(1, "stop"))
    evs += events_until(conn, lambda ev: isinstance(ev, P.ComparisonEnded))
    assert isinstance(evs[-1], P.ComparisonEnded)

    snaps = [ev for ev in evs if isinstance(ev, P.VariantSnapshot)]
    per_variant = {i: [ev.snapshot for ev in snaps if ev.index == i] for i in range(n)}
    for i, got in per_variant.items():
        running = [s for s in got if s.state == "running"]
        assert len(running) <= rate * elapsed + 3, f"variant {i}: {len(running)} snapshots in {elapsed:.1f} s"
        # each boundary is computed at most every ``interval``; in between it is left out as unchanged
        fresh = [s for s in running if "boundary" in s.extras]
        assert 2 <= len(fresh) <= elapsed / interval + 3, f"variant {i}: {len(fresh)} boundaries"
        assert all(s.extras["boundary"].shape == (50, 50, 2) for s in fresh)
    # stopping variant 2 left it at its step while the others went on
    v2 = per_variant[2]
    first_stop = next(k for k, s in enumerate(v2) if s.state == "stopped")
    assert {s.step for s in v2[first_stop:]} == {v2[first_stop].step}
    for i in (0, 1, 3, 4):
        assert per_variant[i][-1].step > v2[first_stop].step + 5
    results = evs[-1].results
    assert results[2].stopped_reason == "stopped by the user" and results[2].steps < results[0].steps
    conn.send(P.Quit())


def test_a_variants_weights_are_a_normal_state_dict_of_its_design():
    conn = thread_worker()
    spec = xor_sweep([0.05, 0.5], epochs=2)
    conn.send(P.StartComparison(7, S.dumps(spec)))
    events_until(conn, lambda ev: isinstance(ev, P.ComparisonEnded))
    conn.send(P.FetchVariantWeights(7, 1))
    (ev,) = [e for e in events_until(conn, lambda e: isinstance(e, P.VariantWeights)) if isinstance(e, P.VariantWeights)]
    variant = spec.copy()
    variant.compare, variant.training.lr = None, 0.5
    from engine import datasets

    model = build(variant, datasets.describe(variant.dataset))
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in ev.state.items()})  # strict: same names, shapes
    fresh = build(variant, datasets.describe(variant.dataset))
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), fresh.parameters(), strict=True)), "trained"
    conn.send(P.Quit())


def test_pause_step_and_resume_act_on_every_variant():
    conn = thread_worker()
    conn.send(P.StartComparison(3, S.dumps(xor_sweep([0.05, 0.2, 0.5]))))
    events_until(conn, lambda ev: isinstance(ev, P.VariantSnapshot) and ev.snapshot.step > 20)
    conn.send(P.Control(3, "pause"))
    evs = events_for(conn, 1.5)  # the pause lands at the next batch

    def latest(events):
        out = {}
        for ev in events:
            if isinstance(ev, P.VariantSnapshot):
                out[ev.index] = ev.snapshot
        return out

    paused = latest(evs)
    assert {s.state for s in paused.values()} == {"paused"} and len(paused) == 3
    assert len({s.step for s in paused.values()}) == 1, "one batch: every variant at the same step"
    still = latest(events_for(conn, 0.5))
    assert all(s.step == paused[i].step for i, s in still.items()), "nothing trains while paused"
    conn.send(P.Control(3, "step"))
    stepped = latest(events_for(conn, 1.5))
    assert {s.step for s in stepped.values()} == {next(iter(paused.values())).step + 1}
    conn.send(P.Control(3, "resume"))
    resumed = latest(events_for(conn, 1.5))
    assert all(s.state == "running" and s.step > paused[i].step + 1 for i, s in resumed.items())
    conn.send(P.Quit())
