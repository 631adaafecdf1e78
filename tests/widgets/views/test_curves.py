"""Loss / accuracy curves: points drawn, log mode with bad values, previous run, CSV export."""
import csv
import math

import numpy as np
import pytest
from PySide6.QtGui import QColor

from widgets.views.curves import CurvesView


def fake_history(n: int, seed: int = 0, lr: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ep = np.arange(1, n + 1, dtype=np.float64)
    h = {"epoch": ep,
         "train_loss": 0.7 * np.exp(-ep / 8) + rng.uniform(0, 0.01, n),
         "val_loss": 0.7 * np.exp(-ep / 8) + 0.05 + rng.uniform(0, 0.01, n),
         "train_acc": 1 - 0.5 * np.exp(-ep / 6), "val_acc": 1 - 0.5 * np.exp(-ep / 6) - 0.02}
    if lr:
        h["lr"] = 0.1 * 0.9 ** (ep - 1)
    return h


@pytest.fixture
def view(qtbot):
    v = CurvesView()
    v.resize(560, 460)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    return v


def curve_xy(curve) -> tuple[np.ndarray, np.ndarray]:
    x, y = curve.getData()
    return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))


def test_update_history_draws_one_point_per_epoch_with_accuracy_in_percent(view):
    h = fake_history(25)
    view.update_history(h)
    for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
        x, y = curve_xy(view.curves[key])
        assert len(x) == 25
        np.testing.assert_array_equal(x, h["epoch"])
        expected = h[key] * 100 if key.endswith("acc") else h[key]
        np.testing.assert_allclose(y, expected)
    h30 = fake_history(30)
    view.update_history(h30)
    assert len(curve_xy(view.curves["train_loss"])[0]) == 30
    # the newest value of each curve is marked, so a single epoch is visible too
    hx, hy = (np.asarray(a) for a in view.heads["acc"].getData())
    np.testing.assert_allclose(sorted(hy), sorted([100 * h30["train_acc"][-1], 100 * h30["val_acc"][-1]]))


def test_latest_values_are_shown_as_text(view):
    h = fake_history(37)
    view.update_history(h)
    text = view.latest_text()
    assert text.startswith("epoch 37")
    assert f"{100 * h['train_acc'][-1]:.1f}% / {100 * h['val_acc'][-1]:.1f}%" in text
    assert f"{h['train_loss'][-1]:.3g} / {h['val_loss'][-1]:.3g}" in text
    assert f"{100 * h['val_acc'][-1]:.1f}%" in view.latest_label.text()


def test_log_mode_survives_zeros_nan_inf_and_negatives(qtbot, view):
    h = fake_history(8, lr=False)
    bad = h["train_loss"].copy()
    bad[[1, 3, 4, 6]] = [0.0, np.nan, np.inf, -0.5]
    h["train_loss"] = bad
    view.update_history(h)
    view.log_check.setChecked(True)
    view.grab()  # paints: must not raise or hang
    x, y = curve_xy(view.curves["train_loss"])
    good = np.array([0, 2, 5, 7])
    assert np.isnan(np.delete(y, good)).all()
    np.testing.assert_allclose(y[good], np.log10(bad[good]))
    (ymin, ymax) = view.loss_plot.getViewBox().viewRange()[1]
    assert math.isfinite(ymin) and math.isfinite(ymax)
    # all losses unusable on a log axis: the curve is empty rather than broken
    h["train_loss"] = np.zeros(8)
    view.update_history(h)
    view.grab()
    assert len(curve_xy(view.curves["train_loss"])[0]) == 0
    view.log_check.setChecked(False)
    np.testing.assert_array_equal(curve_xy(view.curves["train_loss"])[1], np.zeros(8))


def test_start_new_run_keeps_the_previous_run_as_a_faint_grey_line(view):
    first = fake_history(20, seed=1)
    view.update_history(first)
    view.start_new_run()
    x, y = curve_xy(view.prev_curves["train_loss"])
    np.testing.assert_allclose(y, first["train_loss"])
    assert len(curve_xy(view.curves["train_loss"])[0]) == 0
    pen = view.prev_curves["train_loss"].opts["pen"]
    color = QColor(pen.color())
    assert pen.widthF() <= 1.0 and color.alpha() < 200 and color.saturation() < 30  # grey, thin, faint
    current_pen = view.curves["train_loss"].opts["pen"]
    assert current_pen.widthF() > pen.widthF()
    labels = [label.text for _, label in view.legend.items]
    assert "previous run" in labels
    second = fake_history(5, seed=2)
    view.update_history(second)
    np.testing.assert_allclose(curve_xy(view.curves["val_acc"])[1], second["val_acc"] * 100)
    np.testing.assert_allclose(curve_xy(view.prev_curves["train_loss"])[1], first["train_loss"])  # still there
    view.clear()
    assert len(curve_xy(view.prev_curves["train_loss"])[0]) == 0
    assert "previous run" not in [label.text for _, label in view.legend.items]


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], [[float(v) for v in r] for r in rows[1:]]


