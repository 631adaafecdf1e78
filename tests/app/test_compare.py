"""Compare runs (issue 12) as a user drives it: sweep the XOR example's learning rate, train all, watch."""
import csv
import math
import os

import numpy as np
import pytest

from app.compare import CompareController, parse_values
from app.training import TrainingController
from engine import spec as S
from tests.conftest import EXAMPLES

LRS = ["0.01", "0.03", "0.1", "0.3", "1"]


def xor_spec(epochs: int) -> S.Spec:
    spec = S.load(os.path.join(EXAMPLES, "xor.json"))
    spec.training.epochs = epochs
    spec.training.device = "cpu"
    return spec


@pytest.fixture
def compare_window(make_window, qtbot):
    def make(spec, engine=True):
        win = make_window(spec, start_engine=engine, features=(TrainingController, CompareController))
        if engine:
            qtbot.waitUntil(lambda: win.engine.ready, timeout=60000)
        return win, win.compare

    return make


def choose(view, k: int, setting: str, text: str) -> None:
    combo = view.setting_combos[k]
    i = combo.findData(setting)
    assert i >= 0, f"{setting} should be offered"
    combo.setCurrentIndex(i)
    view.value_edits[k].setText(text)


def expected_params(spec: S.Spec) -> int:
    """Weights + biases of the Dense/Output chain, counted by hand from the layer sizes (2 inputs, 2 classes)."""
    units = [2] + [lay.params["units"] for lay in spec.layers if lay.kind == "Dense"] + [2]
    return sum(a * b + b for a, b in zip(units, units[1:], strict=False))


def test_sweeping_the_xor_learning_rate_trains_five_variants_side_by_side(compare_window, qtbot, tmp_path):
    spec = xor_spec(epochs=3000)  # long enough to still be training when one variant is stopped
    win, cmp = compare_window(spec)
    view = cmp.view
    win.actions["compare"].trigger()
    assert cmp.dock.isVisible()
    choose(view, 0, "training.lr", ", ".join(LRS))
    view.train_button.click()
    assert view.problem() == ""
    assert len(view.tiles) == 5

    # what the user sees after a few seconds: five curves, five boundaries that differ, five rows
    qtbot.waitUntil(lambda: view.curve_count() == 5, timeout=60000)  # includes the worker's start on a busy box
    qtbot.waitUntil(lambda: all(im is not None for im in view.tile_images()), timeout=30000)

    def all_differ():
        ims = view.tile_images()
        return all(not np.array_equal(ims[a], ims[b]) for a in range(5) for b in range(a + 1, 5))

    qtbot.waitUntil(all_differ, timeout=30000)
    qtbot.waitUntil(lambda: all(r[4] != "-" for r in view.table_rows()), timeout=30000)
    rows = {r[0]: r for r in view.table_rows()}
    assert sorted(rows) == sorted(f"lr={v}" for v in LRS)
    for v in LRS:
        row = rows[f"lr={v}"]
        assert float(row[1]) == float(v)
        assert int(row[2].replace(",", "")) == expected_params(spec)
        acc = float(row[4].rstrip(" %"))
        assert math.isfinite(acc) and 0 <= acc <= 100

    # stopping one variant leaves the others running
    view.select(0)
    view.stop_variant_button.click()
    qtbot.waitUntil(lambda: cmp.snaps[0].state == "stopped", timeout=30000)
    steps = [cmp.snaps[i].step for i in range(1, 5)]
    stopped_at = cmp.snaps[0].step
    qtbot.waitUntil(lambda: all(cmp.snaps[i].step > s for i, s in zip(range(1, 5), steps, strict=True)), timeout=30000)
    assert all(cmp.snaps[i].state != "stopped" for i in range(1, 5))
    assert cmp.snaps[0].step == stopped_at
    view.stop_button.click()
    qtbot.waitUntil(lambda: cmp.state == "ended", timeout=30000)
    # once ended, the table's best accuracy and its epoch are those of each variant's own final history
    rows = {r[0]: r for r in view.table_rows()}
    for i, v in enumerate(LRS):
        acc = cmp.snaps[i].history["val_acc"]
        loss = cmp.snaps[i].history["val_loss"]
        assert float(rows[f"lr={v}"][4].rstrip(" %")) == pytest.approx(100 * np.nanmax(acc), abs=0.06)
        assert int(rows[f"lr={v}"][6]) == int(np.nanargmin(loss)) + 1

    # the table exports as CSV, five rows under a header
    out = tmp_path / "cmp.csv"
    assert cmp.export_csv(str(out))
    with open(out, newline="") as f:
        table = list(csv.reader(f))
    assert table[0][:2] == ["Variant", "lr"] and len(table) == 6
    png = tmp_path / "grid.png"
    assert cmp.export_png(str(png)) and png.stat().st_size > 1000

    # "Use this variant" makes it the design (undoable) and the next Train starts from its trained weights:
    # after one Adam step at lr 0.01 no weight is more than 0.01 from the variant's
    view.select(0)
    view.use_button.click()
    assert win.document.spec.training.lr == pytest.approx(0.01)
    qtbot.waitUntil(lambda: win.training.initial_state is not None, timeout=30000)
    trained = {k: np.array(v) for k, v in win.training.initial_state[1].items()}
    win.training.step()  # a run that trains one batch, then waits
    qtbot.waitUntil(lambda: win.training.state == "paused", timeout=30000)
    now = win.training.session.fetch_weights(win.training.run.run_id, timeout=30.0)
    assert set(now) == set(trained)
    assert max(float(np.abs(now[k] - trained[k]).max()) for k in trained) <= 0.01 * 1.001 + 1e-6
    win.training.reset()
    win.document.undo_stack.undo()
    assert win.document.spec.training.lr == pytest.approx(spec.training.lr)

    # the sweep is saved with the design and comes back when it is opened
    path = tmp_path / "xor_compare.json"
    win.document.save(str(path))
    win2, cmp2 = compare_window(S.load(str(path)), engine=False)
    assert cmp2.view.axes() == [("training.lr", ", ".join(LRS))]


