"""Run files (engine.runfile): size on disk and the time to take, write, read and restore a run.

For each example: train a few epochs on the CPU, then time engine.run_state.capture (what the
worker does on FetchRunState), engine.runfile.write_run, engine.runfile.read_run and
engine.run_state.restore into a fresh trainer. The reference is one training epoch timed in the
same run (the ratio says how many epochs' time a save costs).

    python bench/runfile_io.py [--cases xor digits_cnn] [--epochs 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv: list[str]) -> int:
    import torch

    from engine import datasets, run_state, runfile
    from engine import spec as S
    from engine.trainer import Trainer

    p = argparse.ArgumentParser()
    p.add_argument("--cases", nargs="+", default=["xor", "digits_cnn"])
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    for case in args.cases:
        spec = S.load(os.path.join(ROOT, "assets", "examples", f"{case}.json"))
        spec.training.device = "cpu"
        spec.training.epochs = args.epochs
        data = datasets.load(spec.dataset)
        tr = Trainer(spec, data, device="cpu", max_rate=0)
        t0 = time.perf_counter()
        tr.run()
        epoch_s = (time.perf_counter() - t0) / args.epochs
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, f"{case}.nprun")
            t = time.perf_counter()
            state = run_state.capture(tr)
            t_capture = time.perf_counter() - t
            t = time.perf_counter()
            size = runfile.write_run(path, S.dumps(spec), state, {})
            t_write = time.perf_counter() - t
            t = time.perf_counter()
            rf = runfile.read_run(path)
            t_read = time.perf_counter() - t
            fresh = Trainer(S.loads(rf.spec_json), data, device="cpu", max_rate=0)
            t = time.perf_counter()
            run_state.restore(fresh, rf.state)
            t_restore = time.perf_counter() - t
        n_params = sum(v.size for v in state["weights"].values())
        save = t_capture + t_write
        print(f"{case}: {n_params:,} weights, file {size / 1024:,.1f} KB; capture {t_capture * 1e3:.1f} ms, "
              f"write {t_write * 1e3:.1f} ms, read {t_read * 1e3:.1f} ms, restore {t_restore * 1e3:.1f} ms; "
              f"one epoch {epoch_s * 1e3:.0f} ms; save/epoch ratio {save / epoch_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
