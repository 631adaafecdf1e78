"""The training timeline's cost: a checkpoint of the weights after every epoch (engine.timeline_host).

    .venv/bin/python bench/timeline_overhead.py [--repeats 5]

For the xor MLP and the digits CNN (assets/examples, CPU, one thread) it trains the same design
alternately without and with the per-epoch checkpoint, keeps the best of the repeats, and prints
the median copy time per checkpoint, the checkpoint's size, how many fit in the budget before the
old ones thin out, and ``ratio X.XX`` = speed with checkpoints / speed without (1.00 = no cost).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from engine import spec as S  # noqa: E402
from engine.timeline import BUDGET_BYTES, Timeline, state_bytes  # noqa: E402
from engine.timeline_host import state_to_numpy  # noqa: E402
from engine.trainer import Trainer  # noqa: E402

CASES = (("xor.json", 60), ("digits_cnn.json", 3))
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "examples")


def timed(spec, epochs: int, checkpoints: bool) -> tuple[float, list[float], int]:
    tr = Trainer(spec, epochs=epochs, device="cpu")
    tl, copies = Timeline(), []

    def record():
        t0 = time.perf_counter()
        tl.add(tr.epoch, state_to_numpy(tr.model))
        copies.append(time.perf_counter() - t0)

    if checkpoints:
        record()
        tr.on_epoch_end = record
    t0 = time.perf_counter()
    tr.run()
    latest = tl.latest_epoch()
    return time.perf_counter() - t0, copies, state_bytes(tl.get(latest)) if latest is not None else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, epochs in CASES:
        spec = S.load(os.path.join(EXAMPLES, name))
        spec.training.device = "cpu"
        plain, with_ck, copies, size = [], [], [], 0
        for _ in range(args.repeats):
            plain.append(timed(spec, epochs, False)[0])
            t, c, size = timed(spec, epochs, True)
            with_ck.append(t)
            copies += c
        copy_ms = sorted(copies)[len(copies) // 2] * 1e3
        epoch_ms = min(plain) / epochs * 1e3
        print(f"{name:16s} checkpoint {size / 1024:7.1f} kB  copy {copy_ms:.3f} ms/epoch  epoch {epoch_ms:7.1f} ms  "
              f"({100 * copy_ms / epoch_ms:.2f} % of an epoch)  fits {BUDGET_BYTES // max(size, 1)} before thinning  "
              f"ratio {min(plain) / min(with_ck):.2f}")


if __name__ == "__main__":
    main()