def test_more_than_sixteen_variants_is_refused_with_the_count_and_starts_nothing(compare_window):
    win, cmp = compare_window(xor_spec(epochs=5), engine=False)
    choose(cmp.view, 0, "training.lr", "0.01, 0.03, 0.1, 0.3, 1")
    choose(cmp.view, 1, "layer.dense1.units", "2, 4, 8, 16")
    cmp.view.train_button.click()
    assert "20 variants" in cmp.view.problem() and "16" in cmp.view.problem()
    assert cmp.run_id is None and not cmp.view.tiles
    assert not win.training.session.alive, "no worker was started"
    assert win.document.spec.compare is None, "a refused sweep does not change the design"


def test_bad_values_name_the_setting_and_what_to_type():
    item = {"label": "lr", "type": "float", "choices": ()}
    assert parse_values("0.01, 0.1 ,1", item) == [0.01, 0.1, 1.0]
    with pytest.raises(ValueError, match="lr: 'fast' is not a number"):
        parse_values("0.1, fast", item)
    units = {"label": "dense1 units", "type": "int", "choices": ()}
    with pytest.raises(ValueError, match="whole number"):
        parse_values("2, 2.5", units)
    act = {"label": "act1 function", "type": "choice", "choices": ("relu", "tanh")}
    assert parse_values("ReLU, tanh", act) == ["relu", "tanh"]


def test_a_lost_worker_ends_the_comparison_with_a_message_and_keeps_the_design(compare_window, qtbot):
    import signal

    win, cmp = compare_window(xor_spec(epochs=3000))
    assert cmp.train_all([("training.lr", "0.1, 1")])
    qtbot.waitUntil(lambda: cmp.state == "running", timeout=60000)
    os.kill(win.training.session.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: cmp.state == "error", timeout=30000)
    assert "Train all" in cmp.view.problem()
    assert not cmp.view.stop_button.isEnabled()
    assert win.document.spec.compare is not None and len(cmp.view.tiles) == 2, "the sweep and the pictures stay"


