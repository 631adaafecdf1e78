"""Autoencoder and GAN views in the main window on real short runs: what the user sees."""
import os

import numpy as np
import pytest

from app.training import TrainingController
from engine import spec as S
from tests.conftest import EXAMPLES
from widgets.paint.palette import class_colors
from widgets.views.generative import GanView, LatentView, ReconstructionView, as_images, mosaic

DONE = ("finished", "stopped", "diverged", "error")


@pytest.fixture
def trainer_window(make_window, qtbot):
    def make(spec):
        win = make_window(spec, start_engine=True, features=(TrainingController,))
        qtbot.waitUntil(lambda: win.engine.ready, timeout=60000)
        return win, win.training

    return make


def example(name, epochs):
    spec = S.load(os.path.join(EXAMPLES, f"{name}.json"))
    spec.training.epochs, spec.training.device = epochs, "cpu"
    return spec


def train(ctl, qtbot, on_snapshot=None):
    if on_snapshot is not None:
        ctl.session.snapshot_ready.connect(lambda _rid, snap: on_snapshot(snap))
    ctl.toolbar.actions_by_name()["train"].trigger()
    qtbot.waitUntil(lambda: ctl.state in DONE and not ctl.model.active, timeout=120000)
    ctl.scheduler.flush()
    assert ctl.state == "finished", ctl.model.run.message


def ring_distance(points):
    return float(np.mean(np.abs(np.hypot(points[:, 0], points[:, 1]) - 1.0)))


def test_autoencoder_reconstructions_improve_and_latent_points_are_coloured_by_class(trainer_window, qtbot):
    win, ctl = trainer_window(example("autoencoder_digits", 25))
    views = ctl.generative.views
    assert win.docks["recon_dock"].isVisible() and win.docks["latent_dock"].isVisible()
    assert not win.docks["gan_dock"].isVisible()
    errors = []

    def record(snap):
        ex = snap.extras
        if "ae_recon" in ex:
            errors.append(float(np.mean((ex["ae_inputs"] - ex["ae_recon"]) ** 2)))

    train(ctl, qtbot, record)
    rec = views.recon
    assert rec.inputs is not None and rec.inputs.shape == rec.recon.shape == (8, 1, 8, 8)
    final = float(np.mean((rec.inputs - rec.recon) ** 2))
    assert len(errors) >= 2 and final < 0.6 * errors[0], (errors[0], final)
    # the picture shown: the mosaic's bottom row is the reconstruction the view holds
    shown = views.recon.item.image
    bottom = shown[9:, :8]
    assert np.allclose(bottom, rec.recon[0, 0], atol=1e-6)

    lat = views.latent
    data = ctl.model.data
    assert lat.points.shape == (len(data.y_val), 2)
    colours = class_colors(10)
    brushes = lat.scatter.data["brush"]
    for i in (0, 5, 17):
        c = brushes[i].color()
        assert (c.red(), c.green(), c.blue()) == tuple(colours[int(data.y_val[i])])
    # the latent walk: a press in the plane decodes that point in the worker
    x, y = (float(v) for v in lat.points[3])
    lat.request(x, y)
    qtbot.waitUntil(lambda: lat.decoded is not None, timeout=10000)
    assert lat.decoded.shape == (1, 8, 8) and lat.chosen == pytest.approx((x, y))
    # decoding the code of a validation digit gives back something like that digit (PCA plane: near it)
    first = lat.decoded.copy()
    lat.request(float(lat.points[40, 0]), float(lat.points[40, 1]))
    qtbot.waitUntil(lambda: lat.decoded is not None and not np.array_equal(lat.decoded, first), timeout=10000)


def test_vae_shows_a_decoded_grid_over_its_2d_plane(trainer_window, qtbot):
    win, ctl = trainer_window(example("vae_digits", 8))
    train(ctl, qtbot)
    lat = ctl.generative.views.latent
    assert lat.grid is not None and lat.grid.shape == (81, 1, 8, 8)
    assert "2-D code" in lat.caption.text()
    # neighbouring grid cells decode to similar images; far corners differ more (a smooth latent space)
    g = lat.grid.reshape(9, 9, 64)
    near = np.mean(np.abs(g[4, 4] - g[4, 5]))
    far = np.mean(np.abs(g[0, 0] - g[8, 8]))
    assert near < far


