"""Compare runs: N same-structure variants trained batched, against N sequential runs and a bare torch loop.

    .venv/bin/python bench/compare_speed.py [--repeats 5] [--threads 1] [--vmap] [--quick]

For the xor MLP and the digits CNN (assets/examples), with N = 1, 4, 8 and 16 variants that
differ in learning rate and seed (one batch group, engine.variants), this times in one run:

* batched: engine.batched.BatchedTrainer(N variants).run() - construction outside the timing;
* sequential: N engine.trainer.Trainer runs one after another (each built outside the timing);
* bare: one hand-written torch loop training one variant (bench/engine_overhead.bare_loop:
  shuffle, forward, loss, backward, step, and the validation pass once per epoch).

Each line ``<model>: variants N cost X`` gives X = batched time for N variants / batched time
for 1 variant (the issue's figure; target at N = 8: <= 2 for the xor MLP, <= 4 for the digits
CNN), then the sequential cost (N Trainer runs / 1 Trainer run) and the batched time against
the bare loop. torch runs with ``--threads`` threads (default 1, as the worker runs small
nets) throughout. The repeats interleave every case so that load from other processes hits
all alike; costs use the best time of each case, and ``spread`` is the range of the per-repeat
costs (on a shared 2-core machine single runs vary by 10-30 %). Every figure is printed for
wall time and for the process's CPU time: when other processes load the machine, wall time
measures the load as much as the code, and CPU time is the steadier figure.
``--vmap`` also times the whole model under torch.vmap(functional_call) (forward="vmap").
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (ROOT, os.path.join(ROOT, "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)

import torch  # noqa: E402
from engine_overhead import _optimizer, _validate  # noqa: E402

from engine import datasets  # noqa: E402
from engine import spec as spec_mod  # noqa: E402
from engine.batched import BatchedTrainer  # noqa: E402
from engine.build import build  # noqa: E402
from engine.trainer import Trainer, loss_fn  # noqa: E402

EXAMPLES = os.path.join(ROOT, "assets", "examples")
CASES = (("xor MLP", "xor.json", 10), ("digits CNN", "digits_cnn.json", 1))  # (label, design, epochs)
COUNTS = (1, 4, 8, 16)


def variant_specs(base: spec_mod.Spec, n: int) -> list[spec_mod.Spec]:
    """n designs that differ in lr (x1 .. x2.5) and seed: one batch group."""
    out = []
    for i in range(n):
        s = base.copy()
        s.training.lr = base.training.lr * (1 + 1.5 * i / max(1, n - 1))
        s.training.seed = i
        out.append(s)
    return out


class Clock:
    """Wall time and this process's CPU time (all its threads) of the block."""

    def __enter__(self):
        gc.collect()
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def time_bare(spec: spec_mod.Spec, data: datasets.Data, epochs: int) -> Clock:
    """bench/engine_overhead.py's bare loop (with its validation pass), model and optimiser built outside the timing."""
    t = spec.training
    model = build(spec, data.info)
    opt = _optimizer(model, t)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs) if t.lr_schedule == "cosine" else None
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    xv, yv = torch.as_tensor(data.x_val), torch.as_tensor(data.y_val)
    n, bs = len(x), max(1, min(t.batch_size, len(x)))
    gen = torch.Generator().manual_seed(t.seed)
    with Clock() as clock:
        for _ in range(epochs):
            model.train()
            perm = torch.randperm(n, generator=gen)
            for b in range(0, n, bs):
                idx = perm[b:b + bs]
                loss = loss_fn(model(x[idx]), y[idx], t.loss)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            _validate(model, xv, yv, t.loss)
            if sched is not None:
                sched.step()
    return clock


def time_batched(specs, data, forward: str) -> Clock:
    bt = BatchedTrainer(specs, data, device="cpu", forward=forward)
    with Clock() as clock:
        results = bt.run()
    if any(r.epochs != specs[0].training.epochs for r in results):
        raise SystemExit(f"bench: a variant stopped early: {[r.stopped_reason for r in results]}")
    return clock


def time_sequential(specs, data) -> Clock:
    trainers = [Trainer(s, data, device="cpu") for s in specs]
    with Clock() as clock:
        for tr in trainers:
            tr.run()
    return clock


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of every case (best is kept)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--vmap", action="store_true", help="also time forward='vmap' (the whole model under torch.vmap)")
    ap.add_argument("--quick", action="store_true", help="2 repeats (smoke test)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    modes = ("layers", "vmap") if args.vmap else ("layers",)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU; best of {repeats}", flush=True)
    for label, file, epochs in CASES:
        base = spec_mod.load(os.path.join(EXAMPLES, file))
        base.training.epochs, base.training.device = epochs, "cpu"
        data = datasets.load(base.dataset)
        clocks: dict[tuple, list[Clock]] = {}
        for _ in range(repeats):
            clocks.setdefault(("bare",), []).append(time_bare(base, data, epochs))
            for n in COUNTS:
                specs = variant_specs(base, n)
                for mode in modes:
                    clocks.setdefault((mode, n), []).append(time_batched(specs, data, mode))
                clocks.setdefault(("sequential", n), []).append(time_sequential(specs, data))
        for kind in ("wall", "cpu"):
            times = {k: [getattr(c, kind) for c in v] for k, v in clocks.items()}
            best = {k: min(v) for k, v in times.items()}
            print(f"{label} ({epochs} epoch(s) of {len(data.x_train)} samples, batch {base.training.batch_size}), "
                  f"{kind} time: bare torch loop {best[('bare',)]:.3f} s, one Trainer run {best[('sequential', 1)]:.3f} s",
                  flush=True)
            for mode in modes:
                for n in COUNTS:
                    per_repeat = [a / b for a, b in zip(times[(mode, n)], times[(mode, 1)], strict=True)]
                    name = "" if mode == "layers" else " [vmap]"
                    print(f"  {label}{name} ({kind}): variants {n} cost {best[(mode, n)] / best[(mode, 1)]:.2f} "
                          f"(spread {min(per_repeat):.2f}-{max(per_repeat):.2f}; {best[(mode, n)]:.3f} s); "
                          f"sequential cost {best[('sequential', n)] / best[('sequential', 1)]:.2f}; "
                          f"batched / bare loop {best[(mode, n)] / best[('bare',)]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
