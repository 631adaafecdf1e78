"""The Filters view: the kernels of one Conv2d layer as a grid of small colour-mapped tiles.

Weights are coloured on the app-wide diverging blue - white - orange scale symmetric around 0 (white is 0,
blue negative, orange positive), one scale for all kernels shown (+-max|w| of what is displayed),
so kernels of a layer compare directly. A channel chooser picks what each tile shows:

* all input channels - one tile per (filter, channel), the channels of a filter kept together;
  the default for the first conv layer, whose channels are the image's (grey or R, G, B);
* mean over input channels - one tile per filter; the default for deeper layers;
* channel i - one tile per filter, that input channel's kernel;
* as RGB colour - for 3 input channels: each kernel as a colour image (0 is mid grey).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from widgets.paint.colorbar import ColorBar, fmt_value
from widgets.paint.colormaps import finite_range, map_argb, symmetric_limit
from widgets.paint.images import rgb_to_argb
from widgets.views.image_grid import TileGrid

MODE_ALL = "all"
MODE_MEAN = "mean"
MODE_RGB = "rgb"
MAX_TILES = 1024  # beyond this a grid of specks tells nothing; show the first filters and say so


def _channel_mode(c: int) -> str:
    return f"ch{c}"


class FiltersView(QWidget):
    """Conv kernels of the chosen layer; ``set_filters`` updates, ``select_layer`` follows the canvas."""

    layer_selected = Signal(str)  # the user picked a layer in this view's combo

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._filters: dict[str, np.ndarray] = {}
        self._modes: dict[str, str] = {}  # the channel choice per layer survives layer switches
        self._shown: np.ndarray | None = None
        self._shown_mode = MODE_ALL

        self.layer_combo = QComboBox(self)
        self.layer_combo.setToolTip("Conv2d layer whose filters are shown")
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.channel_combo = QComboBox(self)
        self.channel_combo.setToolTip("Which input channel of each filter to show")
        self.channel_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.info_label = QLabel(self)
        self.info_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.grid = TileGrid(self, tile_px=36, gap=6, group_gap=14, max_scale=24, pixel_grid=True)
        self.colorbar = ColorBar(self, cmap="diverging", label="weight")
        self.colorbar.setMaximumWidth(360)
        self.colorbar.setToolTip("Blue: negative weight, white: 0, orange: positive. One scale for every tile shown.")
        self.placeholder = QLabel("No Conv2d layer yet - add one to the design and its filters show here.", self)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("color: #777;")

        body = QWidget(self)
        body_lay = QVBoxLayout(body)
        body_lay.setContentsMargins(6, 6, 6, 6)
        body_lay.addWidget(self.grid)
        body_lay.addStretch(1)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(body)
        self.scroll.viewport().installEventFilter(self)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(QLabel("Layer", self))
        top.addWidget(self.layer_combo)
        top.addSpacing(8)
        top.addWidget(QLabel("Show", self))
        top.addWidget(self.channel_combo)
        top.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(4)
        lay.addLayout(top)
        lay.addWidget(self.info_label)
        lay.addWidget(self.scroll, 1)
        lay.addWidget(self.placeholder, 1)
        lay.addWidget(self.colorbar)

        self.layer_combo.activated.connect(self._on_layer_combo_activated)
        self.channel_combo.activated.connect(self._on_channel_combo_activated)
        self._show_placeholder(True)

    # ---- public API ---------------------------------------------------------------------
    def set_filters(self, filters: dict[str, np.ndarray]) -> None:
        """New conv weights {layer id: (F, C, k, k)} in network order; redraws the chosen layer.

        A layer whose array is not 4-D is skipped (its id is named in the info line).
        """
        clean: dict[str, np.ndarray] = {}
        bad = []
        for lid, w in (filters or {}).items():
            a = np.asarray(w)
            if a.ndim == 4 and a.size:
                clean[str(lid)] = a
            else:
                bad.append(f"{lid} (shape {a.shape})")
        ids = list(clean)
        old_ids = [self.layer_combo.itemText(i) for i in range(self.layer_combo.count())]
        current = self.current_layer()
        self._filters = clean
        if ids != old_ids:
            self.layer_combo.blockSignals(True)
            self.layer_combo.clear()
            self.layer_combo.addItems(ids)
            if current in ids:
                self.layer_combo.setCurrentIndex(ids.index(current))
            self.layer_combo.blockSignals(False)
        self._show_placeholder(not ids)
        self._refresh(bad)

    def select_layer(self, layer_id: str) -> None:
        """Show ``layer_id``'s filters (ignored if it is not a conv layer); does not emit layer_selected."""
        i = self.layer_combo.findText(layer_id)
        if i >= 0 and i != self.layer_combo.currentIndex():
            self.layer_combo.setCurrentIndex(i)
            self._refresh()

    def current_layer(self) -> str | None:
        t = self.layer_combo.currentText()
        return t or None

    def layers(self) -> list[str]:
        return list(self._filters)

    def set_channel_mode(self, mode: str) -> None:
        """"all", "mean", "rgb" or "ch<i>" for the current layer (a test and keyboard hook)."""
        i = self.channel_combo.findData(mode)
        if i < 0:
            raise ValueError(f"channel mode {mode!r} is not available for layer {self.current_layer()!r}")
        self.channel_combo.setCurrentIndex(i)
        self._on_channel_combo_activated(i)

    def channel_mode(self) -> str:
        return self._shown_mode

    def displayed_array(self) -> np.ndarray | None:
        """The float array shown, before colour mapping: (F, C, k, k) for all channels / RGB, (F, k, k) otherwise."""
        return None if self._shown is None else self._shown.copy()

    def color_range(self) -> tuple[float, float]:
        """(-m, +m): the weight values at the two ends of the colour scale."""
        return self.colorbar.range()

    # ---- drawing ------------------------------------------------------------------------
    def _show_placeholder(self, empty: bool) -> None:
        self.placeholder.setVisible(empty)
        self.scroll.setVisible(not empty)
        self.colorbar.setVisible(not empty and self._shown_mode != MODE_RGB)
        self.info_label.setVisible(not empty)
        self.channel_combo.setEnabled(not empty)
        self.layer_combo.setEnabled(not empty)

    def _default_mode(self, lid: str, c: int) -> str:
        # The first conv layer reads the image itself: its per-channel kernels are the readable ones.
        first = next(iter(self._filters), None)
        return MODE_ALL if (lid == first and c <= 4) or c == 1 else MODE_MEAN

    def _fill_channel_combo(self, c: int, mode: str) -> None:
        entries = [(f"all {c} input channels" if c > 1 else "kernels", MODE_ALL)]
        if c > 1:
            entries.append(("mean over input channels", MODE_MEAN))
            if c == 3:
                entries.append(("as RGB colour", MODE_RGB))
            entries += [(f"input channel {i}", _channel_mode(i)) for i in range(c)]
        current = [(self.channel_combo.itemText(i), self.channel_combo.itemData(i)) for i in range(self.channel_combo.count())]
        if current != entries:
            self.channel_combo.clear()
            for text, data in entries:
                self.channel_combo.addItem(text, data)
        i = self.channel_combo.findData(mode)
        self.channel_combo.setCurrentIndex(max(0, i))

    def _refresh(self, bad: list[str] | None = None) -> None:
        lid = self.current_layer()
        if lid is None or lid not in self._filters:
            self._shown = None
            self.grid.clear()
            return
        w = np.asarray(self._filters[lid], dtype=np.float32)
        f, c, kh, kw = w.shape
        mode = self._modes.get(lid) or self._default_mode(lid, c)
        valid = {MODE_ALL} | ({MODE_MEAN} | {_channel_mode(i) for i in range(c)} if c > 1 else set()) | \
                ({MODE_RGB} if c == 3 else set())
        if mode not in valid:
            mode = self._default_mode(lid, c)
        self._fill_channel_combo(c, mode)
        self._shown_mode = mode

        if mode == MODE_ALL or mode == MODE_RGB:
            shown = w
        elif mode == MODE_MEAN:
            shown = w.mean(axis=1)
        else:
            shown = w[:, int(mode[2:])]
        self._shown = shown
        m = symmetric_limit(shown)
        if mode == MODE_RGB:
            rgb = np.moveaxis(0.5 + 0.5 * shown / m, 1, -1)  # (F, k, k, 3); 0 -> mid grey
            tiles, group = rgb_to_argb(rgb), 1
        elif mode == MODE_ALL:
            tiles, group = map_argb(shown.reshape(f * c, kh, kw), "diverging", -m, m), c
        else:
            tiles, group = map_argb(shown, "diverging", -m, m), 1
        total = len(tiles)
        if total > MAX_TILES:
            tiles = tiles[: (MAX_TILES // group) * group]
        self.grid.set_tiles(tiles, group=group, tooltip=self._tooltip)
        self._fit_tiles()
        self.colorbar.set_range(-m, m)
        self.colorbar.setVisible(mode != MODE_RGB)  # RGB tiles have no single colour scale

        what = {MODE_ALL: "one tile per filter and input channel" if c > 1 else "one tile per filter",
                MODE_MEAN: "mean over input channels", MODE_RGB: "kernels as RGB colour (grey = 0)"}.get(
            mode, f"input channel {mode[2:]}")
        text = f"<b>{lid}</b>: {f} filters x {c} input channel{'s' if c != 1 else ''}, {kh}x{kw} - {what}"
        if total > len(tiles):
            text += f" (first {len(tiles)} of {total} tiles)"
        if bad:
            text += f"<br><span style='color:#B33'>skipped: {', '.join(bad)} - conv weights must be (F, C, k, k)</span>"
        self.info_label.setText(text)

    def _tooltip(self, i: int) -> str:
        a = self._shown
        if a is None:
            return ""
        mode = self._shown_mode
        if mode == MODE_ALL and a.ndim == 4:
            f, c = divmod(i, a.shape[1])
            kernel, where = a[f, c], f"filter {f}, channel {c}"
        elif mode == MODE_RGB:
            kernel, where = a[i], f"filter {i}, RGB"
        elif mode == MODE_MEAN:
            kernel, where = a[i], f"filter {i}, mean over channels"
        else:
            kernel, where = a[i], f"filter {i}, channel {mode[2:]}"
        lo, hi = finite_range(kernel)
        return f"{where}\nmin {fmt_value(lo)}, max {fmt_value(hi)}"

    # ---- handlers -----------------------------------------------------------------------
    def _on_layer_combo_activated(self, index: int) -> None:
        self._refresh()
        lid = self.current_layer()
        if lid:
            self.layer_selected.emit(lid)

    def _on_channel_combo_activated(self, index: int) -> None:
        lid = self.current_layer()
        mode = self.channel_combo.itemData(index)
        if lid and mode:
            self._modes[lid] = mode
            self._refresh()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        if obj is self.scroll.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_tiles()
        return super().eventFilter(obj, event)

    def _fit_tiles(self) -> None:
        # Few small kernels get big tiles, many get small ones: fill the visible area, scroll only past 20 px.
        vp = self.scroll.viewport().size()
        self.grid.fit_to(vp.width() - 14, vp.height() - 14, min_px=20, max_px=72)
