"""The Feature maps view: what every image layer of the network makes of one input.

Left: the input chooser (browse the validation set, or draw one) and the network's prediction.
Right: one section per image layer in network order ("conv1 - Conv2d - 8x28x28"), each channel a
small tile, with the input image on top. Maps are coloured with a sequential map (viridis, dark =
low, yellow = high), stretched min..max per map by default, so every channel's pattern is
readable even when its values are small; "per layer" uses one range for the whole layer, which
shows which channels respond most. All tiles of a layer are drawn at the same size whatever
their resolution (as CNN Explainer does), so a 7x7 map is as visible as a 28x28 one.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from widgets.paint.colorbar import fmt_value
from widgets.paint.colormaps import finite_range, map_argb
from widgets.paint.images import image_to_argb, images_to_argb
from widgets.views.draw_pad import DrawPad
from widgets.views.image_grid import ProbabilityBars, TileGrid

MAX_CHANNELS = 64  # per layer; more tiles than this is a wall of noise and slow to update
TILE_PX = 56
THUMBS = 10  # validation thumbnails shown around the current sample
CMAP = "viridis"


def _shape_text(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


class _Section(QFrame):
    """One layer: a header line and its channel tiles; clicking anywhere on it selects the layer."""

    clicked = Signal(str)

    def __init__(self, layer_id: str, title: str, parent: QWidget | None = None, tile_px: int = TILE_PX):
        super().__init__(parent)
        self.layer_id = layer_id
        self.setObjectName("fmSection")
        self.header = QLabel(title, self)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.note = QLabel(self)
        self.note.setStyleSheet("color: #777;")
        self.note.hide()
        self.grid = TileGrid(self, tile_px=tile_px, gap=3, max_scale=16)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 5, 8, 7)
        lay.setSpacing(3)
        lay.addWidget(self.header)
        lay.addWidget(self.grid)
        lay.addWidget(self.note)
        self.grid.tile_clicked.connect(self._on_grid_tile_clicked)
        self.set_highlighted(False)

    def set_highlighted(self, on: bool) -> None:
        self.setStyleSheet("QFrame#fmSection { background: rgba(47,111,235,0.09); border: 1px solid rgba(47,111,235,0.55);"
                           " border-radius: 5px; }" if on else
                           "QFrame#fmSection { background: transparent; border: 1px solid transparent; border-radius: 5px; }")

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.layer_id)
        super().mousePressEvent(event)

    def _on_grid_tile_clicked(self, i: int) -> None:
        self.clicked.emit(self.layer_id)


class FeatureMapsView(QWidget):
    """Browse or draw an input and see every image layer's channels for it."""

    # An int index into the validation set, or a drawn (C, H, W) float32 image with ink in [0, 1]
    # (raw, like the dataset's pixels scaled to [0, 1]: the app standardises it as the data were).
    sample_changed = Signal(object)
    layer_selected = Signal(str)  # the user clicked a layer's section

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._images: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._class_names: list[str] = []
        self._input_shape: tuple[int, int, int] | None = None
        self._maps: dict[str, np.ndarray] = {}
        self._sections: dict[str, _Section] = {}
        self._structure: list[tuple[str, str, tuple]] = []
        self._selected: str | None = None
        self._input_image: np.ndarray | None = None
        self._thumb_start = 0
        self._build_left()
        self._build_right()
        split = QSplitter(Qt.Orientation.Horizontal, self)
        left_scroll = QScrollArea(self)  # a short dock scrolls the chooser instead of clipping the prediction
        left_scroll.setWidget(self._left)
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left_scroll.setMinimumWidth(240)
        left_scroll.setMaximumWidth(320)
        split.addWidget(left_scroll)
        split.addWidget(self._right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        split.setSizes([270, 800])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split)
        self._update_browser()

    # ---- construction -------------------------------------------------------------------
    def _build_left(self) -> None:
        self._left = QWidget(self)
        self.browse_button = QToolButton(self._left)
        self.browse_button.setText("Validation set")
        self.draw_button = QToolButton(self._left)
        self.draw_button.setText("Draw")
        self.mode_group = QButtonGroup(self)
        for i, b in enumerate((self.browse_button, self.draw_button)):
            b.setCheckable(True)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self.mode_group.addButton(b, i)
        self.browse_button.setChecked(True)
        self.browse_button.setToolTip("Pick a sample of the validation set")
        self.draw_button.setToolTip("Draw your own input with the mouse")

        # Validation browser page.
        self.prev_button = QToolButton(self._left)
        self.prev_button.setArrowType(Qt.ArrowType.LeftArrow)
        self.prev_button.setToolTip("Previous sample")
        self.next_button = QToolButton(self._left)
        self.next_button.setArrowType(Qt.ArrowType.RightArrow)
        self.next_button.setToolTip("Next sample")
        self.index_spin = QSpinBox(self._left)
        self.index_spin.setKeyboardTracking(False)
        self.index_spin.setToolTip("Index of the sample in the validation set")
        self.count_label = QLabel(self._left)
        self.label_label = QLabel(self._left)
        self.thumbs = TileGrid(self._left, tile_px=36, gap=3, max_scale=8)
        browse = QWidget(self._left)
        nav = QHBoxLayout()
        nav.setContentsMargins(0, 0, 0, 0)
        nav.addWidget(self.prev_button)
        nav.addWidget(self.index_spin, 1)
        nav.addWidget(self.next_button)
        nav.addWidget(self.count_label)
        bl = QVBoxLayout(browse)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addLayout(nav)
        bl.addWidget(self.label_label)
        bl.addWidget(self.thumbs)

        # Draw page.
        self.draw_pad = DrawPad(self._left)
        self.clear_button = QPushButton("Clear", self._left)
        self.clear_button.setToolTip("Wipe the drawing")
        draw = QWidget(self._left)
        dl = QVBoxLayout(draw)
        dl.setContentsMargins(0, 0, 0, 0)
        hint = QLabel("Draw with the left button, erase with the right.", draw)
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #777;")
        dl.addWidget(self.draw_pad, 1)
        row = QHBoxLayout()
        row.addWidget(hint, 1)
        row.addWidget(self.clear_button)
        dl.addLayout(row)

        # Two pages, one shown; not a QStackedWidget, which stays as tall as its tallest page.
        self._pages = [browse, draw]
        self._page = 0
        self.prediction_title = QLabel("<b>Prediction</b>", self._left)
        self.prediction = ProbabilityBars(self._left)
        self.prediction_empty = QLabel("(appears once the network runs)", self._left)
        self.prediction_empty.setStyleSheet("color: #777;")

        modes = QHBoxLayout()
        modes.setSpacing(0)
        modes.addWidget(self.browse_button)
        modes.addWidget(self.draw_button)
        lay = QVBoxLayout(self._left)
        lay.setContentsMargins(2, 2, 6, 2)
        lay.addLayout(modes)
        lay.addWidget(browse)
        lay.addWidget(draw)
        lay.addSpacing(8)
        lay.addWidget(self.prediction_title)
        lay.addWidget(self.prediction)
        lay.addWidget(self.prediction_empty)
        lay.addStretch(1)

        self._show_page(0)
        self.mode_group.idClicked.connect(self._on_mode_group_id_clicked)
        self.prev_button.clicked.connect(self._on_prev_button_clicked)
        self.next_button.clicked.connect(self._on_next_button_clicked)
        self.index_spin.valueChanged.connect(self._on_index_spin_value_changed)
        self.thumbs.tile_clicked.connect(self._on_thumbs_tile_clicked)
        self.draw_pad.drawing_changed.connect(self._on_draw_pad_drawing_changed)
        self.clear_button.clicked.connect(self._on_clear_button_clicked)

    def _build_right(self) -> None:
        self._right = QWidget(self)
        self.scale_combo = QComboBox(self._right)
        self.scale_combo.addItem("colour range per map", "map")
        self.scale_combo.addItem("colour range per layer", "layer")
        self.scale_combo.setToolTip("Per map: every channel stretched to its own min..max (patterns always visible).\n"
                                    "Per layer: one range per layer (shows which channels respond most).")
        self.summary_label = QLabel(self._right)
        self.summary_label.setStyleSheet("color: #666;")
        self.placeholder = QLabel("No image layers to show yet - build a network with Conv2d layers on image data, "
                                  "then train or pick a sample.", self._right)
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color: #777;")
        self._body = QWidget()
        self._body_lay = QVBoxLayout(self._body)
        self._body_lay.setContentsMargins(2, 2, 2, 2)
        self._body_lay.setSpacing(4)
        self.input_section = _Section("", "<b>Input</b>", self._body, tile_px=84)
        self._body_lay.addWidget(self.input_section)
        self._body_lay.addStretch(1)
        self.scroll = QScrollArea(self._right)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(self._body)
        top = QHBoxLayout()
        top.addWidget(self.summary_label, 1)
        top.addWidget(self.scale_combo)
        lay = QVBoxLayout(self._right)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.scroll, 1)
        lay.addWidget(self.placeholder, 1)
        self.scale_combo.activated.connect(self._on_scale_combo_activated)
        self.input_section.hide()
        self.placeholder.show()

    # ---- public API: input --------------------------------------------------------------
    def set_input_shape(self, shape) -> None:
        """The network's input (C, H, W); sizes the draw pad."""
        shape = tuple(int(d) for d in shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"input shape must be (C, H, W) with positive sizes, got {shape}")
        self._input_shape = shape  # type: ignore[assignment]
        self.draw_pad.set_size(shape[1], shape[2])

    def set_samples(self, images: np.ndarray | None, labels: np.ndarray | None = None,
                    class_names: list[str] | None = None) -> None:
        """The validation set to browse: images (N, C, H, W) float, labels (N,) int. Does not emit."""
        if images is None or len(images) == 0:
            self._images, self._labels = None, None
        else:
            a = np.asarray(images)
            if a.ndim == 3:
                a = a[:, None]
            if a.ndim != 4:
                raise ValueError(f"validation images must be (N, C, H, W), got shape {a.shape}")
            self._images = a
            self._labels = None if labels is None else np.asarray(labels).reshape(-1)
            if self._input_shape is None:
                self.set_input_shape(a.shape[1:])
        self._class_names = [str(c) for c in (class_names or [])]
        n = 0 if self._images is None else len(self._images)
        self.index_spin.blockSignals(True)
        self.index_spin.setRange(0, max(0, n - 1))
        self.index_spin.blockSignals(False)
        self._update_browser()

    def current_sample(self) -> int | np.ndarray | None:
        """What sample_changed last said (or would say): an index, a drawn (C, H, W) image, or None."""
        if self.is_drawing():
            return self._drawn_input()
        return None if self._images is None else int(self.index_spin.value())

    def current_index(self) -> int:
        return int(self.index_spin.value())

    def set_current_index(self, index: int) -> None:
        """Show validation sample ``index`` (switches to browsing); emits sample_changed(index) if it changed."""
        if self._images is None:
            return
        index = int(np.clip(index, 0, len(self._images) - 1))
        if self.is_drawing():
            self.browse_button.setChecked(True)
            self._show_page(0)
            if index == self.index_spin.value():
                self._update_browser()
                self.sample_changed.emit(index)
                return
        self.index_spin.setValue(index)  # emits through _on_index_spin_value_changed

    def is_drawing(self) -> bool:
        return self._page == 1

    def set_drawing_mode(self, on: bool) -> None:
        (self.draw_button if on else self.browse_button).setChecked(True)
        self._on_mode_group_id_clicked(1 if on else 0)

    # ---- public API: maps ---------------------------------------------------------------
    def set_feature_maps(self, maps: dict[str, np.ndarray], order: list[str] | None = None,
                         kinds: dict[str, str] | None = None, input_image: np.ndarray | None = None) -> None:
        """Channels of every image layer for the current sample: {layer id: (C', H', W')}.

        ``order`` is the network order (ids not in ``maps`` are skipped), ``kinds`` names each
        layer's kind for the header; ``input_image`` (C, H, W) overrides the image shown on top.
        """
        kinds = kinds or {}
        ids = [i for i in (order or []) if i in maps] + [i for i in maps if i not in (order or [])]
        clean: dict[str, np.ndarray] = {}
        bad = []
        for lid in ids:
            a = np.asarray(maps[lid], dtype=np.float32)
            if a.ndim == 2:
                a = a[None]
            if a.ndim != 3 or not a.size:
                bad.append(f"{lid} (shape {a.shape})")
                continue
            clean[lid] = a[:MAX_CHANNELS]
        structure = [(lid, kinds.get(lid, ""), tuple(np.asarray(maps[lid]).shape)) for lid in clean]
        if structure != self._structure:
            self._rebuild_sections(structure)
        self._maps = clean
        if input_image is not None:
            self._input_image = np.asarray(input_image, dtype=np.float32)
        self._draw_sections()
        self._draw_input()
        n_ch = sum(np.asarray(maps[lid]).shape[0] for lid in clean)
        text = f"{len(clean)} image layer{'s' if len(clean) != 1 else ''}, {n_ch} channels" if clean else ""
        if bad:
            text += f"  -  skipped {', '.join(bad)}: feature maps must be (C, H, W)"
        self.summary_label.setText(text)

    def set_prediction(self, proba: np.ndarray | None, class_names: list[str] | None = None) -> None:
        """The network's class probabilities (k,) for the current sample (None clears)."""
        names = class_names if class_names is not None else self._class_names
        true = None
        if not self.is_drawing() and self._labels is not None and self._images is not None:
            true = int(self._labels[self.current_index()])
        self.prediction.set_probabilities(proba, names, true_class=true)
        self.prediction_empty.setVisible(proba is None)

    def select_layer(self, layer_id: str | None) -> None:
        """Highlight ``layer_id``'s section and scroll to it (no signal); unknown ids clear the highlight."""
        self._selected = layer_id if layer_id in self._sections else None
        for lid, sec in self._sections.items():
            sec.set_highlighted(lid == self._selected)
        if self._selected:
            self.scroll.ensureWidgetVisible(self._sections[self._selected], 0, 20)

    def selected_layer(self) -> str | None:
        return self._selected

    def displayed_maps(self) -> dict[str, np.ndarray]:
        """{layer id: the (C', H', W') float array shown} (channels beyond MAX_CHANNELS are cut)."""
        return {k: v.copy() for k, v in self._maps.items()}

    def section_titles(self) -> dict[str, str]:
        return {lid: sec.header.text() for lid, sec in self._sections.items()}

    def section(self, layer_id: str) -> _Section:
        return self._sections[layer_id]

    # ---- drawing ------------------------------------------------------------------------
    def _rebuild_sections(self, structure: list[tuple[str, str, tuple]]) -> None:
        for sec in self._sections.values():
            self._body_lay.removeWidget(sec)
            sec.deleteLater()
        self._sections = {}
        for pos, (lid, kind, shape) in enumerate(structure):
            title = f"<b>{lid}</b> <span style='color:#666'>- {kind + ' - ' if kind else ''}{_shape_text(shape)}</span>"
            sec = _Section(lid, title, self._body)
            sec.clicked.connect(self._on_section_clicked)
            if shape[0] > MAX_CHANNELS:
                sec.note.setText(f"showing the first {MAX_CHANNELS} of {shape[0]} channels")
                sec.note.show()
            self._body_lay.insertWidget(1 + pos, sec)
            self._sections[lid] = sec
            sec.set_highlighted(lid == self._selected)
        self._structure = structure
        empty = not structure
        self.placeholder.setVisible(empty)
        self.scroll.setVisible(not empty)

    def _draw_sections(self) -> None:
        per_layer = self.scale_combo.currentData() == "layer"
        for lid, a in self._maps.items():
            sec = self._sections.get(lid)
            if sec is None:
                continue
            if per_layer:
                lo, hi = finite_range(a)
                tiles = map_argb(a, CMAP, lo, hi)
            else:
                # Per map: stretch each channel to its own range in one vectorised pass.
                flat = a.reshape(len(a), -1)
                ok = np.isfinite(flat)
                lo = np.where(ok, flat, np.inf).min(axis=1)
                hi = np.where(ok, flat, -np.inf).max(axis=1)
                lo, hi = np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(hi), hi, 0.0)  # all-NaN channel
                span = np.where(hi > lo, hi - lo, 1.0).astype(np.float32)
                norm = (a - lo[:, None, None].astype(np.float32)) / span[:, None, None]
                tiles = map_argb(norm, CMAP, 0.0, 1.0)
            sec.grid.set_tiles(tiles, tooltip=lambda i, lid=lid: self._tile_tooltip(lid, i))

    def _tile_tooltip(self, lid: str, i: int) -> str:
        a = self._maps.get(lid)
        if a is None or i >= len(a):
            return ""
        ch = a[i]
        lo, hi = finite_range(ch)
        extra = "  (constant: this channel is silent for this input)" if lo == hi else ""
        finite = ch[np.isfinite(ch)]
        mean = fmt_value(float(finite.mean())) if finite.size else "nan"
        return f"{lid}, channel {i}\nmin {fmt_value(lo)}, max {fmt_value(hi)}, mean {mean}{extra}"

    def _current_input_image(self) -> np.ndarray | None:
        if self._input_image is not None:
            return self._input_image
        if self.is_drawing():
            return self._drawn_input()
        if self._images is not None:
            return np.asarray(self._images[self.current_index()], dtype=np.float32)
        return None

    def _draw_input(self) -> None:
        img = self._current_input_image()
        if img is None:
            self.input_section.hide()
            return
        shape = img.shape if img.ndim == 3 else (1,) + img.shape
        what = "drawn" if self.is_drawing() else f"validation sample {self.current_index()}"
        label = self._label_text(self.current_index()) if not self.is_drawing() else ""
        self.input_section.header.setText(f"<b>Input</b> <span style='color:#666'>- {_shape_text(shape)} - {what}"
                                          f"{', ' + label if label else ''}</span>")
        self.input_section.grid.set_tiles(image_to_argb(img)[None])
        self.input_section.show()

    def _label_text(self, i: int) -> str:
        if self._labels is None or i >= len(self._labels):
            return ""
        y = int(self._labels[i])
        name = self._class_names[y] if 0 <= y < len(self._class_names) else str(y)
        return f"label {name}" if name == str(y) else f"label {y} ({name})"

    def _update_browser(self) -> None:
        n = 0 if self._images is None else len(self._images)
        for w in (self.prev_button, self.next_button, self.index_spin):
            w.setEnabled(n > 0)
        self.count_label.setText(f"of {n}" if n else "")
        if not n:
            self.label_label.setText("No validation images - pick an image dataset.")
            self.thumbs.clear()
            return
        i = self.current_index()
        self.prev_button.setEnabled(i > 0)
        self.next_button.setEnabled(i < n - 1)
        self.label_label.setText(self._label_text(i) or "")
        start = int(np.clip(i - THUMBS // 2, 0, max(0, n - THUMBS)))
        self._thumb_start = start
        thumbs = images_to_argb(self._images[start:start + THUMBS])
        self.thumbs.set_tiles(thumbs, tooltip=self._thumb_tooltip)
        self.thumbs.set_selected(i - start)
        self._input_image = None
        self._draw_input()

    def _thumb_tooltip(self, k: int) -> str:
        i = self._thumb_start + k
        return f"sample {i}  {self._label_text(i)}".strip()

    def _show_page(self, index: int) -> None:
        self._page = index
        for i, page in enumerate(self._pages):
            page.setVisible(i == index)

    def _drawn_input(self) -> np.ndarray:
        img = self.draw_pad.image()
        c = self._input_shape[0] if self._input_shape else 1
        return np.repeat(img[None], c, axis=0).astype(np.float32)

    # ---- handlers -----------------------------------------------------------------------
    def _on_mode_group_id_clicked(self, mode: int) -> None:
        if mode == self._page:
            return
        self._show_page(mode)
        self._input_image = None
        self.set_prediction(None)
        if mode == 1:
            self._draw_input()
            self.sample_changed.emit(self._drawn_input())
        else:
            self._update_browser()
            if self._images is not None:
                self.sample_changed.emit(self.current_index())

    def _on_prev_button_clicked(self) -> None:
        self.index_spin.setValue(self.index_spin.value() - 1)

    def _on_next_button_clicked(self) -> None:
        self.index_spin.setValue(self.index_spin.value() + 1)

    def _on_index_spin_value_changed(self, value: int) -> None:
        self.set_prediction(None)
        self._update_browser()
        if self._images is not None:
            self.sample_changed.emit(int(value))

    def _on_thumbs_tile_clicked(self, k: int) -> None:
        self.index_spin.setValue(self._thumb_start + k)

    def _on_draw_pad_drawing_changed(self, image: np.ndarray) -> None:
        if not self.is_drawing():
            return
        self._input_image = None
        self._draw_input()
        self.sample_changed.emit(self._drawn_input())

    def _on_clear_button_clicked(self) -> None:
        self.draw_pad.clear()

    def _on_section_clicked(self, layer_id: str) -> None:
        self.select_layer(layer_id)
        self.layer_selected.emit(layer_id)

    def _on_scale_combo_activated(self, index: int) -> None:
        self._draw_sections()