def test_saving_a_sweep_is_no_structural_edit_for_a_running_training():
    """Train all saves the sweep in the design; a run of the design must not ask to restart for that."""
    from app.run import structure_key
    from engine.sweep_spec import Axis, Sweep

    spec = xor_spec(epochs=5)
    swept = spec.copy()
    swept.compare = Sweep([Axis("training.lr", [0.1, 1.0])])
    assert structure_key(swept) == structure_key(spec)
    swept.layers[1].params["units"] = 3
    assert structure_key(swept) != structure_key(spec)


def test_the_main_toolbar_pauses_steps_resumes_and_stops_a_comparison(compare_window, qtbot):
    win, cmp = compare_window(xor_spec(epochs=3000))
    tb = win.training.toolbar
    assert cmp.train_all([("training.lr", "0.1, 1")])
    qtbot.waitUntil(lambda: cmp.state == "running" and len(cmp.snaps) == 2, timeout=60000)
    assert tb.pause_action.isEnabled() and not tb.train_action.isEnabled()
    tb.pause_action.trigger()
    qtbot.waitUntil(lambda: cmp.state == "paused", timeout=30000)
    assert tb.train_action.text() == "Resume"
    qtbot.wait(300)  # let the last reports of the running variants land
    steps = [cmp.snaps[i].step for i in range(2)]
    tb.step_action.trigger()  # one batch more for every variant, then paused again
    qtbot.waitUntil(lambda: all(cmp.snaps[i].step == steps[i] + 1 for i in range(2)), timeout=30000)
    assert cmp.state == "paused" and win.training.state == "idle", "no single run was started"
    tb.train_action.trigger()
    qtbot.waitUntil(lambda: cmp.state == "running", timeout=30000)
    tb.stop_action.trigger()
    qtbot.waitUntil(lambda: cmp.state == "ended", timeout=30000)
    assert win.training.run is None, "the toolbar drove the comparison, not a run of its own"


def test_clicking_a_variant_of_an_ended_comparison_shows_it_in_every_view(compare_window, qtbot):
    from engine import protocol as P

    win, cmp = compare_window(xor_spec(epochs=8))
    ctl = win.training
    sent = {}  # the weights the comparison handed over, per variant
    win.training.session.comparison_event.connect(
        lambda ev: sent.__setitem__(ev.index, ev.state) if isinstance(ev, P.VariantWeights) else None)
    assert cmp.train_all([("training.lr", "0.003, 0.3")])
    qtbot.waitUntil(lambda: cmp.state == "ended", timeout=90000)
    pictures = {}
    for i in (1, 0):
        cmp.view.select(i)  # a click on its picture or its row
        # a variant that has done its epochs ends at once (Train then trains the design); others wait paused
        qtbot.waitUntil(lambda i=i: cmp.inspected == i and ctl.state == "finished" and ctl.model.snapshot is not None
                        and ctl.model.snapshot.extras.get("boundary") is not None, timeout=30000)
        assert win.statusBar().currentMessage().startswith(f"Every view shows {cmp.variants[i].label} at epoch 8")
        snap, variant = ctl.model.snapshot, cmp.snaps[i]
        assert snap.epoch == variant.epoch == 8, "the counter shows where the variant is"
        assert np.array_equal(snap.history["val_loss"], variant.history["val_loss"]), "its own curves"
        now = ctl.session.fetch_weights(ctl.run.run_id, timeout=30.0)
        assert all(np.array_equal(now[k], sent[i][k]) for k in sent[i]), "its weights, no batch trained"
        qtbot.waitUntil(lambda: win.views.boundary.image_rgba() is not None, timeout=10000)
        pictures[i] = win.views.boundary.image_rgba().copy()
    assert not np.array_equal(pictures[0], pictures[1]), "each variant's own boundary in the main view"
    assert win.document.spec.training.lr == pytest.approx(xor_spec(1).training.lr), "the design is unchanged"
