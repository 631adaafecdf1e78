"""Headless training: ``python main.py train DESIGN.json [options]``.

Progress goes to stderr (one line per epoch or per second, whichever is rarer); stdout gets
exactly one JSON object at the end, so scripts can parse it. Exit codes: 0 trained all epochs
(or stopped), 1 the loss diverged or the export failed, 2 a bad design or bad arguments,
130 interrupted with Ctrl-C. No traceback reaches the terminal for anything a user can cause
(set NP_DEBUG=1 to see one for an unexpected internal error).

torch and the trainer are imported inside ``main`` so ``--help`` is instant and Ctrl-C while
torch loads is handled like any other.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
PROGRESS_INTERVAL = 1.0  # at least this many seconds between progress lines, and at most one line per epoch


class UsageError(Exception):
    """A problem the user can fix in the command or the design file; printed without traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits on its own; we want to return an exit code
        raise UsageError(f"{message}\n{self.format_usage().strip()}\n(python {self.prog} --help explains every option)")


def make_parser() -> argparse.ArgumentParser:
    from engine.export import describe_formats

    p = _Parser(
        prog="main.py train",
        description="Train a Neural Playground design without the GUI.\n"
                    "Progress goes to stderr; one JSON summary (losses, accuracies as fractions 0..1,\n"
                    "seconds, device, stop reason) goes to stdout.",
        epilog="export formats:\n" + describe_formats() + "\n\n"
               "exit codes: 0 done, 1 diverged or export failed, 2 bad design or arguments, 130 interrupted\n\n"
               "example:\n  python main.py train assets/examples/xor.json --epochs 50 --export xor.safetensors",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("design", metavar="DESIGN.json",
                   help="design file saved by the app, or the name of a shipped example such as xor or digits_cnn")
    p.add_argument("--epochs", type=_positive_int, help="number of epochs (default: the design's training.epochs)")
    p.add_argument("--seed", type=_seed, help="seed for weights and shuffling (default: the design's training.seed)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"),
                   help="where to train (default: the design's training.device; auto = cuda > mps > cpu)")
    p.add_argument("--export", metavar="OUT", help="write the trained model here; the extension picks the format")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines, only errors and the JSON")
    return p


EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "examples")


def example_path(design: str) -> str:
    """``design`` itself if it is a file, else the shipped example of that name (``xor`` or ``xor.json``):
    installed with pip, the examples live inside the package, not in the user's folder."""
    if os.path.exists(design) or os.sep in design or "/" in design:
        return design
    name = design if design.endswith(".json") else design + ".json"
    path = os.path.join(EXAMPLES_DIR, name)
    return path if os.path.isfile(path) else design


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if not 1 <= value <= 100000:
        raise argparse.ArgumentTypeError(f"{value} must be between 1 and 100000")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 2147483647")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the process exit code (never raises for user errors)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _run(argv)
    except UsageError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted - training stopped, nothing was written")
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except Exception as exc:
        if os.environ.get("NP_DEBUG"):
            raise
        _err(f"error: unexpected {type(exc).__name__}: {exc} (run with NP_DEBUG=1 for details)")
        return EXIT_FAILED