def test_gan_points_move_toward_the_ring_and_the_heat_map_changes(trainer_window, qtbot):
    win, ctl = trainer_window(example("gan_ring", 40))
    assert win.docks["gan_dock"].isVisible() and not win.docks["latent_dock"].isVisible()
    seen = []

    def record(snap):
        if "gan_fake" in snap.extras:
            seen.append((ring_distance(snap.extras["gan_fake"]), snap.extras["gan_heat"].copy()))

    train(ctl, qtbot, record)
    gv = ctl.generative.views.gan
    assert gv.fake.shape == (500, 2) and gv.real.shape[1] == 2
    assert ring_distance(gv.fake) < 0.15 < seen[0][0]
    assert not np.allclose(seen[0][1], gv.heat, atol=0.02), "the discriminator's surface moved"
    assert np.array_equal(gv.heat_item.image, gv.heat)
    d_x, d_y = gv.d_curve.getData()
    assert len(d_x) == 40 and np.all(np.isfinite(d_y))
    # arrows start on generated points
    ax, _ = gv.arrow_item.getData()
    assert np.allclose(ax[0::2][:5], gv.fake[:5, 0])
    assert ctl.timeline.bar.isHidden(), "a GAN run keeps no checkpoints: no timeline slider"
    # the finished run's measured layer costs reach the canvas for both networks (each on its own input)
    qtbot.waitUntil(lambda: {"g_dense1", "d_dense1"} <= set(win.canvas._costs), timeout=30000)


def test_drawing_a_gan_target_writes_it_into_the_design(make_window, qtbot):
    win = make_window(example("gan_ring", 1), features=(TrainingController,))
    gv = win.training.generative.views.gan
    for x, y in [(0.0, 0.0), (0.5, 0.5), (-0.5, 0.5)]:
        gv.add_drawn_point(x, y)
    gv.use_button.click()
    g = win.document.spec.generative
    assert g.target == "drawn" and g.points == [(0.0, 0.0), (0.5, 0.5), (-0.5, 0.5)]
    win.document.undo_stack.undo()
    assert win.document.spec.generative.target == "ring"


def test_classifier_designs_hide_the_generative_docks(make_window):
    win = make_window(S.load(os.path.join(EXAMPLES, "xor.json")), features=(TrainingController,))
    for name in ("recon_dock", "latent_dock", "gan_dock"):
        assert not win.docks[name].isVisible()


def test_views_take_numpy_and_draw_it(qtbot):
    rec = ReconstructionView()
    qtbot.addWidget(rec)
    a = np.random.default_rng(0).random((4, 1, 3, 3)).astype(np.float32)
    rec.set_images(a, a * 0.5)
    img = rec.item.image
    assert img.shape == (7, 15)  # 2 rows of 3 px + a 1 px gap; 4 tiles of 3 px + 3 gaps
    assert np.allclose(img[4:, 4:7], a[1, 0] * 0.5)
    assert "0.0" in rec.caption.text()
    assert mosaic(as_images(np.ones((3, 5))), 3).shape == (1, 17)  # flat data: one row per sample
    lat = LatentView()
    qtbot.addWidget(lat)
    got = []
    lat.point_requested.connect(lambda x, y: got.append((x, y)))
    lat.set_latent(np.zeros((3, 2)), np.array([0, 1, 2]), (-1, 1, -1, 1))
    lat.request(0.25, -0.5)
    assert got == [(0.25, -0.5)]
    gv = GanView()
    qtbot.addWidget(gv)
    gv.set_state(np.zeros((5, 2)), np.ones((5, 2)), np.full((4, 4), 0.3), (-1, 1, -1, 1),
                 np.array([[0, 0, 0.1, 0.2]], np.float32))
    ax, ay = gv.arrow_item.getData()
    assert np.allclose(ax, [0, 0.1]) and np.allclose(ay, [0, 0.2])
    # all generated points on one spot while the target is spread out: the caption says modes are missed
    gv.set_losses(np.arange(1, 3), np.ones(2), np.ones(2), np.array([0.9, 0.8]))
    assert "mode collapse" in gv.caption.text()
    gv.set_losses(np.arange(1, 3), np.ones(2), np.ones(2), np.array([0.9, 0.03]))
    assert "mode collapse" not in gv.caption.text() and "0.03" in gv.caption.text()


