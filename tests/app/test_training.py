"""Live training in the main window, as a user drives it: toolbar, views, edits while running, export."""
import os

import numpy as np
import pytest
import torch

from app.session import wait_until
from app.training import TrainingController
from engine import spec as S
from tests.conftest import EXAMPLES

DONE = ("finished", "stopped", "diverged", "error")


@pytest.fixture
def trainer_window(make_window, qtbot):
    """make(spec) -> (window, controller) with the engine loaded."""

    def make(spec, **kw):
        win = make_window(spec, start_engine=True, features=(TrainingController,), **kw)
        qtbot.waitUntil(lambda: win.engine.ready, timeout=60000)
        return win, win.training

    return make


def xor_spec(epochs=60) -> S.Spec:
    spec = S.load(os.path.join(EXAMPLES, "xor.json"))
    spec.training.epochs = epochs
    spec.training.device = "cpu"  # the example says "auto" = cuda on a GPU machine; tests read "CPU", CPU numbers
    return spec


def refreshed_step(ctl, qtbot) -> int:
    """The step of a snapshot the worker makes now (not one already delivered)."""
    from engine.protocol import Refresh

    before = ctl.model.snapshot
    ctl.session.send(Refresh(ctl.run.run_id))
    qtbot.waitUntil(lambda: ctl.model.snapshot is not before, timeout=5000)
    return ctl.model.snapshot.step


def click(ctl, name):
    act = ctl.toolbar.actions_by_name()[name]
    assert act.isEnabled(), f"{name} should be enabled in state {ctl.state}"
    act.trigger()


def test_xor_trains_to_full_accuracy_and_the_views_follow(trainer_window, qtbot):
    win, ctl = trainer_window(xor_spec())
    images = []

    def grab(_snap):
        im = win.views.boundary.image_rgba()  # views are drawn on a render tick, so the first may not be there yet
        if im is not None:
            images.append(im.copy())

    ctl.session.snapshot_ready.connect(lambda _rid, snap: grab(snap))
    ctl.toolbar.set_pace(30.0)  # at full speed (engine.fused) the 60 epochs take a fraction of a second
    click(ctl, "train")
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=60000)
    snap = ctl.model.snapshot
    assert ctl.state == "finished"
    assert snap.val_acc == 1.0, f"XOR should reach 100 % validation accuracy, got {snap.val_acc:.1%}"
    # the decision boundary changed as the network learnt
    assert len(images) >= 3
    assert any(not np.array_equal(images[0], im) for im in images[1:])
    # curves hold one point per epoch
    hist = win.views.curves.history()
    assert len(hist["epoch"]) == snap.epoch == 60
    # the canvas shows neuron thumbnails and weight lines between small dense layers
    strip = win.canvas.node_item("dense1").strip
    assert strip is not None and strip.isVisible() and strip.n_units == 8, "one neuron thumbnail per unit"
    assert win.canvas.weight_line_items("act1", "dense2"), "weights between small Dense layers are drawn"
    # the status bar reports the device and progress
    text = ctl.status.text()
    assert "CPU" in text and "60" in text


def test_pause_step_stop_and_the_toolbar_follows(trainer_window, qtbot):
    win, ctl = trainer_window(xor_spec(epochs=100000))
    click(ctl, "train")
    qtbot.waitUntil(lambda: ctl.state == "running", timeout=30000)
    assert not ctl.toolbar.actions_by_name()["train"].isEnabled()
    click(ctl, "pause")
    qtbot.waitUntil(lambda: ctl.state == "paused", timeout=5000)
    step = ctl.model.run.step
    qtbot.wait(200)
    assert refreshed_step(ctl, qtbot) == step, "nothing trains while paused"
    click(ctl, "step")
    qtbot.waitUntil(lambda: ctl.model.snapshot.step == step + 1, timeout=5000)
    qtbot.wait(200)
    assert refreshed_step(ctl, qtbot) == step + 1, "Step trains exactly one batch"
    click(ctl, "train")  # resume
    qtbot.waitUntil(lambda: ctl.model.run.step > step + 10, timeout=5000)
    click(ctl, "stop")
    assert wait_until(lambda: not ctl.model.active, 0.5), "Stop takes effect within 0.5 s"
    assert ctl.state == "stopped"
    assert ctl.toolbar.actions_by_name()["train"].isEnabled()