def _run(argv: list[str]) -> int:
    args = make_parser().parse_args(argv)

    from engine import spec as spec_mod
    from engine import validation
    from engine.export import check_path

    if args.export:
        try:
            check_path(args.export)
        except ValueError as exc:
            raise UsageError(f"--export {exc}") from None
    args.design = example_path(args.design)
    if os.path.isdir(args.design):
        raise UsageError(f"{args.design} is a folder - give the path of a design .json file")
    if not os.path.isfile(args.design):
        raise UsageError(f"{args.design}: no such design file")
    try:
        spec = spec_mod.load(args.design)
    except spec_mod.SpecError as exc:
        raise UsageError(_problems_text(args.design, exc.problems)) from None
    if args.epochs is not None:
        spec.training.epochs = args.epochs
    if args.seed is not None:
        spec.training.seed = args.seed
    if args.device is not None:
        spec.training.device = args.device
    problems = validation.validate(spec)
    bad = validation.errors(problems)
    if bad:
        raise UsageError(_problems_text(args.design, bad))
    for w in problems:
        if w.severity != "error":
            _err(f"warning: {w}")

    # torch loads only now, after the cheap checks: it takes a few seconds
    from engine.trainer import choose_device, device_name

    try:
        device = choose_device(spec.training.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    from engine.tasks import load_data, make_trainer

    try:
        data = load_data(spec)
    except ValueError as exc:
        raise UsageError(f"{args.design}: {exc}") from None

    regression = data.info.task == "regression"
    if spec.generative is not None:
        import torch

        torch.set_num_threads(1)  # these nets are small: one thread is faster, and far faster on a busy machine
    progress = _Progress(quiet=args.quiet, regression=regression)
    trainer, _ = make_trainer(spec, data, device=device.type, on_snapshot=progress, max_rate=4.0,
                              probe_options={"generative": False})  # no views to feed
    n_params = sum(p.numel() for p in trainer.model.parameters())
    if not args.quiet:
        _err(f"training '{spec.name}' on {device_name(device)}: {n_params} parameters, "
             f"{len(data.x_train)} train / {len(data.x_val)} val samples of {data.info.kind}, "
             f"{spec.training.epochs} epochs, batch {trainer.batch_size}, seed {spec.training.seed}")
    result = trainer.run()

    summary: dict[str, Any] = {
        "design": spec.name,
        "design_path": os.path.abspath(args.design),
        "dataset": spec.dataset.kind,
        "state": progress.state,
        "epochs": result.epochs,
        "steps": result.steps,
        "train_loss": result.train_loss,
        "train_accuracy": result.train_accuracy,
        "val_loss": result.val_loss,
        "val_accuracy": result.val_accuracy,
        "seconds": result.seconds,
        "samples_per_s": round(progress.samples_per_s, 1),
        "device": result.device,
        "seed": spec.training.seed,
        "parameters": n_params,
        "stopped_reason": result.stopped_reason,
    }
    if regression:  # the score slots hold R^2: name them so
        summary.update(train_accuracy=None, val_accuracy=None, train_r2=result.train_accuracy,
                       val_r2=result.val_accuracy, val_mae=result.history["val_mae"][-1] if result.epochs else None)
    for key in ("recon_mse", "kl", "d_loss", "g_loss", "fake_to_real", "real_to_fake", "ring_error"):
        if result.history.get(key):  # autoencoders and GANs: their own measures, last epoch
            summary[key] = result.history[key][-1]
    code = EXIT_OK
    if progress.state == "diverged":
        _err(f"diverged: {result.stopped_reason}")
        code = EXIT_FAILED
    if args.export:
        from engine.export import export

        try:
            summary["exported"] = os.path.abspath(export(trainer.model, trainer.spec, args.export))
            if not args.quiet:
                _err(f"exported {summary['exported']}")
        except (OSError, ValueError, RuntimeError) as exc:
            _err(f"error: could not export to {args.export}: {exc}")
            summary["export_error"] = str(exc)
            code = EXIT_FAILED
    print(json.dumps(_json_safe(summary), allow_nan=False), flush=True)
    return code


class _Progress:
    """Snapshot callback that prints one line per epoch or per second, whichever is rarer."""

    def __init__(self, quiet: bool = False, regression: bool = False):
        self.quiet = quiet
        self.regression = regression
        self.last_line = -math.inf
        self.printed_epoch = 0
        self.state = "running"
        self.samples_per_s = 0.0

    def __call__(self, snap) -> None:
        self.state = snap.state
        self.samples_per_s = snap.samples_per_s
        now = time.monotonic()
        final = snap.state not in ("running", "paused")
        if snap.epoch > self.printed_epoch and (final or now - self.last_line >= PROGRESS_INTERVAL):
            self._line(snap)
            self.last_line = now

    def _line(self, snap) -> None:
        self.printed_epoch = snap.epoch
        if self.quiet:
            return
        width = len(str(snap.epochs))
        if self.regression:
            _err(f"epoch {snap.epoch:>{width}}/{snap.epochs}  loss {_num(snap.train_loss)}  R2 {_num(snap.train_acc)}  "
                 f"val_loss {_num(snap.val_loss)}  val_R2 {_num(snap.val_acc)}  {snap.samples_per_s:,.0f} samples/s")
            return
        _err(f"epoch {snap.epoch:>{width}}/{snap.epochs}  loss {_num(snap.train_loss)}  acc {_pct(snap.train_acc)}  "
             f"val_loss {_num(snap.val_loss)}  val_acc {_pct(snap.val_acc)}  {snap.samples_per_s:,.0f} samples/s")


def _num(v: float) -> str:
    return f"{v:.4f}" if math.isfinite(v) else "-"


def _pct(v: float) -> str:
    return f"{100 * v:5.1f}%" if math.isfinite(v) else "-"


def _problems_text(path: str, problems) -> str:
    lines = [f"{path} is not a usable design:"] + [f"  {p}" for p in problems]
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    """NaN and infinities become null (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---- python main.py export-project DESIGN.json OUTDIR ------------------------------------------

def export_project_main(argv: list[str] | None = None) -> int:
    """``main.py export-project DESIGN.json OUTDIR [--weights FILE]``: write the design as a PyTorch project."""
    argv = sys.argv[1:] if argv is None else list(argv)
    p = _Parser(prog="main.py export-project",
                description="Write a design as a plain PyTorch project (model.py, data.py, train.py, snapshot.pt,\n"
                            "config.json, README.md) that trains with torch alone - with python or torchrun.",
                epilog="example:\n  python main.py export-project assets/examples/xor.json xor_project\n"
                       "  cd xor_project && python train.py",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("design", metavar="DESIGN.json", help="design file saved by the app (or one of the examples)")
    p.add_argument("outdir", metavar="OUTDIR", help="folder to write (created if needed)")
    p.add_argument("--weights", metavar="FILE", help="trained weights (.safetensors/.pt exported by the app) for "
                                                     "snapshot.pt; without it the design's initial weights are written")
    try:
        args = p.parse_args(argv)
        args.design = example_path(args.design)
        if not os.path.isfile(args.design):
            raise UsageError(f"{args.design}: no such design file")
        from engine import spec as spec_mod
        from engine.project import ProjectError, export_project, fresh_state

        try:
            spec = spec_mod.load(args.design)
        except spec_mod.SpecError as exc:
            raise UsageError(_problems_text(args.design, exc.problems)) from None
        state = None
        if args.weights:
            from engine import datasets
            from engine.export import load_weights

            try:
                weights, _ = load_weights(args.weights)
                state = fresh_state(spec, datasets.describe(spec.dataset))
                if set(weights) != set(state["model"]):
                    raise ValueError(f"{args.weights}: its layers do not match the design - export the weights of "
                                     "this design")
                state["model"] = weights
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        try:
            files = export_project(spec, args.outdir, state)
        except ProjectError as exc:
            raise UsageError(f"cannot export {args.design}: {exc}") from None
    except UsageError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except OSError as exc:
        _err(f"error: could not write {args.outdir}: {exc.strerror or exc}")
        return EXIT_FAILED
    out = os.path.abspath(args.outdir)
    _err(f"wrote {', '.join(files)} to {out}\nnext: cd {out} && python train.py   (README.md has the torchrun commands)")
    return EXIT_OK
