"""The exported PyTorch project (engine.project): its model.py, data.py and train.py stand alone and
repeat the playground - same outputs, same data, same training run - and train.py scales out with
torchrun (gloo on CPU), checkpoints every epoch and resumes after a kill."""
import importlib.util
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from engine import datasets
from engine import spec as S
from engine.build import build
from engine.cli import export_project_main
from engine.project import ProjectError, export_project, trainer_state
from engine.trainer import Trainer
from tests.conftest import EXAMPLES

TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the subprocesses run with one thread too: the same float results
    yield
    torch.set_num_threads(before)


def example(name: str) -> S.Spec:
    spec = S.load(os.path.join(EXAMPLES, f"{name}.json"))
    spec.training.device = "cpu"
    return spec


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def small(spec: S.Spec) -> S.Spec:
    """Fewer samples of the generated sets, so the test stays quick."""
    for key, value in (("n_samples", 120), ("n_per_class", 10), ("n_points", 200)):
        if key in _param_names(spec.dataset.kind):
            spec.dataset.params[key] = value
    return spec


def _param_names(kind):
    from engine.datasets import images, regression, sequences

    for table in (datasets.DATASET_PARAMS, images.IMAGE_PARAMS, regression.PARAMS, sequences.PARAMS):
        if kind in table:
            return {p.name for p in table[kind]}
    return set()


@pytest.mark.parametrize("name", ["xor", "digits_cnn", "shapes_cnn", "residual_mlp", "deep_relu_he", "char_lstm",
                                  "attention_recall", "gru_forecast", "regression_sine"])
def test_model_py_gives_our_outputs_and_our_initial_weights(name, tmp_path):
    spec = small(example(name))
    export_project(spec, tmp_path / "p")
    mod = load_module(tmp_path / "p" / "model.py", f"model_{name}")
    data = datasets.load(spec.dataset)
    ours = build(spec, data.info)
    torch.manual_seed(spec.training.seed)
    net = mod.Net()
    assert net.state_dict().keys() == ours.state_dict().keys()
    for key, value in ours.state_dict().items():  # the seed gives the playground's starting weights
        assert torch.equal(net.state_dict()[key], value), key
    snapshot = torch.load(tmp_path / "p" / "snapshot.pt", weights_only=True)  # exported without training:
    assert all(torch.equal(snapshot["model"][k], v) for k, v in ours.state_dict().items())  # the initial weights
    trained = build(spec, data.info, seed=spec.training.seed + 1)  # other weights, as after training
    net.load_state_dict(trained.state_dict())  # our state_dict's keys fit as they are
    net.eval()
    trained.eval()
    x = torch.as_tensor(data.x_val[:50])
    with torch.no_grad():
        assert torch.equal(net(x), trained(x))


@pytest.mark.parametrize("kind, params", [("xor", {}), ("spiral", {"classes": 3, "x2_scale": 5.0, "scaling": "minmax"}),
                                          ("iris", {}), ("reg_gaussians", {}), ("recall", {"n_samples": 80}),
                                          ("chars", {"n_samples": 80}), ("shapes", {"n_per_class": 10}), ("csv", None)])
def test_data_py_makes_the_same_arrays_without_the_engine(kind, params, tmp_path):
    if params is None:  # a user's file, read from its path
        rng = np.random.default_rng(3)
        path = tmp_path / "points.csv"
        path.write_text("a,b,label\n" + "".join(f"{rng.normal():.5f},{rng.normal():.5f},{'yes' if i % 3 else 'no'}\n"
                                                 for i in range(45)))
        params = {"path": str(path)}
    from engine.project.data_code import data_source, write_extras

    ds = S.DatasetSpec(kind, params)
    out = tmp_path / "p"
    out.mkdir()
    (out / "data.py").write_text(data_source(ds))
    write_extras(ds, str(out))
    # a fresh interpreter that cannot import the engine: data.py stands alone
    code = ("import sys; sys.modules['engine'] = None; sys.path.insert(0, sys.argv[1]); import data, numpy as np; "
            "np.savez(sys.argv[2], *data.load())")
    r = subprocess.run([sys.executable, "-c", code, str(out), str(tmp_path / "arrays.npz")], capture_output=True,
                       text=True, timeout=60, cwd=str(tmp_path), env=ENV)
    assert r.returncode == 0, r.stderr
    ref = datasets.load(ds)
    with np.load(tmp_path / "arrays.npz") as got:
        for i, want in enumerate((ref.x_train, ref.y_train, ref.x_val, ref.y_val)):
            a = got[f"arr_{i}"]
            assert a.dtype == want.dtype and np.array_equal(a, want), (kind, i)


def dropout_xor(epochs=3) -> S.Spec:
    """xor with what makes a run hard to repeat: dropout draws, L1/L2, clipping, a step schedule, SGD momentum."""
    spec = example("xor")
    spec.dataset.params["n_points"] = 240
    lay = spec.layer("act1") or next(lay for lay in spec.layers if lay.kind == "Activation")
    spec.layers.append(S.LayerSpec("drop1", "Dropout", {"rate": 0.2}))
    after = spec.outputs_of(lay.id)[0]
    spec.edges = [e for e in spec.edges if not (e.src == lay.id and e.dst == after)]
    spec.edges += [S.EdgeSpec(lay.id, "drop1"), S.EdgeSpec("drop1", after)]
    t = spec.training
    t.epochs, t.optimizer, t.lr, t.batch_size = epochs, "sgd", 0.1, 25  # 192 train samples: a last batch of 17
    t.l1, t.l2, t.grad_clip, t.lr_schedule, t.step_size, t.gamma = 1e-4, 1e-3, 1.0, "step", 2, 0.5
    return spec