def test_step_from_idle_trains_one_batch(trainer_window, qtbot):
    win, ctl = trainer_window(xor_spec())
    click(ctl, "step")
    qtbot.waitUntil(lambda: ctl.model.snapshot is not None and ctl.model.snapshot.step == 1, timeout=30000)
    qtbot.wait(200)
    assert refreshed_step(ctl, qtbot) == 1
    assert ctl.state == "paused"


def test_train_wins_over_a_pause_the_window_has_not_heard_of_yet(trainer_window, qtbot):
    """Train is always the last word: a Step pauses the run a moment before the window hears of it,
    and a Train given meanwhile (the window still showing "starting" or "running") was dropped, so the
    run stayed paused (bench/reliability.py: "train -> running (state paused)")."""
    win, ctl = trainer_window(xor_spec(epochs=100000))

    def still_training() -> bool:
        first = refreshed_step(ctl, qtbot)
        qtbot.wait(300)
        return ctl.state == "running" and refreshed_step(ctl, qtbot) > first

    ctl.step()  # a run started paused, to take one batch...
    assert ctl.state == "starting"
    ctl.train()  # ...and Train before it was even built
    qtbot.waitUntil(lambda: ctl.state == "running" and ctl.run.step > 20, timeout=30000)
    assert still_training(), "Train given while the run was starting must leave it running"

    ctl.step()  # pauses after one more batch; the window still shows "running"
    assert ctl.state == "running"
    ctl.train()
    qtbot.wait(500)  # the Step's "paused" report, if any, has arrived by now
    assert still_training(), "Train given after a Step must leave the run running"


def test_absurd_learning_rate_ends_with_the_divergence_message(trainer_window, qtbot):
    spec = xor_spec(epochs=50)
    spec.training.optimizer, spec.training.loss, spec.training.lr = "sgd", "mse", 1e6
    win, ctl = trainer_window(spec)
    click(ctl, "train")
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=30000)
    assert ctl.state == "diverged"
    assert "learning rate" in ctl.last_message
    assert "learning rate" in win.statusBar().currentMessage()
    weights = ctl.session.fetch_weights(ctl.run.run_id)
    assert weights and all(np.isfinite(w).all() for w in weights.values()), "last good weights kept"
    assert win.isVisible()


def test_lr_change_applies_while_running(trainer_window, qtbot):
    win, ctl = trainer_window(xor_spec(epochs=100000))
    click(ctl, "train")
    qtbot.waitUntil(lambda: ctl.state == "running", timeout=30000)
    win.document.set_training("lr", 0.0005)
    qtbot.waitUntil(lambda: abs(ctl.model.snapshot.lr - 0.0005) < 1e-12, timeout=5000)
    assert ctl.state == "running", "a live setting does not restart training"
    click(ctl, "stop")


def test_structural_edit_pauses_and_asks_to_restart(trainer_window, qtbot):
    win, ctl = trainer_window(xor_spec(epochs=100000))
    asked = []
    ctl.ask_keep_weights = lambda: asked.append(ctl.state) or "restart"
    click(ctl, "train")
    qtbot.waitUntil(lambda: ctl.state == "running" and ctl.model.run.step > 20, timeout=30000)
    first = ctl.run.run_id
    win.document.set_param("dense1", "units", 4)
    assert asked, "a structural edit during training asks whether to restart"
    qtbot.waitUntil(lambda: ctl.run.run_id != first and ctl.state == "running" and ctl.run.step > 0, timeout=30000)
    assert ctl.session.fetch_weights(ctl.run.run_id)["layers.dense1.weight"].shape == (4, 2)
    click(ctl, "stop")


