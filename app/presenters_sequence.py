"""The regression and sequence views: their docks, the Prober options they ask for, and the
presenter that feeds them from the run model (numpy in, drawing out).

Docks (made by app.main_window): "Function fit" (regression: the 1-D curve or the 2-D surface)
beside the decision boundary; "Hidden state", "Attention", "Prediction" and "Generated text" among
the insight tabs under the canvas. One validation sample is shown by all the sequence views;
choosing it in one moves the others.
"""
from __future__ import annotations

from app.run import RunModel
from engine import protocol as P

# (view attribute on Views, dock title, dock name)
DOCKS = (("regression", "Function fit", "regression_dock"), ("hidden", "Hidden state", "hidden_dock"),
         ("attention", "Attention", "attention_dock"), ("prediction", "Prediction", "prediction_dock"),
         ("text", "Generated text", "text_dock"))
DOCK_NAMES = tuple(d[2] for d in DOCKS)


def raise_views_for(window, info) -> None:
    """Bring forward the dock that means most for a sequence or regression dataset (the dock plan of
    app.main_window decides which are shown)."""
    d = window.docks
    if info.is_sequence:
        shown = [n for n in ("text_dock", "attention_dock", "hidden_dock") if n in d and not d[n].isHidden()]
        if shown:
            window.raise_docks(shown[0])
    elif "regression_dock" in d:
        window.raise_docks("regression_dock")


def sequence_options(tracker) -> dict:
    """The Prober options of the visible sequence/regression docks (see engine.probes_sequence)."""
    v, vis = tracker.v, tracker.visible
    opts: dict = {"fit": vis("regression_dock")}
    seq = {"hidden": vis("hidden_dock"), "attention": vis("attention_dock"), "seq_pred": vis("prediction_dock")}
    opts.update(seq)
    opts["seq_sample"] = int(v.hidden.sample_spin.value()) if any(seq.values()) else None
    opts["seq_layer"] = v.hidden.layer_combo.currentText() or None
    opts["text"] = v.text.options() if vis("text_dock") else None
    return opts


def connect_sequence_views(views, changed) -> None:
    """Call ``changed()`` whenever a sequence view's choice changes the options; keep one sample across views."""
    spins = [views.hidden.sample_spin, views.attention.sample_spin, views.prediction.sample_spin]

    def follow(value: int) -> None:
        for s in spins:
            if s.value() != value:
                s.blockSignals(True)
                s.setValue(value)
                s.blockSignals(False)
        changed()

    for s in spins:
        s.valueChanged.connect(follow)
    views.hidden.layer_changed.connect(lambda _l: changed())
    views.text.options_changed.connect(lambda _o: changed())
    for name in DOCK_NAMES:
        views.docks[name].visibilityChanged.connect(lambda _v: changed())


class SequencePresenter:
    """Feeds the function fit, hidden state, attention, prediction and generated-text views."""

    def __init__(self, model: RunModel, views):
        self.model, self.v = model, views
        model.events.run.connect(self._on_model_run)
        model.events.data.connect(self._on_model_data)

    def _on_model_run(self, run) -> None:
        for attr, _, _ in DOCKS:
            getattr(self.v, attr).clear()

    def _on_model_data(self, data: P.RunData) -> None:
        info, v = data.info, self.v
        v.curves.set_score_name("R²" if info.task == "regression" else "acc")
        n = len(data.y_val)
        for view in (v.hidden, v.attention, v.prediction):
            view.set_sample_count(n)

    def render(self, snap: P.Snapshot) -> None:
        ex, v, data = snap.extras, self.v, self.model.data
        if data is None:
            return
        if "fit_x" in ex:
            v.regression.set_points(ex["fit_train_x"], ex["fit_train_y"], ex["fit_val_x"], ex["fit_val_y"])
            v.regression.set_fit(ex["fit_x"], ex["fit_y"], ex.get("fit_units"), ex.get("fit_bias", 0.0))
        if "surface" in ex:
            v.regression.set_surface(ex["surface"], ex["surface_extent"], ex.get("surface_points"),
                                     ex.get("surface_values"))
        tokens = ex.get("seq_tokens")
        if "hidden" in ex:
            v.hidden.set_layers(list(ex.get("hidden_layers", [])), ex.get("hidden_layer", ""))
            v.hidden.set_state(ex["hidden"], ex.get("gates"), ex.get("hidden_kind", ""), tokens)
        if ex.get("attention"):
            v.attention.set_weights(ex["attention"], tokens)
        if "pred_out" in ex:
            classes = list(data.info.class_names) if data.info.task != "regression" else None
            v.prediction.set_prediction(ex["pred_input"], ex["pred_true"], ex["pred_out"], classes, ex.get("pred_marks"))
        if "text" in ex:
            v.text.set_text(snap.epoch, ex["text"], ex.get("text_seed", ""))
