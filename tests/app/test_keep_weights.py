"""Editing the network of a trained run keeps what it learnt: the user widens a layer while paused,
chooses "Continue with the learned weights", and the new run starts where the old one was."""
import os

from app.training import KEEP_WEIGHTS, RESTART
from engine import spec as S
from tests.conftest import EXAMPLES


def xor_spec() -> S.Spec:
    spec = S.load(os.path.join(EXAMPLES, "xor.json"))  # dense1 (8) -> tanh -> dense2 (8) -> tanh -> output1
    spec.training.epochs = 100000
    spec.training.device = "cpu"
    return spec


def first_epoch(ctl, qtbot, run_id):
    """(val loss, val accuracy) of the run's first epoch, as its curves show them."""
    qtbot.waitUntil(lambda: ctl.run.run_id == run_id and ctl.model.snapshot is not None
                    and ctl.model.snapshot.epoch >= 1, timeout=30000)
    hist = ctl.model.snapshot.history
    return float(hist["val_loss"][0]), float(hist["val_acc"][0])


def test_widening_while_paused_continues_from_the_learned_weights(make_window, qtbot):
    from app.training import TrainingController

    win = make_window(xor_spec(), start_engine=True, features=(TrainingController,))
    ctl = win.training
    qtbot.waitUntil(lambda: win.engine.ready, timeout=60000)
    asked = []
    ctl.ask_keep_weights = lambda: asked.append(ctl.state) or KEEP_WEIGHTS

    ctl.train()
    qtbot.waitUntil(lambda: ctl.model.snapshot is not None and ctl.model.snapshot.val_acc >= 0.97, timeout=60000)
    ctl.pause()
    qtbot.waitUntil(lambda: ctl.state == "paused", timeout=10000)
    first = ctl.run.run_id

    win.document.set_param("dense1", "units", 16)
    assert asked == ["paused"], "the structural edit asks once what to do with the learned weights"
    qtbot.waitUntil(lambda: ctl.run.run_id != first and "Kept" in win.statusBar().currentMessage(), timeout=30000)
    text = win.statusBar().currentMessage()
    assert "Kept the weights of output1" in text
    assert "dense1 widened 8 -> 16 (old units kept)" in text and "dense2 inputs 8 -> 16 (old inputs kept)" in text
    assert "optimiser restarted" in text
    kept_loss, kept_acc = first_epoch(ctl, qtbot, ctl.run.run_id)

    # an activation change keeps every weight (asked again: the answer belongs to each edit)
    second = ctl.run.run_id
    win.document.set_param("act2", "function", "relu")
    qtbot.waitUntil(lambda: ctl.run.run_id != second and "Kept" in win.statusBar().currentMessage(), timeout=30000)
    assert len(asked) == 2
    assert win.statusBar().currentMessage() == "Kept the weights of dense1, dense2, output1; optimiser restarted"

    # the same widened design from scratch, for comparison
    win.document.undo_stack.undo()  # relu -> tanh again
    ctl.ask_keep_weights = lambda: RESTART
    ctl.reset()
    ctl.train()
    fresh_loss, fresh_acc = first_epoch(ctl, qtbot, ctl.run.run_id)
    ctl.stop()
    assert kept_acc >= 0.9, f"continued runs start near the old accuracy, got {kept_acc:.1%} after one epoch"
    assert kept_loss < 0.5 * fresh_loss, (kept_loss, fresh_loss)
    print(f"first-epoch val loss: kept {kept_loss:.4f} ({kept_acc:.1%}), fresh {fresh_loss:.4f} ({fresh_acc:.1%})")


def test_removing_a_layer_after_training_asks_once_the_design_can_train(make_window, qtbot):
    from app.training import TrainingController

    spec = xor_spec()
    spec.training.epochs = 5
    win = make_window(spec, start_engine=True, features=(TrainingController,))
    ctl = win.training
    qtbot.waitUntil(lambda: win.engine.ready, timeout=60000)
    asked = []
    ctl.ask_keep_weights = lambda: asked.append(ctl.state) or KEEP_WEIGHTS
    ctl.train()
    qtbot.waitUntil(lambda: ctl.state == "finished", timeout=60000)
    first = ctl.run.run_id

    win.document.delete_layers(["dense2", "act2"])
    assert not asked, "a design that cannot train yet (output1 is cut off) is not offered"
    assert win.document.connect("act1", "output1") is None
    assert asked == ["finished"]
    # a 5-epoch run may finish (and say so) before the test looks: collect what the status bar showed
    shown = []
    win.statusBar().messageChanged.connect(shown.append)
    qtbot.waitUntil(lambda: ctl.run.run_id != first and any("Kept" in m for m in shown), timeout=30000)
    kept = "Kept the weights of dense1, output1; removed: dense2; optimiser restarted"
    assert [m for m in shown if m.startswith("Kept")] == [kept]
    qtbot.waitUntil(lambda: ctl.state == "finished", timeout=60000)
    # the end of a short run still says what it began from
    qtbot.waitUntil(lambda: win.statusBar().currentMessage().startswith("Finished"), timeout=10000)
    assert win.statusBar().currentMessage().endswith(kept)
    # opening another design (New, Open, an example) is no edit of this run: nothing is asked
    win.document.reset(xor_spec())  # the run's design has no dense2: another structure
    qtbot.wait(200)
    assert asked == ["finished"]