def test_export_to_a_bad_place_says_why_and_training_goes_on(trainer_window, qtbot, tmp_path):
    win, ctl = trainer_window(xor_spec(epochs=100000))
    click(ctl, "train")
    qtbot.waitUntil(lambda: ctl.state == "running" and ctl.model.run.step > 5, timeout=30000)
    target = tmp_path / "missing" / "w.safetensors"
    assert not ctl.export_weights(str(target)), "a folder that does not exist is refused before anything is sent"
    assert "Export failed" in ctl.last_message and "does not exist" in ctl.last_message
    ctl.last_message = ""
    # the folder vanishes between the check and the write: the worker's error reaches the user
    from engine.protocol import ExportWeights

    with qtbot.waitSignal(ctl.session.exported, timeout=20000) as sig:
        ctl.session.send(ExportWeights(ctl.run.run_id, str(target)))
    assert sig.args[0].error
    assert "Export failed" in ctl.last_message and str(target) in ctl.last_message
    step = ctl.model.run.step
    qtbot.waitUntil(lambda: ctl.model.run.step > step + 10, timeout=5000)
    assert ctl.state == "running"
    assert not ctl.export_weights(str(tmp_path / "w.docx")), "an unknown format is refused before anything is sent"
    assert "Export failed" in ctl.last_message
    click(ctl, "stop")


def test_closing_during_training_is_clean(trainer_window, qtbot):
    from PySide6.QtCore import qInstallMessageHandler

    messages = []
    old = qInstallMessageHandler(lambda _mode, _ctx, msg: messages.append(msg))
    try:
        win, ctl = trainer_window(xor_spec(epochs=100000))
        click(ctl, "train")
        qtbot.waitUntil(lambda: ctl.state == "running", timeout=30000)
        win.ask_save_changes = lambda: "discard"
        import time

        pid = ctl.session.pid
        t0 = time.perf_counter()
        assert win.close()
        assert time.perf_counter() - t0 < 1.0, "closing during training is instant"
        assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 2), "the worker process is gone"
    finally:
        qInstallMessageHandler(old)
    assert not [m for m in messages if "QThread" in m], messages


def test_exported_weights_reload_and_predict_the_same(trainer_window, qtbot, tmp_path):
    from engine import datasets, export
    from engine.build import build

    win, ctl = trainer_window(xor_spec(epochs=20))
    click(ctl, "train")
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=60000)
    data = datasets.load(ctl.model_spec.dataset)
    x = torch.as_tensor(data.x_val)
    trained = build(ctl.model_spec, data.info, seed=7)
    trained.load_state_dict({k: torch.from_numpy(v) for k, v in ctl.session.fetch_weights(ctl.run.run_id).items()})
    trained.eval()
    with torch.no_grad():
        expected = trained(x)
    for name in ("w.safetensors", "w.pt"):
        path = str(tmp_path / name)
        with qtbot.waitSignal(ctl.session.exported, timeout=20000) as sig:
            assert ctl.export_weights(path)
        assert sig.args[0].error == "" and sig.args[0].path == path
        fresh = build(ctl.model_spec, data.info, seed=123)
        export.load_weights_into(fresh, path)
        fresh.eval()
        with torch.no_grad():
            assert torch.equal(fresh(x), expected), name


def test_metrics_export_to_csv(trainer_window, qtbot, tmp_path):
    win, ctl = trainer_window(xor_spec(epochs=5))
    click(ctl, "train")
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=60000)
    path = tmp_path / "m.csv"
    win.views.curves.export_csv(str(path))
    rows = path.read_text().strip().splitlines()
    assert rows[0].startswith("epoch,train_loss")
    assert len(rows) == 1 + 5


def test_second_run_keeps_the_previous_curve(trainer_window, qtbot):
    win, ctl = trainer_window(xor_spec(epochs=3))
    for _ in range(2):
        click(ctl, "train")
        qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=60000)
    curves = win.views.curves
    assert curves._previous is not None and len(curves._previous["epoch"]) == 3, "the first run stays as a faint line"
    assert curves.prev_curves["train_loss"].getData()[0] is not None


