"""Why it learns, in the window: the Gradients and Distributions docks during a run, health badges
on the cards with their hints, and the init setting in the inspector."""
import os

import numpy as np
import pytest
from PySide6.QtWidgets import QComboBox

from app.training import TrainingController
from engine import layers as L
from engine import spec as S
from tests.conftest import EXAMPLES

DONE = ("finished", "stopped", "diverged", "error")
WEIGHTED = ["dense1", "dense2", "dense3", "dense4", "dense5", "dense6", "dense7", "dense8", "dense9", "dense10", "output1"]


@pytest.fixture
def trainer_window(make_window, qtbot):
    def make(spec, **kw):
        win = make_window(spec, start_engine=True, features=(TrainingController,), **kw)
        qtbot.waitUntil(lambda: win.engine.ready, timeout=60000)
        return win, win.training
    return make


def example(name: str, epochs: int) -> S.Spec:
    spec = S.load(os.path.join(EXAMPLES, f"{name}.json"))
    spec.training.epochs = epochs
    return spec


def test_the_gradients_dock_opened_during_a_run_shows_one_line_per_weighted_layer(trainer_window, qtbot):
    win, ctl = trainer_window(example("deep_relu_he", 40))
    view = win.views.gradients
    win.docks["evaluation_dock"].raise_()
    ctl.train()
    qtbot.waitUntil(lambda: ctl.model.snapshot is not None and ctl.model.snapshot.step > 0, timeout=30000)
    assert "gradients" not in ctl.model.snapshot.extras, "nothing is sent for a closed view"
    win.docks["gradients_dock"].raise_()
    qtbot.waitUntil(lambda: len(view.norm_lines) == 11 and all(
        line.getData()[0] is not None and len(line.getData()[0]) >= 3 for line in view.norm_lines.values()), timeout=30000)
    assert view.layers == WEIGHTED and len(view.ratio_lines) == 11
    # one colour per layer, the same in both plots, named in the legend
    colors = [view.norm_lines[lid].opts["pen"].color().name() for lid in WEIGHTED]
    assert colors == [view.ratio_lines[lid].opts["pen"].color().name() for lid in WEIGHTED]
    assert len(set(colors[:10])) == 10
    legend = view.legend.text()
    assert all(lid in legend for lid in WEIGHTED) and colors[0] in legend
    assert view.norm_plot.getPlotItem().ctrl.logYCheck.isChecked()  # log scale
    ys = view.norm_lines["dense1"].getData()[1]
    assert np.all(np.isfinite(ys))
    ctl.stop()
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=30000)


def test_a_deep_sigmoid_run_puts_vanishing_badges_with_hints_on_its_first_cards(trainer_window, qtbot):
    win, ctl = trainer_window(example("deep_sigmoid", 3))
    ctl.train()
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=60000)
    qtbot.waitUntil(lambda: bool(win.canvas.health_badges("dense1")), timeout=5000)
    badges = win.canvas.health_badges("dense1")
    vanish = next(b for b in badges if b.code == "vanishing")
    assert vanish.isVisible() and vanish.scene() is win.canvas.scene()
    assert "below the largest layer" in vanish.toolTip() and "He init" in vanish.toolTip()
    card = win.canvas.node_item("dense1").scene_card_rect()
    pill = vanish.sceneBoundingRect()
    assert card.left() <= pill.left() and pill.right() <= card.right() and pill.top() < card.top() < pill.bottom()
    assert not win.canvas.health_badges("output1"), "the last layer's gradients are fine"
    win.canvas.clear_live()
    assert not win.canvas.health_badges("dense1")


def test_a_healthy_xor_run_shows_no_badge(trainer_window, qtbot):
    win, ctl = trainer_window(example("xor", 60))
    ctl.train()
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=60000)
    assert ctl.model.snapshot.extras["health"] == {}
    assert not any(win.canvas.health_badges(lay.id) for lay in ctl.run.spec.layers)


def test_the_distributions_dock_shows_a_strip_per_layer_for_the_chosen_kind(trainer_window, qtbot):
    win, ctl = trainer_window(example("deep_relu_he", 6))
    view = win.views.distributions
    win.docks["distributions_dock"].raise_()
    ctl.train()
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=60000)
    qtbot.waitUntil(lambda: list(view.strips) == WEIGHTED and bool(view.images), timeout=10000)
    d = ctl.model.snapshot.extras["distributions"]
    assert d["kind"] == "weights" and len(d["steps"]) >= 2
    img = view.images["dense1"]
    assert img.shape[0] == len(d["steps"]) and img.max() == 1.0  # each column scaled to its peak
    view.selector.setCurrentText("gradients")  # asks the worker for the other kind
    qtbot.waitUntil(lambda: ctl.model.snapshot.extras.get("distributions", {}).get("kind") == "gradients", timeout=10000)
    assert set(ctl.model.snapshot.extras["distributions"]["layers"]) == set(WEIGHTED)


def test_the_inspector_offers_the_init_schemes(make_window):
    win = make_window()
    win.canvas.select_ids(["dense1"])
    combo = win.inspector.layer_page.editors["init"]
    assert isinstance(combo, QComboBox)
    assert [combo.itemText(i) for i in range(combo.count())] == list(L.INIT_SCHEMES)
    combo.setCurrentText("he_normal")
    assert win.document.spec.layer("dense1").params["init"] == "he_normal"
    bias = win.inspector.layer_page.editors["bias_init"]
    assert [bias.itemText(i) for i in range(bias.count())] == ["default", "zeros", "constant"]
