"""`python main.py train`: one JSON object on stdout, progress and errors on stderr, never a traceback."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys

import pytest
import torch

from engine import cli, export
from engine import spec as spec_mod
from engine.build import build
from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec, TrainingSpec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")
REQUIRED = {"design", "epochs", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "device",
            "stopped_reason"}


def small_design(tmp_path, epochs: int = 3, **training) -> str:
    # device "cpu", not "auto" (= cuda on a GPU machine): the divergence test relies on CPU numerics
    spec = Spec(name="tiny xor", dataset=DatasetSpec("xor", {"n_points": 200, "seed": 1}),
                training=TrainingSpec(**{"epochs": epochs, "lr": 0.05, "batch_size": 16, "device": "cpu", **training}))
    ids = [("input1", "Input", {}), ("dense1", "Dense", {"units": 8}), ("act1", "Activation", {"function": "tanh"}),
           ("output1", "Output", {})]
    spec.layers = [LayerSpec(i, k, p, (0.0, 110.0 * n)) for n, (i, k, p) in enumerate(ids)]
    spec.edges = [EdgeSpec(a[0], b[0]) for a, b in zip(ids, ids[1:], strict=False)]
    path = tmp_path / "tiny.json"
    spec_mod.save(spec, path)
    return os.fspath(path)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, MAIN, "train", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def assert_clean_failure(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_train_prints_one_json_summary_progress_on_stderr_and_exports(tmp_path):
    design = small_design(tmp_path, epochs=4)
    out = tmp_path / "tiny.safetensors"
    proc = run_cli(design, "--epochs", "5", "--seed", "7", "--device", "cpu", "--export", os.fspath(out))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr

    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # exactly one JSON object, nothing else on stdout
    summary = json.loads(lines[0])
    assert REQUIRED <= summary.keys()
    assert summary["design"] == "tiny xor" and summary["epochs"] == 5 and summary["seed"] == 7
    assert summary["device"] == "CPU" and summary["state"] == "finished"
    assert 0.0 <= summary["val_accuracy"] <= 1.0 and math.isfinite(summary["train_loss"])
    assert summary["exported"] == os.path.abspath(out)

    # progress: a header, then epoch lines ending with the last epoch (throttled to one per second)
    assert "training 'tiny xor' on CPU" in proc.stderr
    assert "epoch 5/5" in proc.stderr and "val_acc" in proc.stderr and "samples/s" in proc.stderr

    # the exported weights reproduce the reported validation accuracy in a fresh model
    state, design_back = export.load_safetensors(out)
    assert design_back.training.seed == 7 and design_back.training.epochs == 5
    from engine import datasets

    spec = spec_mod.load(design)
    data = datasets.load(spec.dataset)
    model = build(spec, data.info, seed=123)
    export.load_weights_into(model, out)
    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(data.x_val)).argmax(1).numpy()
    assert (pred == data.y_val).mean() == pytest.approx(summary["val_accuracy"], abs=1e-9)


def test_quiet_json_is_nan_safe_when_the_loss_diverges(tmp_path, capsys):
    # plain SGD at lr 100 with one sample per step overflows within the first epoch, so no epoch
    # ever finishes and every metric is NaN: JSON has no NaN, the summary must say null
    design = small_design(tmp_path, epochs=5, optimizer="sgd", momentum=0.9, batch_size=1)
    raw = json.loads(open(design).read())
    raw["training"]["lr"] = 100.0
    raw["layers"][1]["params"]["units"] = 64
    raw["layers"][2]["params"]["function"] = "relu"
    with open(design, "w") as fh:
        json.dump(raw, fh)
    code = cli.main([design, "-q"])  # in-process: the subprocess path is covered above
    out, err = capsys.readouterr()
    assert code == 1, err
    summary = json.loads(out)  # json.loads accepts NaN, so also check the raw text
    assert "NaN" not in out and "Infinity" not in out
    assert summary["state"] == "diverged" and summary["epochs"] == 0
    assert summary["train_loss"] is None and summary["val_accuracy"] is None
    assert "lower the learning rate" in summary["stopped_reason"]
    assert "diverged:" in err
    assert not any(line.startswith("epoch ") for line in err.splitlines())  # -q: no progress lines


@pytest.mark.parametrize("content,needle", [
    ("{not json", "not valid JSON"),
    ('{"format": "something-else", "version": 1}', "format"),
    ("[1, 2, 3]", "JSON object"),
])
def test_unreadable_design_files_fail_cleanly(tmp_path, content, needle):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert_clean_failure(run_cli(os.fspath(path)), needle)


def test_invalid_design_lists_every_problem(tmp_path):
    raw = json.loads(open(small_design(tmp_path)).read())
    raw["layers"][1]["params"]["units"] = 0  # out of range
    raw["edges"] = raw["edges"][:-1]  # Output unconnected
    path = tmp_path / "invalid.json"
    path.write_text(json.dumps(raw))
    assert_clean_failure(run_cli(os.fspath(path)), "dense1", "units", "output1")


@pytest.mark.parametrize("args,needle", [
    ((), "DESIGN.json"),
    (("{design}", "--epochs", "0"), "--epochs"),
    (("{design}", "--epochs", "many"), "not a whole number"),
    (("{design}", "--seed", "-1"), "--seed"),
    (("{design}", "--device", "tpu"), "--device"),
    (("{design}", "--frobnicate"), "unrecognized arguments"),
    (("{design}", "--export", "{tmp}/weights.h5"), ".safetensors"),
    (("{design}", "--export", "{tmp}/no/such/folder/w.pt"), "does not exist"),
    (("{tmp}/missing.json",), "no such design file"),
    (("{tmp}",), "is a folder"),
])
def test_bad_arguments_fail_cleanly_before_training(tmp_path, args, needle):
    design = small_design(tmp_path)
    argv = [a.format(design=design, tmp=tmp_path) for a in args]
    proc = run_cli(*argv)
    assert_clean_failure(proc, needle)
    assert "epoch " not in proc.stderr  # nothing was trained


def test_unavailable_device_fails_cleanly(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # no GPU, also on a machine that has one
    assert cli.main([small_design(tmp_path), "--device", "cuda"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "CUDA" in err and "no CUDA GPU is available" in err


def test_help_explains_options_and_formats():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for word in ("--epochs", "--seed", "--device", "--export", ".safetensors", ".onnx", "exit codes"):
        assert word in proc.stdout


def test_ctrl_c_exits_130_with_one_line(tmp_path):
    design = small_design(tmp_path, epochs=100000)
    proc = subprocess.Popen([sys.executable, MAIN, "train", design], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    try:
        assert "training 'tiny xor'" in proc.stderr.readline()  # training is about to start
        assert proc.stderr.readline().startswith("epoch")  # and is running
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert out == ""
    assert err.strip().splitlines() == ["interrupted - training stopped, nothing was written"]


def test_cli_module_imports_without_qt_or_torch():
    code = ("import sys, engine.cli; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'pyqtgraph', 'torch', 'app', 'widgets')]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
