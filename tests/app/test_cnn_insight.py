"""CNN insight in the window: filters, feature maps, saliency and evaluation follow a digits CNN as it trains."""
import os

import numpy as np
import pytest

from app.training import TrainingController
from engine import spec as S
from tests.conftest import EXAMPLES

DONE = ("finished", "stopped", "diverged", "error")


@pytest.fixture
def cnn_window(make_window, qtbot):
    spec = S.load(os.path.join(EXAMPLES, "digits_cnn.json"))
    spec.training.epochs = 3
    spec.training.device = "cpu"  # "auto" would train on cuda; the tests compare with CPU forward passes and .numpy()
    win = make_window(spec, start_engine=True, features=(TrainingController,))
    qtbot.waitUntil(lambda: win.engine.ready, timeout=60000)
    return win, win.training


def conv_ids(spec):
    return [lay.id for lay in spec.layers if lay.kind == "Conv2d"]


def test_digits_cnn_trained_in_the_window_shows_learnt_filters_and_a_dominant_diagonal(cnn_window, qtbot):
    from engine.build import build

    win, ctl = cnn_window
    spec = win.document.spec
    first_conv = conv_ids(spec)[0]
    initial = build(spec).layers[first_conv].weight.detach().numpy()
    win.views.docks["filters_dock"].raise_()
    ctl.train()
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=120000)
    assert ctl.state == "finished"
    # the filter view shows exactly the trained conv weights, and they moved away from the initial ones
    win.views.filters.select_layer(first_conv)
    win.views.filters.set_channel_mode("all")
    shown = win.views.filters.displayed_array()
    trained = ctl.session.fetch_weights(ctl.run.run_id)[f"layers.{first_conv}.weight"]
    assert np.array_equal(shown, trained)
    assert not np.allclose(shown, initial, atol=1e-3), "filters change from their initial values"
    # confusion matrix on the validation set (shown when the user opens its tab): the diagonal dominates
    win.views.docks["evaluation_dock"].raise_()
    qtbot.waitUntil(lambda: win.views.evaluation.displayed_confusion() is not None, timeout=5000)
    matrix = win.views.evaluation.displayed_confusion()
    assert matrix.shape == (10, 10)
    assert np.trace(matrix) > 0.9 * matrix.sum()
    assert all(matrix[i, i] == matrix[i].max() for i in range(10))


def test_feature_maps_and_saliency_follow_the_chosen_sample(cnn_window, qtbot):
    import torch

    win, ctl = cnn_window
    win.views.docks["feature_maps_dock"].raise_()
    ctl.train()
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=120000)
    # browse to validation sample 5: the maps equal a forward pass of the final model on it
    win.views.feature_maps.set_current_index(5)
    ctl.step()  # a paused run reports with everything recomputed for the current options
    qtbot.waitUntil(lambda: ctl.model.snapshot is not None and ctl.model.snapshot.step == 1
                    and ctl.state == "paused", timeout=30000)
    qtbot.waitUntil(lambda: bool(win.views.feature_maps.displayed_maps()), timeout=10000)
    from engine import datasets
    from engine.build import build

    data = datasets.load(win.document.spec.dataset)
    model = build(win.document.spec, data.info)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in ctl.session.fetch_weights(ctl.run.run_id).items()})
    x = torch.as_tensor(data.x_val[5:6])
    model.eval()
    with torch.no_grad():
        acts = model.forward_all(x)
    shown = win.views.feature_maps.displayed_maps()
    first_conv = conv_ids(win.document.spec)[0]
    assert np.allclose(shown[first_conv], acts[first_conv][0].numpy(), atol=1e-5)
    # Grad-CAM on the saliency dock has the input's spatial size
    win.views.docks["saliency_dock"].raise_()
    win.views.saliency.set_options(method="gradcam")
    # no poll and no further step: the paused run answers the changed options at once
    qtbot.waitUntil(lambda: "Grad-CAM" in win.views.saliency.title(), timeout=10000)
    att = win.views.saliency.displayed_attribution()
    assert att.shape == (8, 8)
    ctl.stop()


def test_selecting_a_conv_node_selects_its_filters_and_feature_maps(cnn_window, qtbot):
    win, ctl = cnn_window
    ctl.train()
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=120000)
    second = conv_ids(win.document.spec)[1]
    win.views.docks["evaluation_dock"].raise_()  # neither filters nor feature maps on screen
    win.canvas.select_ids([second])
    # the filters come forward with that layer chosen
    qtbot.waitUntil(lambda: win.views.filters.current_layer() == second, timeout=3000)
    assert ctl.options.visible("filters_dock")
    win.views.docks["feature_maps_dock"].raise_()  # the user opens the feature maps: the same layer is selected there
    qtbot.waitUntil(lambda: win.views.feature_maps.selected_layer() == second, timeout=5000)
    # and the other way: picking a layer in the filters dock selects the node
    first = conv_ids(win.document.spec)[0]
    win.views.filters.layer_selected.emit(first)
    assert win.canvas.selected_ids() == [first]
