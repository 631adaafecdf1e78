"""The training timeline in the window: look back at an epoch, back to now, fork from there."""
import numpy as np
import torch

from app.training import TrainingController
from engine.trainer import Trainer
from tests.app.test_training import DONE, click, xor_spec
from tests.engine.test_timeline import hand_forward_proba
from widgets.views.boundary import BoundaryView


def finished_window(make_window, qtbot, epochs):
    win = make_window(xor_spec(epochs=epochs), start_engine=True, features=(TrainingController,))
    qtbot.waitUntil(lambda: win.engine.ready, timeout=60000)
    ctl = win.training
    click(ctl, "train")
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=60000)
    assert ctl.state == "finished"
    bar = ctl.timeline.bar
    qtbot.waitUntil(lambda: len(bar.epochs()) == epochs + 1, timeout=5000)
    return win, ctl, bar


def drag_to(bar, epoch, ctl, qtbot):
    before = ctl.model.snapshot
    bar.slider.setValue(bar.index_of(epoch))  # where a drag comes to rest; the bar waits for the rest
    qtbot.waitUntil(lambda: ctl.model.snapshot is not before and ctl.model.snapshot.at_epoch == epoch, timeout=10000)


def test_dragging_the_timeline_shows_the_old_model_and_back_to_now_returns(make_window, qtbot):
    torch.set_num_threads(1)
    win, ctl, bar = finished_window(make_window, qtbot, epochs=10)
    boundary = win.views.boundary
    final_image = boundary.image_rgba().copy()
    assert bar.slider.isEnabled() and bar.epochs().tolist() == list(range(11)), "epoch 0 and every epoch"
    assert "200 MB" in bar.toolTip()

    # quick moves: only where the drag rests is asked for
    bar.slider.setValue(bar.index_of(7))
    bar.slider.setValue(bar.index_of(4))
    drag_to(bar, 1, ctl, qtbot)
    snap = ctl.model.snapshot
    old_image = boundary.image_rgba().copy()
    assert not np.array_equal(old_image, final_image), "epoch 1's boundary differs from the final one"
    assert "epoch 1 of 10" in bar.label.text().lower()  # "Showing epoch 1 of 10", in a narrow dock "Epoch 1 of 10"
    assert win.views.curves.marker_epoch() == 1.0
    assert bar.live_button.isEnabled()

    # what a fresh model trained for one epoch shows: its weights, forward written out, drawn by a new view
    ref = Trainer(xor_spec(epochs=1), device="cpu")
    ref.run()
    res = snap.extras["boundary"].shape[0]
    xmin, xmax, ymin, ymax = snap.extras["boundary_extent"]
    gx, gy = np.meshgrid(np.linspace(xmin, xmax, res), np.linspace(ymin, ymax, res))
    state = {k: v.numpy() for k, v in ref.model.state_dict().items()}
    probs = hand_forward_proba(state, np.stack([gx.ravel(), gy.ravel()], 1)).reshape(res, res, 2)
    np.testing.assert_allclose(snap.extras["boundary"], probs, atol=1e-4)
    fresh = BoundaryView()
    fresh.set_boundary(probs.astype(np.float32), (xmin, xmax, ymin, ymax))
    assert np.abs(fresh.image_rgba().astype(int) - old_image.astype(int)).max() <= 1

    before = ctl.model.snapshot
    bar.live_button.click()
    qtbot.waitUntil(lambda: ctl.model.snapshot is not before and ctl.model.snapshot.at_epoch == -1, timeout=10000)
    qtbot.waitUntil(lambda: np.array_equal(boundary.image_rgba(), final_image), timeout=5000)
    assert win.views.curves.marker_epoch() is None and not bar.live_button.isEnabled()


def test_fork_from_here_continues_the_epochs_with_the_new_settings_and_keeps_the_old_curve(make_window, qtbot):
    torch.set_num_threads(1)
    win, ctl, bar = finished_window(make_window, qtbot, epochs=8)
    old_id = ctl.run.run_id
    drag_to(bar, 3, ctl, qtbot)
    win.document.set_training("lr", 0.002)  # the user changes the learning rate in the inspector
    bar.fork_button.click()
    qtbot.waitUntil(lambda: ctl.run.run_id != old_id, timeout=10000)
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=60000)
    snap = ctl.model.snapshot
    assert ctl.state == "finished"
    hist = win.views.curves.history()
    assert hist["epoch"].tolist() == list(range(4, 12)), "8 more epochs, numbered on from epoch 3"
    assert snap.epoch == 11 and abs(snap.lr - 0.002) < 1e-12
    curves = win.views.curves
    prev = curves.previous_history()
    assert prev is not None and prev["epoch"].tolist() == list(range(1, 9)), "the run before the fork stays"
    assert curves.legend.getLabel(curves.prev_curves["train_loss"]).text == "before fork"
    assert bar.epochs()[0] == 3, "the fork's timeline starts where it forked"
