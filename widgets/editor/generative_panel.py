"""The design's generative settings (engine.generative_spec) as a form: an autoencoder's bottleneck,
loss and beta; a GAN's target, noise size and each side's optimiser, learning rate and steps.

``setting_changed(name, value)`` is emitted for each edit; the window applies it to the design.
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QSpinBox, QWidget

from engine.generative_spec import GAN_OPTIMIZERS, GAN_TARGETS, RECON_LOSSES


class GenerativePanel(QWidget):
    setting_changed = Signal(str, object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._loading = False
        self.form = QFormLayout(self)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.form.addRow(self.title)
        self.fields: dict[str, QWidget] = {}
        self._combo("bottleneck", "Bottleneck", [], "The layer whose output is the latent code")
        self._combo("recon_loss", "Reconstruction loss", RECON_LOSSES, "mse on standardised values, or bce on pixels 0..1")
        self._double("beta", "KL weight (beta)", 0.0, 100.0, 0.1, "A VAE's KL term is multiplied by this")
        self._combo("target", "Target distribution", GAN_TARGETS, "What the generator learns to imitate")
        self._int("noise_dim", "Noise size", 1, 64, "Inputs of the generator")
        for side, name in (("g", "Generator"), ("d", "Discriminator")):
            self._combo(f"{side}_optimizer", f"{name} optimiser", GAN_OPTIMIZERS, f"The {name.lower()}'s optimiser")
            self._double(f"{side}_lr", f"{name} learning rate", 1e-6, 1.0, 0.0005, "", decimals=5)
            self._int(f"{side}_steps", f"{name} steps", 1, 20, f"{name} steps per iteration")
        self.set_design(None)

    # ---- building ----------------------------------------------------------------------------
    def _add(self, name: str, label: str, w: QWidget, tip: str) -> None:
        w.setToolTip(tip)
        self.fields[name] = w
        self.form.addRow(label, w)

    def _combo(self, name, label, choices, tip) -> None:
        w = QComboBox()
        w.addItems(list(choices))
        w.currentTextChanged.connect(lambda text, n=name: self._emit(n, text))
        self._add(name, label, w, tip)

    def _double(self, name, label, lo, hi, step, tip, decimals=3) -> None:
        w = QDoubleSpinBox()
        w.setRange(lo, hi)
        w.setDecimals(decimals)
        w.setSingleStep(step)
        w.valueChanged.connect(lambda v, n=name: self._emit(n, float(v)))
        self._add(name, label, w, tip)

    def _int(self, name, label, lo, hi, tip) -> None:
        w = QSpinBox()
        w.setRange(lo, hi)
        w.valueChanged.connect(lambda v, n=name: self._emit(n, int(v)))
        self._add(name, label, w, tip)

    def _emit(self, name: str, value) -> None:
        if not self._loading:
            self.setting_changed.emit(name, value)

    # ---- showing a design ----------------------------------------------------------------------
    def set_design(self, spec) -> None:
        g = getattr(spec, "generative", None)
        self._loading = True
        try:
            ae = g is not None and g.is_autoencoder
            gan = g is not None and g.is_gan
            self.title.setText("A classifier: no generative settings." if g is None else
                               f"{g.kind.upper() if g.kind == 'vae' else g.kind.capitalize()} settings")
            for name, w in self.fields.items():
                show = (ae and name in ("bottleneck", "recon_loss", "beta")) or (gan and name not in
                                                                                  ("bottleneck", "recon_loss", "beta"))
                if name == "beta":
                    show = show and g.kind == "vae"
                w.setVisible(show)
                self.form.labelForField(w).setVisible(show)
                if not show:
                    continue
                value = getattr(g, name)
                if isinstance(w, QComboBox):
                    if name == "bottleneck":
                        w.clear()
                        w.addItems([lay.id for lay in spec.layers if lay.kind not in ("Input", "Output")])
                    w.setCurrentText(str(value))
                else:
                    w.setValue(value)
        finally:
            self._loading = False