def run_train_py(folder, *args, timeout=120):
    return subprocess.run([sys.executable, "train.py", *args], cwd=folder, capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def history(folder):
    return torch.load(os.path.join(folder, "checkpoints", "last.pt"), weights_only=True)["history"]


def assert_same_history(got, want, epochs):
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        np.testing.assert_allclose(got[key][-len(epochs):], [want[key][e - 1] for e in epochs], rtol=1e-6, atol=1e-9,
                                   err_msg=key)


def test_python_train_py_repeats_our_trainer_run(tmp_path):
    spec = dropout_xor(epochs=3)
    export_project(spec, tmp_path / "p")
    r = run_train_py(tmp_path / "p")
    assert r.returncode == 0, r.stderr
    assert "epoch 3/3" in r.stdout
    want = Trainer(spec).run().history
    assert_same_history(history(tmp_path / "p"), want, [1, 2, 3])


def test_resume_from_the_snapshot_continues_the_playground_run(tmp_path):
    spec = dropout_xor(epochs=4)
    full = Trainer(spec).run().history
    tr = Trainer(spec, epochs=2)  # the playground stopped after two epochs ...
    tr.run()
    export_project(tr.spec, tmp_path / "p", trainer_state(tr))
    snap = torch.load(tmp_path / "p" / "snapshot.pt", weights_only=True)  # plain tensors and numbers only
    assert snap["epoch"] == 2 and snap["optimizer"]["state"]
    r = run_train_py(tmp_path / "p", "--resume", "snapshot.pt", "--epochs", "4")  # ... and train.py goes on
    assert r.returncode == 0, r.stderr
    assert "after epoch 2" in r.stdout and "epoch 3/4" in r.stdout and "epoch 1/4" not in r.stdout
    got = history(tmp_path / "p")
    assert len(got["train_loss"]) == 4
    assert_same_history(got, full, [1, 2, 3, 4])  # as if the run had never left the playground


def _torchrun(folder, *args, **kw):
    return subprocess.Popen([TORCHRUN, "--standalone", "--nproc-per-node=2", "train.py", *args], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
                            start_new_session=True, **kw)


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (torchrun starts its workers in sessions of their own)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo += [int(k) for k in fh.read().split()]
        except OSError:
            pass
    for p in found:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.skipif(not os.path.exists(TORCHRUN), reason="torchrun is not installed next to this Python")
def test_torchrun_two_processes_learn_and_resume_after_a_kill(tmp_path):
    spec = example("xor")
    export_project(spec, tmp_path / "p")
    last = tmp_path / "p" / "checkpoints" / "last.pt"
    proc = _torchrun(tmp_path / "p", "--epochs", "100000")
    try:
        deadline = time.monotonic() + 90
        epoch = 0
        while time.monotonic() < deadline and epoch < 3:
            time.sleep(0.2)
            assert proc.poll() is None, proc.stdout.read()
            if last.exists():
                epoch = torch.load(last, weights_only=True)["epoch"]
        assert epoch >= 3, "no checkpoint after three epochs"
    finally:
        _kill_tree(proc.pid)  # a real kill: torchrun and both workers, mid-epoch
        out = proc.communicate(timeout=60)[0]
    assert "training on 2 x cpu" in out
    killed = torch.load(last, weights_only=True)
    done = killed["epoch"]
    losses = killed["history"]["train_loss"]
    assert len(losses) == done and losses[-1] < 0.7 * losses[0], losses  # two processes learn together

    proc = _torchrun(tmp_path / "p", "--epochs", str(done + 2))
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    assert f"after epoch {done}" in out and f"epoch {done + 1}/{done + 2}" in out and "epoch 1/" not in out
    resumed = torch.load(last, weights_only=True)
    assert resumed["epoch"] == done + 2
    assert resumed["history"]["train_loss"][:done] == losses  # the history goes on, not over


def test_gan_and_vae_designs_are_refused_with_the_reason(tmp_path):
    for name, word in (("gan_ring", "GAN"), ("vae_digits", "VAE"), ("autoencoder_digits", "autoencoder")):
        with pytest.raises(ProjectError, match=word):
            export_project(example(name), tmp_path / name)
        assert not (tmp_path / name).exists(), "nothing is written for a design that cannot be exported"


def test_the_cli_writes_the_project_and_refuses_a_busy_folder(tmp_path, capsys):
    out = tmp_path / "xor_project"
    assert export_project_main([os.path.join(EXAMPLES, "xor.json"), str(out)]) == 0
    names = {"model.py", "data.py", "train.py", "snapshot.pt", "config.json", "requirements.txt", "README.md"}
    assert names <= set(os.listdir(out))
    assert S.load(out / "config.json").to_dict() == S.load(os.path.join(EXAMPLES, "xor.json")).to_dict()
    readme = (out / "README.md").read_text()
    assert "torchrun --nnodes=2" in readme and "--rdzv-endpoint HOST:PORT" in readme
    assert "scikit-learn" not in (out / "requirements.txt").read_text()
    capsys.readouterr()
    busy = tmp_path / "home"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert export_project_main([os.path.join(EXAMPLES, "xor.json"), str(busy)]) == 2
    assert "not empty" in capsys.readouterr().err and not (busy / "model.py").exists()
    assert export_project_main([os.path.join(EXAMPLES, "gan_ring.json"), str(tmp_path / "gan")]) == 2
    assert "GAN" in capsys.readouterr().err
