"""File > Save run / Open run and crash restore, as a user meets them: the design, the curves, the
model and the epoch come back; Train goes on; a bad file leaves the open work alone; an app that
was killed offers its autosave at the next start."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from app.runfiles import RunFilesController
from app.training import TrainingController
from engine import runfile
from engine import spec as S
from tests.app.conftest import chain_spec
from tests.conftest import EXAMPLES, ROOT

FEATURES = (TrainingController, RunFilesController)


def xor_spec(epochs: int) -> S.Spec:
    spec = S.load(os.path.join(EXAMPLES, "xor.json"))
    spec.training.epochs = epochs
    spec.training.device = "cpu"
    return spec


@pytest.fixture
def window(make_window, qtbot, monkeypatch, tmp_path):
    monkeypatch.setenv("NEURAL_PLAYGROUND_DATA", str(tmp_path / "data"))

    def make(spec, **kw):
        win = make_window(spec, start_engine=True, features=FEATURES, **kw)
        qtbot.waitUntil(lambda: win.engine.ready, timeout=60000)
        errors: list[str] = []
        win.show_error = lambda title, text: errors.append(f"{title}: {text}")
        return win, win.training, errors

    return make


def _history(win) -> dict:
    return {k: np.asarray(v).copy() for k, v in win.views.curves.history().items()}


def test_saved_run_reopens_paused_with_its_model_and_curves_and_goes_on(window, qtbot, tmp_path):
    win, ctl, errors = window(xor_spec(epochs=24))
    files = win.runfiles
    assert {"save_run", "open_run"} <= {n for n, a in win.actions.items() if a in win.menus["file"].actions()}
    ctl.toolbar.set_pace(30.0)  # slow enough to pause half-way
    ctl.train()
    qtbot.waitUntil(lambda: ctl.model.snapshot is not None and ctl.model.snapshot.epoch >= 5, timeout=30000)
    ctl.pause()
    qtbot.waitUntil(lambda: ctl.state == "paused", timeout=10000)
    path = str(tmp_path / "xor.nprun")
    # (the autosave of the pause may be written meanwhile: wait for this file's signal)
    with qtbot.waitSignal(files.run_saved, timeout=10000, check_params_cb=lambda p, _n: p == path):
        assert files.save_run(path)
    saved = runfile.read_run(path)
    epoch = saved.epoch
    assert epoch >= 5 and "xor.nprun" in win.statusBar().currentMessage()
    weights = ctl.session.fetch_weights(ctl.run.run_id)
    qtbot.waitUntil(lambda: len(_history(win)["epoch"]) == epoch, timeout=5000)
    curves = _history(win)

    # another design in the window, then the run file
    ctl.reset()
    win.document.reset(chain_spec(), None)
    assert files.open_run(path)
    assert [lay.id for lay in win.document.spec.layers] == [lay.id for lay in xor_spec(1).layers]
    qtbot.waitUntil(lambda: ctl.state == "paused" and ctl.model.snapshot is not None, timeout=30000)
    snap = ctl.model.snapshot
    assert snap.epoch == epoch and snap.step == saved.state["step"]
    qtbot.waitUntil(lambda: len(_history(win)["epoch"]) == epoch, timeout=5000)
    for k in ("train_loss", "val_loss", "val_acc"):
        np.testing.assert_array_equal(_history(win)[k], curves[k], err_msg=k)
    reopened = ctl.session.fetch_weights(ctl.run.run_id)
    for k, v in weights.items():  # the views show the saved model, not a fresh one
        np.testing.assert_array_equal(reopened[k], v, err_msg=k)
    assert win.views.boundary.image_rgba() is not None
    assert f"epoch {epoch}" in win.statusBar().currentMessage()
    assert win.recent_files()[0] == path, "File > Open Recent lists the run"

    ctl.toolbar.set_pace(0.0)
    ctl.train()  # goes on from where it was saved
    qtbot.waitUntil(lambda: ctl.state == "finished", timeout=30000)
    hist = _history(win)
    assert ctl.model.snapshot.epoch == 24 and len(hist["epoch"]) == 24
    np.testing.assert_array_equal(hist["train_loss"][:epoch], curves["train_loss"])
    # paused half-way through an epoch, saved, reopened, trained on: the curves of a run never interrupted
    from engine.trainer import Trainer

    ref = Trainer(xor_spec(epochs=24), device="cpu", max_rate=0)
    ref.run()
    for k in ("train_loss", "train_acc", "val_loss", "val_acc"):
        np.testing.assert_allclose(hist[k], ref.history[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert not errors


def test_damaged_run_file_leaves_the_open_work_alone(window, qtbot, tmp_path):
    win, ctl, errors = window(xor_spec(epochs=3))
    ctl.train()
    qtbot.waitUntil(lambda: ctl.state == "finished", timeout=30000)
    good = str(tmp_path / "good.nprun")
    with qtbot.waitSignal(win.runfiles.run_saved, timeout=10000, check_params_cb=lambda p, _n: p == good):
        win.runfiles.save_run(good)
    data = open(good, "rb").read()
    bad = tmp_path / "cut.nprun"
    bad.write_bytes(data[: len(data) // 3])
    before = S.dumps(win.document.spec)
    assert not win.runfiles.open_run(str(bad))
    assert errors and "cut.nprun was not opened" in errors[0] and "current design is unchanged" in errors[0]
    assert S.dumps(win.document.spec) == before and ctl.state == "finished" and ctl.model.snapshot.epoch == 3


def test_modified_design_is_autosaved_and_removed_on_a_clean_exit(window, qtbot, monkeypatch):
    monkeypatch.setenv("NP_AUTOSAVE_S", "0.2,60")
    win, _ctl, _errors = window(xor_spec(epochs=3))
    files = win.runfiles
    assert os.path.isfile(files.lock_path)
    assert json.load(open(files.lock_path))["pid"] == os.getpid()
    win.document.set_name("edited xor")
    qtbot.waitUntil(lambda: os.path.isfile(files.autosave_path), timeout=5000)
    assert S.loads(runfile.read_run(files.autosave_path).spec_json).name == "edited xor"
    win.ask_save_changes = lambda: "discard"
    win.close()
    assert not os.path.exists(files.autosave_path) and not os.path.exists(files.lock_path)


def test_killed_app_offers_its_run_back_at_the_next_start(window, qtbot, tmp_path, monkeypatch):
    """The real app in a subprocess trains XOR and autosaves; SIGKILL; the next start restores it."""
    data = tmp_path / "data"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", NEURAL_PLAYGROUND_DATA=str(data), NP_AUTOSAVE_S="1,1",
               PYTHONPATH=ROOT)
    design = tmp_path / "xor.json"
    S.save(xor_spec(epochs=100000), design)  # still training when it is killed
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"), str(design), "--train"], env=env,
                            cwd=str(tmp_path), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    autosave = data / "autosave" / f"{proc.pid}.nprun"
    saved = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if autosave.exists():
                saved = runfile.read_run(autosave)
                if saved.state is not None and saved.epoch >= 1:
                    break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the app and its worker: a crash, no clean exit
        _out, err = proc.communicate(timeout=10)
    assert saved is not None and saved.epoch >= 1, f"no autosave of a run; stderr:\n{err.decode()[-2000:]}"
    assert (data / "autosave" / f"{proc.pid}.lock").exists()  # no clean exit removed it

    monkeypatch.setenv("NEURAL_PLAYGROUND_DATA", str(data))
    offers: list[str] = []
    monkeypatch.setattr(RunFilesController, "ask_restore_autosave", lambda self, text: offers.append(text) or True)
    win, ctl, errors = window(chain_spec())
    qtbot.waitUntil(lambda: bool(offers), timeout=10000)
    assert f"epoch {saved.epoch}" in offers[0] and "did not close properly" in offers[0]
    qtbot.waitUntil(lambda: ctl.state == "paused" and ctl.model.snapshot is not None, timeout=30000)
    assert win.document.spec.name == "XOR" and win.document.is_modified()
    assert ctl.model.snapshot.epoch == saved.epoch
    qtbot.waitUntil(lambda: len(win.views.curves.history()["epoch"]) == saved.epoch, timeout=5000)
    np.testing.assert_array_equal(win.views.curves.history()["train_loss"], saved.state["history"]["train_loss"])
    assert not (data / "autosave" / f"{proc.pid}.lock").exists()  # offered once, not again at the next start
    assert not errors


def _stale(folder, pid: int, name: str) -> str:
    """An autosave of the design ``name`` left by process ``pid``, as a session that never closed leaves it."""
    os.makedirs(folder, exist_ok=True)
    spec = chain_spec()
    spec.name = name
    path = os.path.join(folder, f"{pid}.nprun")
    runfile.write_run(path, S.dumps(spec))
    with open(os.path.join(folder, f"{pid}.lock"), "w") as fh:
        json.dump({"pid": pid}, fh)
    return path


@pytest.mark.parametrize("answer", [False, None], ids=["discard", "escape-keeps-it"])
def test_restore_offer_discard_deletes_and_escape_keeps(make_window, qtbot, monkeypatch, tmp_path, answer):
    folder = str(tmp_path / "data" / "autosave")
    monkeypatch.setenv("NEURAL_PLAYGROUND_DATA", str(tmp_path / "data"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_path = _stale(folder, int(dead.stdout), "crashed design")
    alive_path = _stale(folder, os.getppid(), "another open window")  # its process still runs: not offered
    offers: list[str] = []
    monkeypatch.setattr(RunFilesController, "ask_restore_autosave", lambda self, text: offers.append(text) or answer)
    win = make_window(xor_spec(3), features=FEATURES)
    qtbot.waitUntil(lambda: bool(offers), timeout=5000)
    qtbot.wait(100)
    assert len(offers) == 1 and "crashed design" in offers[0] and "not yet trained" in offers[0]
    assert win.document.spec.name == "XOR"  # nothing replaced the open design
    assert os.path.exists(dead_path) == (answer is None)
    assert os.path.exists(alive_path)


def test_reopened_cnn_run_shows_the_chosen_sample_and_saliency_method(window, qtbot, tmp_path):
    spec = S.load(os.path.join(EXAMPLES, "digits_cnn.json"))
    spec.training.device = "cpu"
    win, ctl, errors = window(spec)
    ctl.step()  # one batch, paused
    qtbot.waitUntil(lambda: ctl.state == "paused" and ctl.model.data is not None, timeout=30000)
    win.views.docks["feature_maps_dock"].raise_()
    win.views.feature_maps.set_current_index(7)
    win.views.docks["saliency_dock"].raise_()
    win.views.saliency.set_options("smoothgrad")
    win.views.saliency.options_changed.emit(win.views.saliency.options())  # as a user's pick says it
    qtbot.waitUntil(lambda: (ctl.model.view_options.get("saliency") or {}).get("method") == "smoothgrad", timeout=5000)
    path = str(tmp_path / "cnn.nprun")
    with qtbot.waitSignal(win.runfiles.run_saved, timeout=10000, check_params_cb=lambda p, _n: p == path):
        win.runfiles.save_run(path)
    ctl.reset()
    win.views.feature_maps.set_current_index(0)
    win.views.saliency.set_options("gradient")
    assert win.runfiles.open_run(path)
    qtbot.waitUntil(lambda: ctl.state == "paused" and ctl.model.data is not None, timeout=30000)
    qtbot.waitUntil(lambda: win.views.feature_maps.current_index() == 7, timeout=5000)
    assert win.views.saliency.options()["method"] == "smoothgrad"
    assert ctl.model.snapshot.step == 1 and not errors


def test_weights_that_do_not_fit_the_design_fail_with_a_message(window, qtbot, tmp_path):
    import zipfile

    from safetensors.numpy import load, save

    win, ctl, errors = window(xor_spec(epochs=2))
    ctl.train()
    qtbot.waitUntil(lambda: ctl.state == "finished", timeout=30000)
    good = str(tmp_path / "good.nprun")
    with qtbot.waitSignal(win.runfiles.run_saved, timeout=10000, check_params_cb=lambda p, _n: p == good):
        win.runfiles.save_run(good)
    with zipfile.ZipFile(good) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    weights = load(members["weights.safetensors"])
    name = next(k for k in weights if k.endswith("weight"))
    weights[name] = np.zeros((3, 3), np.float32)  # another shape than the design's layer
    members["weights.safetensors"] = save(weights)
    bad = str(tmp_path / "bad.nprun")
    with zipfile.ZipFile(bad, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    assert win.runfiles.open_run(bad)  # the file itself is well-formed
    qtbot.waitUntil(lambda: ctl.state == "error", timeout=30000)
    assert "size mismatch" in ctl.last_message and name.split(".")[-2] in ctl.last_message
    assert win.document.spec.name == "XOR" and not errors


def test_a_run_file_dropped_on_the_canvas_opens_the_run(window, qtbot, tmp_path):
    from PySide6.QtCore import QMimeData, QPoint, QUrl

    from tests.app.test_main_window import _drop

    win, ctl, _errors = window(xor_spec(epochs=3))
    ctl.train()
    qtbot.waitUntil(lambda: ctl.state == "finished", timeout=30000)
    path = str(tmp_path / "dropped.nprun")
    with qtbot.waitSignal(win.runfiles.run_saved, timeout=10000, check_params_cb=lambda p, _n: p == path):
        assert win.runfiles.save_run(path)
    ctl.reset()
    win.document.reset(chain_spec(), None)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path)])
    _drop(win.canvas, mime, QPoint(50, 50))
    assert [lay.id for lay in win.document.spec.layers] == [lay.id for lay in xor_spec(1).layers]
    qtbot.waitUntil(lambda: ctl.model.snapshot is not None and ctl.model.snapshot.epoch == 3, timeout=30000)
