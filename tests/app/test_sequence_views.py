"""The regression and sequence views in the main window, fed by real short runs."""
import os

import numpy as np
import pytest

from app.training import TrainingController
from engine import spec as S
from tests.conftest import EXAMPLES

DONE = ("finished", "stopped", "diverged", "error")


def n_points(curve) -> int:
    xs = curve.getData()[0]
    return 0 if xs is None else len(xs)


@pytest.fixture
def run_example(make_window, qtbot):
    """run(name, dock, epochs, **dataset params) -> (window, controller) after the run has finished."""

    def run(name, dock, epochs, **params):
        spec = S.load(os.path.join(EXAMPLES, name))
        spec.training.epochs = epochs
        spec.training.device = "cpu"
        spec.dataset.params.update(params)
        win = make_window(spec, start_engine=True, features=(TrainingController,))
        qtbot.waitUntil(lambda: win.engine.ready, timeout=60000)
        ctl = win.training
        win.docks[dock].show()
        win.docks[dock].raise_()
        ctl.toolbar.actions_by_name()["train"].trigger()
        qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=120000)
        assert ctl.state == "finished"
        qtbot.waitUntil(lambda: win.docks[dock].isVisible(), timeout=5000)
        return win, ctl

    return run


def test_function_fit_follows_the_sine_and_the_curves_say_r2(run_example, qtbot):
    win, ctl = run_example("regression_sine.json", "regression_dock", 40)
    view = win.views.regression
    qtbot.waitUntil(lambda: n_points(view.fit_line) > 0, timeout=10000)
    xs, ys = view.fit_line.getData()
    inside = np.abs(xs) <= 3
    assert np.abs(ys[inside] - np.sin(xs[inside])).mean() < 0.15, "the drawn curve is the sine the net learnt"
    units = [line.getData()[1] for line in view.unit_lines if n_points(line)]
    assert len(units) == 8, "one contribution per unit of the last hidden layer"
    bias = ctl.model.snapshot.extras["fit_bias"]
    assert np.allclose(np.sum(units, axis=0) + bias, ys, atol=1e-4)
    assert "R²" in win.views.curves.latest_text()
    assert win.views.curves.acc_plot.getAxis("left").labelText.startswith("R²")


def test_hidden_state_and_gates_of_the_lstm_on_the_adding_problem(run_example, qtbot):
    win, ctl = run_example("lstm_adding.json", "hidden_dock", 1, n_samples=400)
    view = win.views.hidden
    qtbot.waitUntil(lambda: view.state_image.image is not None, timeout=10000)
    assert view.state_image.image.shape[:2] == (32, 50), "units down, 50 steps across"
    assert all(p.isVisible() for p in view.gate_plots.values()), "an LSTM shows its gates"
    forget = ctl.model.snapshot.extras["gates"]["forget"]
    assert forget.shape == (50, 32) and 0 <= forget.min() and forget.max() <= 1
    assert view.layer_combo.currentText() == "lstm1"
    # choosing another sample in one view moves the others and recomputes
    view.sample_spin.setValue(3)
    assert win.views.attention.sample_spin.value() == 3 == win.views.prediction.sample_spin.value()
    qtbot.waitUntil(lambda: ctl.model.view_options.get("seq_sample") == 3, timeout=5000)


def test_prediction_view_circles_the_marked_numbers(run_example, qtbot):
    win, ctl = run_example("lstm_adding.json", "prediction_dock", 1, n_samples=400)
    view = win.views.prediction
    qtbot.waitUntil(lambda: len(view.marks.data) == 2, timeout=10000)
    xs, ys = view.input_line.getData()
    assert len(xs) == 50
    marked = sorted(int(p.pos().x()) for p in view.marks.points())
    ex = ctl.model.snapshot.extras
    assert np.isclose(ex["pred_true"][0], ys[marked].sum(), atol=1e-5), "the target is the sum of the circled numbers"


def test_attention_view_shows_the_last_step_looking_at_the_first_token(run_example, qtbot):
    win, ctl = run_example("attention_recall.json", "attention_dock", 10, n_samples=1500, length=12)
    assert ctl.model.snapshot.val_acc >= 0.9
    view = win.views.attention
    qtbot.waitUntil(lambda: len(view.images) == 2 and view.images[0].image is not None, timeout=10000)
    w = ctl.model.snapshot.extras["attention"]["attention1"]  # (heads, 12, 12)
    assert w.shape == (2, 12, 12)
    assert w[:, -1, 0].max() > 0.5, "some head puts most of the last step's weight on the first token"
    assert "step 0" in view.caption.text()


def test_generated_text_view_collects_samples_from_the_corpus_alphabet(run_example, qtbot):
    win, ctl = run_example("char_lstm.json", "text_dock", 2, n_samples=1500)
    view = win.views.text
    qtbot.waitUntil(lambda: len(view.entries) >= 1, timeout=10000)
    epoch, text = view.entries[0]
    assert epoch == 2 and len(text) == 200
    corpus = set(open(os.path.join(os.path.dirname(EXAMPLES), "text", "garden.txt"), encoding="utf-8").read())
    assert set(text) <= corpus
    assert "epoch 2" in view.edit.toPlainText()
