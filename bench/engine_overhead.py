"""Engine overhead: engine.trainer.Trainer against a bare torch loop doing the same training.

    .venv/bin/python bench/engine_overhead.py [--repeats 15] [--quick]

Both sides train the same model (engine.build.build from the same design, same seed), on the
same standardised tensors, with the same batch size, optimiser, lr schedule, randperm shuffling
(a torch.Generator seeded alike) and number of epochs, on the CPU with torch's default threads.

The bare loop is what a person would write by hand: shuffle, slice, forward, loss, zero_grad,
backward, step, and - once per epoch - the validation pass (eval mode, no_grad, loss and
accuracy on the validation set). The validation pass is included because it is the product's
output, not overhead: a bare loop that shows validation curves must do the same forward pass
(on the digits CNN it costs roughly a tenth of the training time; the figure without it is
printed too). Everything else the trainer does counts as overhead: running train loss and
accuracy, the NaN check every step, the copy of the last good weights every epoch, the
pause/step/stop checks between batches and the snapshots.

The trainer runs with a no-op ``on_snapshot`` at the default 30 snapshots/s, as the GUI does
(each snapshot converts the history to numpy); the figure with no callback (as in a script) is
printed too. Repeats alternate bare / trainer / trainer without callback / bare without
validation so that load from other processes hits all alike; the best of the repeats is kept
(on a shared machine single runs vary by 10-30 %; the best of many is the steady figure).
Each case is one line ending in ``ratio X.XX`` = trainer speed / bare speed (1.00 = no overhead).
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
from functools import partial

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402

from engine import datasets  # noqa: E402
from engine import spec as spec_mod  # noqa: E402
from engine.build import build  # noqa: E402
from engine.trainer import Trainer, loss_fn, outputs_to_pred  # noqa: E402

EXAMPLES = os.path.join(ROOT, "assets", "examples")
# (label, design file, epochs): about half a second per run on 2 cores. Short runs, many of them:
# on a shared machine the best of many short runs is a steadier estimate than a few long ones.
CASES = (("xor MLP", "xor.json", 20), ("digits CNN", "digits_cnn.json", 2))


def bare_loop(spec: spec_mod.Spec, data: datasets.Data, epochs: int, validate: bool = True) -> float:
    """Seconds for the hand-written loop (model and optimiser built outside the timing)."""
    t = spec.training
    model = build(spec, data.info)
    model.train()
    opt = _optimizer(model, t)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs) if t.lr_schedule == "cosine" else None
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    xv, yv = torch.as_tensor(data.x_val), torch.as_tensor(data.y_val)
    n, bs = len(x), max(1, min(t.batch_size, len(x)))
    gen = torch.Generator().manual_seed(t.seed)
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for b in range(0, n, bs):
            idx = perm[b:b + bs]
            loss = loss_fn(model(x[idx]), y[idx], t.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if validate:
            _validate(model, xv, yv, t.loss)
        if sched is not None:
            sched.step()
    return time.perf_counter() - start


@torch.no_grad()
def _validate(model: torch.nn.Module, xv: torch.Tensor, yv: torch.Tensor, loss: str) -> tuple[float, float]:
    """Validation loss and accuracy, in chunks as any loop must for big validation sets."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(xv), 2048):
        out = model(xv[i:i + 2048])
        loss_sum += loss_fn(out, yv[i:i + 2048], loss).item() * len(out)
        correct += int((outputs_to_pred(out, loss) == yv[i:i + 2048]).sum())
    model.train()
    return loss_sum / len(xv), correct / len(xv)


def _optimizer(model: torch.nn.Module, t: spec_mod.TrainingSpec) -> torch.optim.Optimizer:
    if t.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    raise SystemExit(f"bench: add optimiser {t.optimizer} to bare_loop")


def trainer_loop(spec: spec_mod.Spec, data: datasets.Data, epochs: int, callback: bool) -> float:
    """Seconds for Trainer.run() (construction - build, tensors, optimiser - outside the timing)."""
    snaps = []
    on_snapshot = (lambda s: snaps.append(None)) if callback else None  # no-op apart from counting
    trainer = Trainer(spec, data, device="cpu", epochs=epochs, on_snapshot=on_snapshot)
    start = time.perf_counter()
    result = trainer.run()
    seconds = time.perf_counter() - start
    if result.epochs != epochs:
        raise SystemExit(f"bench: the trainer stopped early: {result.stopped_reason}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=15, help="timed runs per variant (best is kept)")
    ap.add_argument("--quick", action="store_true", help="a third of the epochs (smoke test)")
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; best of {args.repeats}", flush=True)
    for label, file, epochs in CASES:
        spec = spec_mod.load(os.path.join(EXAMPLES, file))
        epochs = max(1, epochs // 3) if args.quick else epochs
        data = datasets.load(spec.dataset)
        samples = epochs * len(data.x_train)
        # warm-up: first calls load kernels and lazy torch modules
        bare_loop(spec, data, 1)
        trainer_loop(spec, data, 1, callback=True)
        runs = {
            "bare": partial(bare_loop, spec, data, epochs),
            "trainer": partial(trainer_loop, spec, data, epochs, callback=True),
            "no_callback": partial(trainer_loop, spec, data, epochs, callback=False),
            "no_validation": partial(bare_loop, spec, data, epochs, validate=False),
        }
        best = dict.fromkeys(runs, math.inf)
        for _ in range(args.repeats):
            for name, run in runs.items():
                gc.collect()  # no run pays for the previous run's garbage
                best[name] = min(best[name], run())
        speed = {name: samples / seconds for name, seconds in best.items()}
        print(f"{label:<10} {epochs:>2} epochs  samples/s: bare {speed['bare']:,.0f} "
              f"(no validation {speed['no_validation']:,.0f})  trainer {speed['trainer']:,.0f} "
              f"(no callback {speed['no_callback']:,.0f})  ratio {speed['trainer'] / speed['bare']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