@pytest.mark.parametrize("with_lr", [True, False])
def test_export_csv_rows_equal_the_history(view, tmp_path, with_lr):
    h = fake_history(12, lr=with_lr)
    h["val_loss"][3] = np.nan  # an epoch without validation stays a readable "nan"
    view.update_history(h)
    path = tmp_path / "history.csv"
    view.export_csv(path)
    header, rows = _read_csv(path)
    assert header == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"] + (["lr"] if with_lr else [])
    assert len(rows) == 12
    table = np.array(rows)
    for i, col in enumerate(header):
        np.testing.assert_array_equal(table[:, i], h[col])  # full precision: exactly equal, NaN included


def test_export_button_asks_the_app_and_the_dialog_path_writes(qtbot, view, tmp_path, monkeypatch):
    assert not view.export_button.isEnabled()  # nothing to export yet
    view.update_history(fake_history(3))
    assert view.export_button.isEnabled()
    with qtbot.waitSignal(view.export_requested, timeout=1000):
        view.export_button.click()
    target = tmp_path / "run.csv"
    monkeypatch.setattr(view, "choose_export_path", lambda: str(target))
    assert view.export_via_dialog() == str(target)
    assert len(_read_csv(target)[1]) == 3
    warnings = []
    monkeypatch.setattr("widgets.views.curves.QMessageBox.warning", lambda *a: warnings.append(a[2]))
    monkeypatch.setattr(view, "choose_export_path", lambda: str(tmp_path / "missing" / "run.csv"))
    assert view.export_via_dialog() is None
    assert warnings and "missing" in warnings[0]


def test_history_without_validation_or_epochs_is_drawn_without_error(view):
    view.update_history({"train_loss": [0.9, 0.5, 0.3], "train_acc": [0.5, 0.7, 0.9]})
    x, _ = curve_xy(view.curves["train_loss"])
    np.testing.assert_array_equal(x, [1, 2, 3])
    assert len(curve_xy(view.curves["val_loss"])[0]) == 0
    assert "–" in view.latest_text()  # no validation value yet
    view.update_history({})
    assert view.latest_text() == "no epochs yet"


@pytest.mark.parametrize("width", [300, 380, 560, 900])
def test_header_never_overlaps_the_log_checkbox_or_export_button(qtbot, width):
    """Once losses are shown the latest-values line wraps instead of running under the controls."""
    v = CurvesView()
    qtbot.addWidget(v)
    v.resize(width, 300)
    v.show()
    qtbot.waitExposed(v)
    h = fake_history(12)
    h["epoch"] = h["epoch"] / 7  # fractional epochs make the longest header ("epoch 1.71429 ...")
    h["train_loss"] = h["train_loss"] * 1e-4  # "1.23e-05" style losses, the widest numbers
    v.update_history(h)
    qtbot.wait(20)
    label, check, button = v.latest_label.geometry(), v.log_check.geometry(), v.export_button.geometry()
    assert not label.intersects(check) and not label.intersects(button) and not check.intersects(button)
    assert v.latest_label.heightForWidth(label.width()) <= label.height()  # the whole text is shown
    assert label.right() < check.left() and v.rect().contains(button)
def test_a_long_history_is_drawn_with_few_points_but_keeps_its_spikes_and_gaps():
    from widgets.views.curves import MAX_DRAWN_EPOCHS, decimate

    x = np.arange(1, 20001, dtype=float)
    y = 1.0 / x
    y[12345] = 7.0  # one diverging epoch must stay visible
    y[3000:3100] = np.nan  # epochs without a value (a bucket of only NaN stays a gap)
    xs, ys = decimate(x, y)
    assert len(xs) <= 2 * MAX_DRAWN_EPOCHS + 2
    assert np.nanmax(ys) == 7.0 and np.nanmin(ys) == y[-1]
    assert np.all(np.diff(xs) >= 0)
    assert np.isnan(ys).any()
    short_x, short_y = decimate(x[:50], y[:50])
    assert np.array_equal(short_x, x[:50]) and np.array_equal(short_y, y[:50])


def test_the_epoch_axis_grows_in_nice_steps_until_the_user_moves_it(qtbot):
    from widgets.views.curves import nice_ceiling

    assert [nice_ceiling(n) for n in (1, 7, 37, 101, 2500)] == [1, 8, 40, 150, 3000]
    view = CurvesView()
    qtbot.addWidget(view)

    def history(n):
        e = np.arange(1, n + 1, dtype=float)
        return {"epoch": e, "train_loss": 1 / e, "val_loss": 1 / e, "train_acc": 1 - 1 / e, "val_acc": 1 - 1 / e}

    view.update_history(history(37))
    lo, hi = view.loss_plot.viewRange()[0]
    assert 37 < hi <= 42 and lo <= 0  # 40 and a 2 % margin
    view.update_history(history(38))
    assert view.loss_plot.viewRange()[0][1] == hi  # no redraw of the axis for one more epoch
    view.loss_plot.getViewBox().sigRangeChangedManually.emit([True, False])  # as a mouse pan does
    view.loss_plot.setXRange(5, 10, padding=0)
    view.update_history(history(60))
    assert view.loss_plot.viewRange()[0] == [5, 10]