def test_a_gpu_out_of_memory_moves_the_run_to_the_cpu_in_the_window(trainer_window, qtbot, monkeypatch):
    """No GPU here: the worker runs in a thread of this process, and its trainer is told it is on
    CUDA and fails the way a full GPU does. The user sees a notice and the run goes on."""
    monkeypatch.setenv("NP_TRAIN_IN_THREAD", "1")
    from engine import trainer as T

    real_run = T.Trainer.run_with_cpu_fallback

    def on_a_full_gpu(self, notify=None):
        self.device = torch.device("cuda")
        real_forward, calls = self.model.forward, {"n": 0}

        def forward(x):
            calls["n"] += 1
            if calls["n"] == 20:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return real_forward(x)

        self.model.forward = forward
        return real_run(self, notify)

    monkeypatch.setattr(T.Trainer, "run_with_cpu_fallback", on_a_full_gpu)
    win, ctl = trainer_window(xor_spec(epochs=40))
    assert ctl.session.in_thread
    click(ctl, "train")
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=60000)
    assert ctl.state == "finished" and ctl.model.snapshot.epoch == 40, "the run went on to the end"
    assert "GPU error" in ctl.last_message and "CPU" in ctl.last_message
    assert ctl.model.run.result.device == "CPU"


def test_reading_a_big_image_folder_shows_progress_and_stop_cancels_it(trainer_window, qtbot, tmp_path):
    rng = np.random.default_rng(0)
    for c in range(3):
        (tmp_path / f"c{c}").mkdir()
        for i in range(1500):
            (tmp_path / f"c{c}" / f"{i}.pgm").write_bytes(b"P5 8 8 255\n" + rng.integers(0, 256, 64, np.uint8).tobytes())
    spec = S.Spec(name="folder", dataset=S.DatasetSpec("image_folder", {"path": str(tmp_path), "size": 8}))
    spec.layers = [S.LayerSpec("input1", "Input"), S.LayerSpec("flat", "Flatten"), S.LayerSpec("output1", "Output")]
    spec.edges = [S.EdgeSpec("input1", "flat"), S.EdgeSpec("flat", "output1")]
    spec.training.epochs, spec.training.device = 1, "cpu"
    win, ctl = trainer_window(spec)
    shown = []

    def on_progress(_rid, what, done, total):
        shown.append(win.statusBar().currentMessage())
        if len(shown) == 1:
            ctl.stop()  # the user presses Stop while the pictures are read

    ctl.session.progress.connect(on_progress)
    click(ctl, "train")
    qtbot.waitUntil(lambda: ctl.state == "stopped", timeout=60000)
    assert "Reading images: 0 of 3,000" in shown[0]
    assert ctl.toolbar.actions_by_name()["train"].isEnabled()
    ctl.session.progress.disconnect(on_progress)
    click(ctl, "train")  # and a new Train reads the folder to the end and trains
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=90000)
    assert ctl.state == "finished"


def test_the_speed_control_slows_a_fast_run_down_and_full_speed_is_the_default(trainer_window, qtbot):
    spec = S.load(os.path.join(EXAMPLES, "playground_default.json"))
    spec.training.epochs, spec.training.device = 100000, "cpu"
    win, ctl = trainer_window(spec)
    assert ctl.toolbar.pace() == (0.0, False)  # full speed unless asked
    ctl.toolbar.set_pace(5.0)
    click(ctl, "train")
    qtbot.waitUntil(lambda: ctl.model.snapshot is not None and ctl.model.snapshot.epoch >= 3, timeout=30000)
    snap = ctl.model.snapshot
    # the trainer's own clock: at most 5 epochs a second (and one batch of slack)
    assert snap.epoch <= 5 * snap.elapsed + 1, f"epoch {snap.epoch} after {snap.elapsed:.2f} s"
    assert "epoch" in ctl.status.text()
    ctl.toolbar.set_pace(0.0)  # while running: applies at once
    start = snap.epoch
    qtbot.waitUntil(lambda: ctl.model.snapshot.epoch > start + 30, timeout=30000)
    a = ctl.model.snapshot
    qtbot.waitUntil(lambda: ctl.model.snapshot.elapsed > a.elapsed + 2.0, timeout=30000)
    b = ctl.model.snapshot
    rate = (b.epoch - a.epoch) / (b.elapsed - a.elapsed)  # hundreds on an idle machine; 2x the cap leaves room for load
    assert rate > 10, f"full speed should be far above the 5 epochs/s cap: {rate:.1f} epochs/s ({a.epoch} -> {b.epoch})"
    click(ctl, "stop")
    qtbot.waitUntil(lambda: not ctl.model.active, timeout=10000)
