"""The autoencoder and GAN views in the main window: their docks, their presenter, the latent
walk (DecodeLatent -> Decoded over the run channel) and drawing a GAN's target into the design.

``install_generative(controller)`` is called by app.training.TrainingController; the docks are
shown for designs of their kind only (engine.generative_spec) and hidden for classifiers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt

from app.run import RunModel
from engine import protocol as P
from widgets.editor.generative_panel import GenerativePanel
from widgets.views.generative import GanView, LatentView, ReconstructionView

AE_DOCKS = ("recon_dock", "latent_dock")
_CLASSIFIER_VIEWS = ("boundary_dock", "neuron_dock", "evaluation_dock", "roc_dock", "saliency_dock", "embedding_dock",
                     "landscape_dock", "regression_dock", "hidden_dock", "attention_dock", "prediction_dock", "text_dock")
HIDDEN_FOR_GENERATIVE = {"autoencoder": _CLASSIFIER_VIEWS,
                         "gan": _CLASSIFIER_VIEWS + ("filters_dock", "feature_maps_dock", "gradients_dock",
                                                     "distributions_dock")}
GAN_DOCKS = ("gan_dock",)


@dataclass
class GenerativeViews:
    recon: ReconstructionView
    latent: LatentView
    gan: GanView


class GenerativePresenter:
    """Feeds the views from snapshots; sends latent-walk requests one at a time (the newest wins)."""

    def __init__(self, model: RunModel, session, views: GenerativeViews):
        self.model, self.session, self.v = model, session, views
        self._in_flight = False
        self._pending: tuple[float, float] | None = None
        model.events.run.connect(self._on_model_run)
        views.latent.point_requested.connect(self.request_decode)
        session.decoded.connect(self._on_decoded)

    def _on_model_run(self, run) -> None:
        self._in_flight, self._pending = False, None
        if run is None:
            self.v.recon.clear()
            self.v.latent.clear()
            self.v.gan.clear()

    def render(self, snap: P.Snapshot) -> None:
        ex, v = snap.extras, self.v
        if "ae_recon" in ex:
            v.recon.set_images(ex["ae_inputs"], ex["ae_recon"])
            data = self.model.data
            names = list(data.info.class_names) if data is not None else None
            v.latent.set_latent(ex["ae_latent"], ex["ae_latent_labels"], ex["ae_latent_extent"],
                                int(ex.get("ae_latent_dim", 2)), names)
            v.latent.set_grid(ex.get("ae_grid"))
        if "gan_fake" in ex:
            v.gan.set_state(ex["gan_real"], ex["gan_fake"], ex["gan_heat"], ex["gan_extent"], ex.get("gan_arrows"))
            h = snap.history
            if "d_loss" in h:
                v.gan.set_losses(h["epoch"], h["d_loss"], h["g_loss"], h.get("real_to_fake"))

    # ---- latent walk ------------------------------------------------------------------------
    def request_decode(self, x: float, y: float) -> None:
        run = self.model.run
        if run is None:
            return
        if self._in_flight:
            self._pending = (x, y)
            return
        self._in_flight = self.session.send(P.DecodeLatent(run.run_id, np.asarray([[x, y]], np.float32)))

    def _on_decoded(self, ev: P.Decoded) -> None:
        run = self.model.run
        self._in_flight = False
        if run is None or ev.run_id != run.run_id:
            return
        if ev.images is not None and len(ev.images):
            self.v.latent.set_decoded(float(ev.points[0, 0]), float(ev.points[0, 1]), ev.images[0])
        elif ev.error:
            self.v.latent.caption.setText(ev.error)
        if self._pending is not None:
            x, y = self._pending
            self._pending = None
            self.request_decode(x, y)


def design_kind(spec) -> str:
    g = spec.generative
    return "classifier" if g is None else ("gan" if g.is_gan else "autoencoder")


def install_generative(controller) -> GenerativePresenter:
    """Add the docks and the presenter to a TrainingController's window."""
    w = controller.w
    views = GenerativeViews(ReconstructionView(), LatentView(), GanView())
    w.add_dock(views.recon, "Reconstructions", Qt.BottomDockWidgetArea, "recon_dock", tabify_with="saliency_dock")
    w.add_dock(views.latent, "Latent space", Qt.BottomDockWidgetArea, "latent_dock", tabify_with="recon_dock")
    w.add_dock(views.gan, "GAN", Qt.RightDockWidgetArea, "gan_dock", tabify_with="neuron_dock")
    panel = GenerativePanel()
    w.add_dock(panel, "Generative settings", Qt.RightDockWidgetArea, "generative_dock", tabify_with="inspector_dock")

    def hidden_for_design() -> set[str]:
        """The window's dock plan for this design: the views of other kinds of network have nothing to show."""
        kind = design_kind(w.document.spec)
        hidden = set(HIDDEN_FOR_GENERATIVE.get(kind, ()))
        if kind != "autoencoder":
            hidden |= set(AE_DOCKS)
        if kind == "gan":  # a GAN's data is its target (generative.target), and it has no kernels to try
            hidden |= {"data_dock", "kernel_lab_dock"}
        else:
            hidden |= set(GAN_DOCKS)
        if kind == "classifier":
            hidden.add("generative_dock")
        return hidden

    w.plan_providers.append(hidden_for_design)
    # tabifying brought the new docks to the front: the window's own choice of front tabs comes back
    w.docks["inspector_dock"].raise_()
    w.replan_docks()
    tracker = controller.options
    for name in AE_DOCKS + GAN_DOCKS:
        w.docks[name].widget().setMinimumSize(150, 120)
        w.views.docks[name] = w.docks[name]
        tracker.watch(w.docks[name])
    tracker.providers.append(lambda: {"generative": any(tracker.visible(n) for n in AE_DOCKS + GAN_DOCKS)})
    presenter = GenerativePresenter(controller.model, controller.session, views)
    presenter.views, presenter.panel = views, panel
    controller.presenters.append(presenter)
    shown = {"kind": None}

    def on_spec() -> None:
        panel.set_design(w.document.spec)
        kind = design_kind(w.document.spec)
        if kind == shown["kind"]:
            return
        shown["kind"] = kind
        # a GAN's solid and dashed lines are L_D and L_G (engine.gan), not train and validation
        w.views.curves.set_series_names(*(("discriminator", "generator") if kind == "gan" else ("train", "validation")))
        w.views.curves.set_accuracy_shown(kind == "classifier")  # no accuracy to plot: the loss gets the room
        w.show_views_for(w.data_info)  # which docks are shown follows the design too (hidden_for_design)
        if kind == "classifier":  # back from a generative design: the data's own front docks again
            w.replan_docks()
        elif kind == "autoencoder":
            w.raise_docks("latent_dock")
        elif kind == "gan":
            w.raise_docks("gan_dock", "curves_dock")
            # the generated points are the picture that matters: most of the right column for them
            w.resizeDocks([w.docks["inspector_dock"], w.docks["gan_dock"]],
                          [int(w.height() * 0.35), int(w.height() * 0.65)], Qt.Vertical)

    def on_drawn(points: np.ndarray) -> None:
        spec = w.document.spec
        if spec.generative is None or not spec.generative.is_gan:
            return
        after = spec.copy()
        after.generative.target = "drawn"
        after.generative.points = [(float(x), float(y)) for x, y in points]
        w.document.apply(after, "Draw the GAN's target")

    def on_setting(name: str, value) -> None:
        spec = w.document.spec
        if spec.generative is None or getattr(spec.generative, name, None) == value:
            return
        after = spec.copy()
        setattr(after.generative, name, value)
        w.document.apply(after, f"Change {name.replace('_', ' ')}", merge_key=("generative", name))

    views.gan.target_drawn.connect(on_drawn)
    panel.setting_changed.connect(on_setting)
    w.document.spec_changed.connect(on_spec)
    on_spec()
    return presenter