def test_generative_settings_panel_edits_the_design(make_window):
    win = make_window(example("gan_ring", 1), features=(TrainingController,))
    panel = win.training.generative.panel
    assert win.docks["generative_dock"].isVisible()
    assert not panel.fields["bottleneck"].isVisible() and panel.fields["target"].isVisible()
    panel.fields["target"].setCurrentText("moons")
    panel.fields["d_steps"].setValue(3)
    g = win.document.spec.generative
    assert (g.target, g.d_steps) == ("moons", 3)
    win.document.reset(example("vae_digits", 1))
    assert panel.fields["beta"].isVisible() and panel.fields["bottleneck"].currentText() == "sample1"
    panel.fields["beta"].setValue(0.5)
    assert win.document.spec.generative.beta == 0.5


def test_each_kind_of_data_hides_the_docks_that_have_nothing_to_show(make_window):
    from types import SimpleNamespace

    win = make_window(S.load(os.path.join(EXAMPLES, "xor.json")), features=(TrainingController,))
    shown = lambda name: win.docks[name].isVisible()  # noqa: E731

    def data(**kw):
        base = dict(is_image=False, task="classification", is_sequence=False, kind="csv", vocab=())
        return SimpleNamespace(**{**base, **kw})

    win.show_views_for(data())
    assert shown("boundary_dock") and not shown("regression_dock") and not shown("filters_dock")
    win.show_views_for(data(is_image=True))
    assert not shown("boundary_dock") and not shown("regression_dock")
    win.show_views_for(data(task="regression"))
    assert shown("regression_dock") and not shown("roc_dock") and not shown("evaluation_dock")
    win.document.reset(S.load(os.path.join(EXAMPLES, "gan_ring.json")))
    assert shown("gan_dock") and not shown("boundary_dock") and not shown("roc_dock")
    assert win.views.curves.series_names() == ("discriminator", "generator")
    assert not win.views.curves.accuracy_shown(), "a GAN has no accuracy: its loss plot takes the room"
    win.document.reset(S.load(os.path.join(EXAMPLES, "xor.json")))
    assert win.views.curves.series_names() == ("train", "validation") and shown("boundary_dock")
    assert win.views.curves.accuracy_shown()


def test_docks_hidden_for_one_kind_of_data_come_back_for_the_next_and_closed_ones_stay_closed(make_window):
    from app.compare import CompareController
    from app.kernel_lab import KernelLabController

    win = make_window(S.load(os.path.join(EXAMPLES, "xor.json")),
                      features=(TrainingController, KernelLabController, CompareController))
    shown = lambda name: not win.docks[name].isHidden()  # noqa: E731
    open_example = lambda name: win.document.reset(S.load(os.path.join(EXAMPLES, f"{name}.json")))  # noqa: E731
    win.docks["landscape_dock"].close()  # the user's choice
    open_example("regression_sine")
    assert not shown("evaluation_dock") and shown("regression_dock")
    open_example("xor")
    assert shown("evaluation_dock") and shown("roc_dock") and shown("boundary_dock"), "back for classes on a plane"
    open_example("digits_cnn")
    assert shown("feature_maps_dock") and shown("filters_dock") and shown("evaluation_dock")
    assert not shown("boundary_dock")
    open_example("gan_ring")
    assert shown("gan_dock") and not shown("evaluation_dock") and not shown("kernel_lab_dock")
    open_example("lstm_adding")  # an LSTM without attention, regression of a sum: no classes, no attention
    assert shown("hidden_dock") and not shown("attention_dock") and not shown("text_dock")
    assert not shown("evaluation_dock") and not shown("gan_dock")
    open_example("attention_recall")
    assert shown("attention_dock") and shown("evaluation_dock") and not shown("text_dock")
    open_example("xor")
    assert shown("boundary_dock") and shown("kernel_lab_dock") and not shown("hidden_dock")
    assert not shown("landscape_dock"), "a dock the user closed stays closed"
