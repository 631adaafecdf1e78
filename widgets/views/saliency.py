"""The Saliency view: which input pixels drive the network's score for a class.

Three panels side by side: the input, the attribution map alone (with its colour scale) and the
attribution laid over the input. Magnitudes (gradient, SmoothGrad, Grad-CAM) use a sequential
heat map from 0 to the largest value; Integrated Gradients keeps its sign, so it uses the
diverging blue - white - orange map symmetric around 0 (orange raises the class score, blue
lowers it). In the overlay each pixel's opacity grows with |attribution| (times the slider), so
unimportant pixels show the input untouched.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QSlider, QVBoxLayout, QWidget

from widgets.paint.colorbar import ColorBar
from widgets.paint.colormaps import map_argb, map_rgb, symmetric_limit
from widgets.paint.images import image_to_rgb01, rgb_to_argb
from widgets.views.image_grid import ImageView

METHODS: tuple[tuple[str, str, str], ...] = (
    ("gradient", "Gradient (vanilla)", "|d score / d pixel|, max over channels: where a tiny change moves the score most."),
    ("smoothgrad", "SmoothGrad", "The gradient averaged over noisy copies of the input: less speckle, same idea."),
    ("integrated_gradients", "Integrated Gradients",
     "Gradients summed along a path from a blank input, signed: orange pixels raise the class score, blue lower it."),
    ("gradcam", "Grad-CAM",
     "Where a conv layer's features matter for the class, upsampled to the input (coarse, class-specific)."),
)
METHOD_NAMES = {key: name for key, name, _ in METHODS}
SIGNED = {"integrated_gradients"}


def _pct(p: float) -> str:
    return f"{100 * p:.0f}%" if p >= 0.01 or p == 0 else f"{100 * p:.1f}%"


class _Panels(QWidget):
    """Three square images side by side with captions above and the scale / opacity row below.

    Laid out by hand so the captions, images and colour bar stay together as one block whatever
    the dock's shape (a grid layout would park the colour bar at the bottom of a tall dock).
    """

    def __init__(self, parent: QWidget, views: list[ImageView], captions: list[str], colorbar: ColorBar, under_overlay: QWidget):
        super().__init__(parent)
        self.views = views
        self.captions = []
        for view, text in zip(views, captions, strict=True):
            view.setParent(self)
            cap = QLabel(f"<b>{text}</b>", self)
            cap.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom)
            self.captions.append(cap)
        self.colorbar = colorbar
        colorbar.setParent(self)
        self.under_overlay = under_overlay
        under_overlay.setParent(self)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def _metrics(self) -> tuple[int, int, int]:
        return 14, self.captions[0].sizeHint().height() + 2, max(self.colorbar.height(), self.under_overlay.sizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        gap, cap_h, bar_h = self._metrics()
        return QSize(3 * 220 + 2 * gap, cap_h + 220 + bar_h + 8)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        gap, cap_h, bar_h = self._metrics()
        return QSize(3 * 72 + 2 * gap, cap_h + 72 + bar_h + 8)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        gap, cap_h, bar_h = self._metrics()
        w, h = self.width(), self.height()
        side = int(max(40, min((w - 2 * gap) / 3, h - cap_h - bar_h - 8)))
        x0 = max(0, (w - (3 * side + 2 * gap)) // 2)
        for i, (cap, view) in enumerate(zip(self.captions, self.views, strict=True)):
            x = x0 + i * (side + gap)
            cap.setGeometry(x, 0, side, cap_h)
            view.setGeometry(x, cap_h, side, side)
        below = cap_h + side + 6
        for col, widget in ((1, self.colorbar), (2, self.under_overlay)):
            bw = max(side, 200)
            cx = x0 + col * (side + gap) + side // 2
            widget.setGeometry(min(max(0, cx - bw // 2), max(0, w - bw)), below, bw, bar_h)


class SaliencyView(QWidget):
    """Pick a method/target/layer (``options_changed``) and show the attribution the app computes."""

    options_changed = Signal(dict)  # {"method": str, "target": int | None, "layer": str | None}

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._class_names: list[str] = []
        self._result: dict | None = None

        self.method_combo = QComboBox(self)
        for key, name, help_text in METHODS:
            self.method_combo.addItem(name, key)
            self.method_combo.setItemData(self.method_combo.count() - 1, help_text, Qt.ItemDataRole.ToolTipRole)
        self.layer_label = QLabel("Layer", self)
        self.layer_combo = QComboBox(self)
        self.layer_combo.setToolTip("Conv layer Grad-CAM looks at (the last one is usual: most semantic, still spatial)")
        self.target_combo = QComboBox(self)
        self.target_combo.setToolTip("Class whose score is explained")
        self.target_combo.addItem("predicted class", None)
        self.alpha_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.alpha_slider.setRange(0, 100)
        self.alpha_slider.setValue(70)
        self.alpha_slider.setToolTip("Opacity of the attribution over the input")
        self.alpha_slider.setMaximumWidth(160)

        self.title_label = QLabel(self)
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        self.title_label.setFont(font)
        self.help_label = QLabel(self)
        self.help_label.setWordWrap(True)
        self.help_label.setStyleSheet("color: #666;")

        self.input_view = ImageView(self, placeholder="")
        self.map_view = ImageView(self, placeholder="")
        self.overlay_view = ImageView(self, placeholder="")
        self.colorbar = ColorBar(self, cmap="inferno")
        self.placeholder = QLabel("Train the network (or pick a sample in Feature maps) to see which pixels drive "
                                  "its prediction.", self)
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color: #777;")

        top = QHBoxLayout()
        top.addWidget(QLabel("Method", self))
        top.addWidget(self.method_combo)
        top.addSpacing(6)
        top.addWidget(self.layer_label)
        top.addWidget(self.layer_combo)
        top.addSpacing(6)
        top.addWidget(QLabel("Target", self))
        top.addWidget(self.target_combo)
        top.addStretch(1)

        self._panels = _Panels(self, [self.input_view, self.map_view, self.overlay_view], ["Input", "Attribution", "Overlay"],
                               self.colorbar, self._opacity_row())

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(5)
        lay.addLayout(top)
        lay.addWidget(self.title_label)
        lay.addWidget(self.help_label)
        lay.addWidget(self._panels, 1)
        lay.addWidget(self.placeholder, 1)

        self.method_combo.activated.connect(self._on_method_combo_activated)
        self.layer_combo.activated.connect(self._on_layer_combo_activated)
        self.target_combo.activated.connect(self._on_target_combo_activated)
        self.alpha_slider.valueChanged.connect(self._on_alpha_slider_value_changed)
        self._sync_controls()
        self._show_result_widgets(False)

    def _opacity_row(self) -> QWidget:
        row = QWidget(self)
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addStretch(1)
        lay.addWidget(QLabel("opacity", row))
        lay.addWidget(self.alpha_slider)
        lay.addStretch(1)
        return row

    # ---- public API ---------------------------------------------------------------------
    def options(self) -> dict:
        """{"method": ..., "target": None (predicted) or class index, "layer": conv id for Grad-CAM else None}."""
        method = self.method_combo.currentData()
        layer = self.layer_combo.currentData() if method == "gradcam" and self.layer_combo.count() else None
        return {"method": method, "target": self.target_combo.currentData(), "layer": layer}

    def set_options(self, method: str | None = None, target: int | None = -1, layer: str | None = None) -> None:
        """Set the controls without emitting (``target=-1`` leaves the target as it is)."""
        if method is not None:
            i = self.method_combo.findData(method)
            if i < 0:
                raise ValueError(f"saliency method {method!r} is unknown - use one of {', '.join(METHOD_NAMES)}")
            self.method_combo.setCurrentIndex(i)
        if target != -1:
            i = self.target_combo.findData(target)
            self.target_combo.setCurrentIndex(max(0, i))
        if layer is not None:
            i = self.layer_combo.findData(layer)
            if i >= 0:
                self.layer_combo.setCurrentIndex(i)
        self._sync_controls()

    def set_conv_layers(self, ids: list[str]) -> None:
        """Conv layers Grad-CAM can use (network order); keeps the choice if still there, else the last one."""
        current = self.layer_combo.currentData()
        ids = [str(i) for i in ids]
        self.layer_combo.clear()
        for lid in ids:
            self.layer_combo.addItem(lid, lid)
        i = ids.index(current) if current in ids else len(ids) - 1
        self.layer_combo.setCurrentIndex(i)
        self._sync_controls()

    def set_classes(self, names: list[str]) -> None:
        """Class names for the target chooser; keeps the chosen class if it still exists."""
        current = self.target_combo.currentData()
        self._class_names = [str(n) for n in names]
        self.target_combo.clear()
        self.target_combo.addItem("predicted class", None)
        for i in range(len(self._class_names)):
            self.target_combo.addItem(self._class_label(i), i)
        j = self.target_combo.findData(current) if current is not None else 0
        self.target_combo.setCurrentIndex(max(0, j))

    def set_result(self, input_image: np.ndarray, attribution: np.ndarray, method: str, predicted: int | None = None,
                   target: int | None = None, class_names: list[str] | None = None, proba: np.ndarray | None = None) -> None:
        """Show an attribution (H, W) for ``input_image`` (C, H, W) computed with ``method`` for class ``target``."""
        if class_names is not None:
            self._class_names = [str(n) for n in class_names]
        attr = np.asarray(attribution, dtype=np.float32)
        img = np.asarray(input_image, dtype=np.float32)
        if img.ndim == 2:
            img = img[None]
        if attr.ndim != 2 or img.ndim != 3:
            self.clear(f"Saliency maps need an image input: got an attribution of shape {attr.shape} "
                       f"for an input of shape {img.shape}.")
            return
        if attr.shape != img.shape[1:]:
            self.clear(f"The attribution is {attr.shape[0]}x{attr.shape[1]} but the input is {img.shape[1]}x{img.shape[2]} "
                       "- they must match (Grad-CAM maps are upsampled to the input size).")
            return
        self._result = {"image": img, "attr": attr, "method": method, "predicted": predicted, "target": target,
                        "proba": None if proba is None else np.asarray(proba, dtype=np.float64).reshape(-1)}
        self._render()

    def clear(self, message: str | None = None) -> None:
        """Back to the placeholder (with ``message`` if given)."""
        self._result = None
        if message:
            self.placeholder.setText(message)
        self._show_result_widgets(False)

    def displayed_attribution(self) -> np.ndarray | None:
        return None if self._result is None else self._result["attr"].copy()

    def title(self) -> str:
        return self.title_label.text()

    def alpha(self) -> float:
        return self.alpha_slider.value() / 100.0

    # ---- rendering ----------------------------------------------------------------------
    def _class_label(self, i: int) -> str:
        name = self._class_names[i] if 0 <= i < len(self._class_names) else str(i)
        return f"class {i}" if name == str(i) else f"class {i} ({name})"

    def _render(self) -> None:
        r = self._result
        if r is None:
            return
        img, attr, method = r["image"], r["attr"], r["method"]
        signed = method in SIGNED or (np.nanmin(attr) < 0 if attr.size else False)
        if signed:
            m = symmetric_limit(attr)
            lo, hi, cmap = -m, m, "diverging"
            norm = np.clip(np.abs(np.nan_to_num(attr)) / m, 0, 1)
        else:
            hi = float(np.nanmax(attr)) if attr.size and np.isfinite(attr).any() else 1.0
            hi = hi if hi > 0 else 1.0
            lo, cmap = 0.0, "inferno"
            norm = np.clip(np.nan_to_num(attr) / hi, 0, 1)
        base = image_to_rgb01(img)
        self.input_view.set_argb(rgb_to_argb(base))
        self.map_view.set_argb(map_argb(attr, cmap, lo, hi))
        self.colorbar.set_range(lo, hi, cmap=cmap, label="")

        # Overlay: a desaturated input under the map colour; opacity follows |attribution| so the
        # unimportant pixels keep the input visible.
        gray = base.mean(axis=-1, keepdims=True)
        under = 0.06 + 0.6 * np.repeat(gray, 3, axis=-1)  # darker than the input so light colours still show
        heat = map_rgb(np.nan_to_num(attr), cmap, lo, hi).astype(np.float32) / 255.0
        a = (self.alpha() * np.sqrt(norm))[..., None]  # sqrt: faint but real attributions stay visible
        self.overlay_view.set_argb(rgb_to_argb(under * (1 - a) + heat * a))

        self.title_label.setText(self._title_text())
        self.help_label.setText(dict((k, h) for k, _, h in METHODS).get(method, ""))
        self._show_result_widgets(True)

    def _title_text(self) -> str:
        r = self._result
        name = METHOD_NAMES.get(r["method"], r["method"])
        pred, target, proba = r["predicted"], r["target"], r["proba"]
        if target is None:
            target = pred
        head = f"{name} for {self._class_label(target)}" if target is not None else name
        bits = []
        if pred is not None:
            p = f", {_pct(proba[pred])}" if proba is not None and 0 <= pred < len(proba) else ""
            bits.append(f"predicted {self._class_names[pred] if 0 <= pred < len(self._class_names) else pred}{p}")
        if target is not None and pred is not None and target != pred and proba is not None and 0 <= target < len(proba):
            bits.append(f"{self._class_label(target)}: {_pct(proba[target])}")
        return f"{head} ({'; '.join(bits)})" if bits else head

    def _show_result_widgets(self, on: bool) -> None:
        self._panels.setVisible(on)
        self.title_label.setVisible(on)
        self.help_label.setVisible(on)
        self.placeholder.setVisible(not on)

    def _sync_controls(self) -> None:
        gradcam = self.method_combo.currentData() == "gradcam"
        self.layer_label.setVisible(gradcam)
        self.layer_combo.setVisible(gradcam)
        # Grad-CAM needs a conv layer; say so on the item rather than failing later in the worker.
        i = self.method_combo.findData("gradcam")
        item_ok = self.layer_combo.count() > 0
        model = self.method_combo.model()
        item = model.item(i) if hasattr(model, "item") else None
        if item is not None:
            item.setEnabled(item_ok or gradcam)
            item.setToolTip(METHODS[3][2] if item_ok else "Grad-CAM needs a Conv2d layer in the design")

    # ---- handlers -----------------------------------------------------------------------
    def _emit_options(self) -> None:
        self.options_changed.emit(self.options())

    def _on_method_combo_activated(self, index: int) -> None:
        self._sync_controls()
        self._emit_options()

    def _on_layer_combo_activated(self, index: int) -> None:
        self._emit_options()

    def _on_target_combo_activated(self, index: int) -> None:
        self._emit_options()

    def _on_alpha_slider_value_changed(self, value: int) -> None:
        self._render()
