"""Shared pieces for the CNN-insight views: colour lookup tables, numpy -> QImage, a tiled image grid,
a single fitted image and a colour bar.

Everything is painted with QPainter from small QImages built straight from numpy (one LUT lookup per
update, no per-pixel Python), scaled by whole pixels without smoothing so a 3x3 kernel stays nine
crisp squares. Tiles are created per update and painted on the next paint event, so many updates
between two paints cost only the numpy work (Qt coalesces ``update()`` calls).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from widgets import pyside_fix
from widgets.colormaps import weights_lut

pyside_fix.install()  # PySide6 6.12 on Python 3.11 loses references to True/None on every emit and void call

ACCENT = QColor("#2F6FEB")  # selection / hover outline, the app's selection blue
NAN_COLOR = (190, 190, 190)  # a NaN/inf value (diverged training) shows as flat grey, never as a colour

# Anchor colours of each sequential map, interpolated linearly in sRGB (viridis and inferno
# sampled from matplotlib's tables). "diverging" is the app-wide weights map of widgets.colormaps
# (TF-Playground blue - white - orange, neutral exactly at the centre entry), so a weight has the
# same colour here as on the canvas links.
_ANCHORS: dict[str, list[tuple[int, int, int]]] = {
    "viridis": [(68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142), (31, 158, 137),
                (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37)],
    "inferno": [(0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85), (227, 89, 51),
                (249, 140, 10), (249, 201, 50), (252, 255, 164)],
    "gray": [(0, 0, 0), (255, 255, 255)],
    "blues": [(247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)],
    "oranges": [(255, 245, 235), (253, 208, 162), (253, 141, 60), (217, 72, 1), (127, 39, 4)],
}
LUT_SIZE = 255  # odd, so a symmetric range puts 0 exactly on the middle entry


@cache
def lut(name: str) -> np.ndarray:
    """(LUT_SIZE, 3) uint8 colour table; names: diverging, viridis, inferno, gray, blues, oranges."""
    if name == "diverging":
        out = np.ascontiguousarray(weights_lut(LUT_SIZE)[:, :3])
        out.setflags(write=False)
        return out
    if name not in _ANCHORS:
        raise ValueError(f"colour map {name!r} is unknown - use one of diverging, {', '.join(_ANCHORS)}")
    anchors = np.asarray(_ANCHORS[name], dtype=np.float64)
    pos = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, LUT_SIZE)
    table = np.stack([np.interp(t, pos, anchors[:, c]) for c in range(3)], axis=1)
    out = np.rint(table).astype(np.uint8)
    out.setflags(write=False)
    return out


@cache
def _lut32(name: str) -> np.ndarray:
    """The LUT packed as 0xFFRRGGBB, plus one trailing NaN entry, for QImage.Format_RGB32."""
    rgb = np.vstack([lut(name), np.asarray([NAN_COLOR], np.uint8)]).astype(np.uint32)
    out = (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32)
    out.setflags(write=False)
    return out


def lut_indices(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """LUT entry per value: lo -> 0, hi -> LUT_SIZE - 1 (clipped), NaN/inf -> LUT_SIZE (the grey entry)."""
    a = np.asarray(values, dtype=np.float32)
    span = float(hi) - float(lo)
    scale = (LUT_SIZE - 1) / span if span > 0 and np.isfinite(span) else 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        idx = np.rint((a - np.float32(lo)) * np.float32(scale))
        np.clip(idx, 0, LUT_SIZE - 1, out=idx)
    finite = np.isfinite(a)
    out = idx.astype(np.intp) if finite.all() else np.where(finite, np.nan_to_num(idx), LUT_SIZE).astype(np.intp)
    if scale == 0.0 and span <= 0:
        # A constant tile: with a symmetric range it is 0 -> neutral middle; otherwise the low colour.
        out[finite] = (LUT_SIZE - 1) // 2 if lo < 0 < hi else 0
    return out


def map_argb(values: np.ndarray, cmap: str, lo: float, hi: float) -> np.ndarray:
    """uint32 0xFFRRGGBB array of the same shape: ``values`` coloured with ``cmap`` over [lo, hi]."""
    return _lut32(cmap)[lut_indices(values, lo, hi)]


def map_rgb(values: np.ndarray, cmap: str, lo: float, hi: float) -> np.ndarray:
    """(..., 3) uint8 RGB of ``values`` coloured with ``cmap`` over [lo, hi] (NaN -> grey)."""
    table = np.vstack([lut(cmap), np.asarray([NAN_COLOR], np.uint8)])
    return table[lut_indices(values, lo, hi)]


def symmetric_limit(values: np.ndarray) -> float:
    """max |finite value| (1.0 if there is none or it is 0), the half-width of a diverging scale."""
    a = np.asarray(values, dtype=np.float32)
    finite = a[np.isfinite(a)] if a.size else a
    m = float(np.abs(finite).max()) if finite.size else 0.0
    return m if m > 0 else 1.0


def finite_range(values: np.ndarray) -> tuple[float, float]:
    """(min, max) over finite values; (0, 1) when there are none."""
    a = np.asarray(values, dtype=np.float32)
    finite = a[np.isfinite(a)] if a.size else a
    if not finite.size:
        return 0.0, 1.0
    return float(finite.min()), float(finite.max())


def rgb_to_argb(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) floats in [0, 1] (NaN -> grey) -> uint32 0xFFRRGGBB."""
    a = np.asarray(rgb, dtype=np.float32)
    bad = ~np.isfinite(a).all(axis=-1)
    u8 = np.clip(np.rint(np.nan_to_num(a) * 255.0), 0, 255).astype(np.uint32)
    if bad.any():
        u8[bad] = np.asarray(NAN_COLOR, np.uint32)
    return (0xFF000000 | (u8[..., 0] << 16) | (u8[..., 1] << 8) | u8[..., 2]).astype(np.uint32)


def image_to_rgb01(image: np.ndarray) -> np.ndarray:
    """A (C, H, W) or (H, W) sample as (H, W, 3) floats in [0, 1] for display.

    Samples are usually standardised, so the whole image is stretched min..max (one range for all
    channels, which keeps RGB hues). 1 channel is grey, 3 are RGB, any other count shows the mean.
    """
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"an image must be (C, H, W) or (H, W), got shape {a.shape}")
    if a.shape[0] != 3:
        a = a.mean(axis=0, keepdims=True) if a.shape[0] else np.zeros((1,) + a.shape[1:], np.float32)
    lo, hi = finite_range(a)
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    rgb = np.moveaxis(a, 0, -1)
    return np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb


def images_to_argb(images: np.ndarray) -> np.ndarray:
    """(N, h, w) uint32 ARGB of a batch (N, C, H, W), each image stretched to its own min..max (see image_to_rgb01)."""
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {a.shape}")
    if a.shape[1] != 3:
        a = a.mean(axis=1, keepdims=True) if a.shape[1] else np.zeros((len(a), 1) + a.shape[2:], np.float32)
    flat = a.reshape(len(a), -1)
    ok = np.isfinite(flat)
    lo = np.where(ok, flat, np.inf).min(axis=1) if flat.shape[1] else np.zeros(len(a), np.float32)
    hi = np.where(ok, flat, -np.inf).max(axis=1) if flat.shape[1] else np.zeros(len(a), np.float32)
    lo, hi = np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(hi), hi, 1.0)
    span = np.where(hi > lo, hi - lo, np.inf).astype(np.float32)  # a flat image shows black
    a = (a - lo[:, None, None, None].astype(np.float32)) / span[:, None, None, None]
    rgb = np.moveaxis(a, 1, -1)
    return rgb_to_argb(np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb)


def image_to_argb(image: np.ndarray) -> np.ndarray:
    """(H, W) uint32 ARGB of a (C, H, W) or (H, W) sample (see image_to_rgb01)."""
    return rgb_to_argb(image_to_rgb01(image))


def qimage(argb: np.ndarray) -> QImage:
    """An owned QImage (Format_RGB32) of a 2-D uint32 0xFFRRGGBB array."""
    a = np.ascontiguousarray(argb, dtype=np.uint32)
    h, w = a.shape
    return QImage(a.data, w, h, 4 * w, QImage.Format.Format_RGB32).copy()


def fmt_value(v: float) -> str:
    """A compact number for scale labels and tooltips: 3 significant digits."""
    if not np.isfinite(v):
        return "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.2e}"
    return f"{v:.3g}"


def fitted_rect(area: QRect, w: int, h: int) -> QRect:
    """The largest rect of aspect w:h centred in ``area`` (whole-pixel multiples when it can be)."""
    if w <= 0 or h <= 0 or area.width() <= 0 or area.height() <= 0:
        return QRect()
    s = min(area.width() / w, area.height() / h)
    if s >= 1:
        s = float(int(s))  # whole pixels: every source pixel becomes an equal square
    tw, th = max(1, int(w * s)), max(1, int(h * s))
    return QRect(area.x() + (area.width() - tw) // 2, area.y() + (area.height() - th) // 2, tw, th)


class TileGrid(QWidget):
    """Equal-size image tiles flowed left to right, wrapping to the widget width.

    Tiles are upscaled by a whole factor (nearest neighbour) towards ``tile_px`` on their longer side.
    ``group`` keeps that many consecutive tiles together on a row with a tight gap (e.g. the input
    channels of one filter), with a wider gap between groups. Optional one-line captions go under the
    tiles. Hover shows a tooltip (``tooltip(i)``); a click emits ``tile_clicked(i)``.

    All tiles are composed into one image in numpy (upscale, frames, pixel grid) when a paint needs
    it, so a paint is a single drawImage however many tiles there are, and updates arriving faster
    than paints cost only the LUT lookups.
    """

    tile_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, tile_px: int = 40, gap: int = 3, group_gap: int = 10,
                 max_scale: int = 12, hover: bool = True, frame: bool = True, pixel_grid: bool = False):
        super().__init__(parent)
        self._frame = frame
        self._pixel_grid = pixel_grid
        self._tile_px = tile_px
        self._gap = max(gap, 2) if frame else gap  # a frame sits in the gap
        self._group_gap = group_gap
        self._max_scale = max_scale
        self._hover_enabled = hover
        self._tiles = np.zeros((0, 0, 0), np.uint32)
        self._group = 1
        self._captions: list[str] | None = None
        self._caption_w = 0
        self._tooltip: Callable[[int], str] | None = None
        self._selected = -1
        self._hover = -1
        self._rects: list[QRect] = []
        self._laid_out_width = -1
        self._mosaic: QImage | None = None
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self._caption_font = QFont(self.font())
        self._caption_font.setPointSizeF(max(6.5, self.font().pointSizeF() * 0.85))

    # ---- data ---------------------------------------------------------------------------
    def set_tiles(self, tiles: np.ndarray, *, group: int = 1, captions: Sequence[str] | None = None,
                  tooltip: Callable[[int], str] | None = None) -> None:
        """Show ``tiles``: (N, h, w) uint32 0xFFRRGGBB (see map_argb / rgb_to_argb)."""
        tiles = np.asarray(tiles, dtype=np.uint32)
        if tiles.ndim != 3:
            raise ValueError(f"tiles must be (N, h, w) ARGB, got shape {tiles.shape}")
        relayout = (tiles.shape[1:] != self._tiles.shape[1:] or len(tiles) != len(self._tiles)
                    or max(1, group) != self._group or (captions is None) != (self._captions is None)
                    or (captions is not None and list(captions) != self._captions))
        self._tiles = tiles
        self._group = max(1, int(group))
        self._captions = list(captions) if captions is not None else None
        if relayout and self._captions is not None:
            fm = QFontMetrics(self._caption_font)
            self._caption_w = max((fm.horizontalAdvance(c) for c in self._captions), default=0)
        self._tooltip = tooltip
        self._mosaic = None
        if self._selected >= len(tiles):
            self._selected = -1
        if relayout:
            self._laid_out_width = -1
            self._relayout()
        self.update()

    def clear(self) -> None:
        self.set_tiles(np.zeros((0, 0, 0), np.uint32))

    def count(self) -> int:
        return len(self._tiles)

    def tiles(self) -> np.ndarray:
        """The (N, h, w) ARGB tiles as given (before upscaling)."""
        return self._tiles

    def set_selected(self, i: int) -> None:
        """Outline tile ``i`` (-1: none)."""
        self._selected = i if 0 <= i < len(self._tiles) else -1
        self.update()

    def selected(self) -> int:
        return self._selected

    def set_tile_px(self, tile_px: int) -> None:
        if max(4, int(tile_px)) == self._tile_px:
            return
        self._tile_px = max(4, int(tile_px))
        self._laid_out_width = -1
        self._relayout()
        self.update()

    def fit_to(self, width: int, height: int, min_px: int = 24, max_px: int = 96) -> None:
        """Use the biggest tile size in [min_px, max_px] at which every tile fits width x height."""
        side = max(self._tiles.shape[1:], default=0)
        if side <= 0 or width <= 0:
            return
        key = (width, height, min_px, max_px, self._tiles.shape, self._group, self._captions is None)
        if key == getattr(self, "_fit_key", None):
            return  # same question as last time: snapshots of the same layer refit for free
        self._fit_key = key
        old = self._tile_px
        hi = max(1, min(self._max_scale, max_px // side))
        lo = min(hi, max(1, -(-min_px // side)))
        chosen = lo
        for s in range(hi, lo - 1, -1):
            self._tile_px = s * side
            if self._layout(width)[1] <= height:
                chosen = s
                break
        self._tile_px = chosen * side
        if self._tile_px != old:
            self._laid_out_width = -1
            self._relayout()
            self.update()

    # ---- geometry -----------------------------------------------------------------------
    def scale(self) -> int:
        """The whole-number upscale factor of the tiles."""
        side = max(self._tiles.shape[1:], default=0)
        if side <= 0:
            return 1
        return int(max(1, min(self._max_scale, round(self._tile_px / side))))

    def _cell(self) -> tuple[int, int, int, int]:
        s = self.scale()
        th, tw = self._tiles.shape[1] * s, self._tiles.shape[2] * s
        if self._captions is None:
            return tw, th, tw, th
        fm = QFontMetrics(self._caption_font)
        cw = max(tw, min(self._caption_w + 6, 3 * tw + 40))
        return tw, th, cw, th + fm.height() + 3

    def _layout(self, width: int) -> tuple[list[QRect], int]:
        n = len(self._tiles)
        if not n:
            return [], 0
        tw, th, cw, ch = self._cell()
        g = self._group
        gap = self._gap if self._captions is None else max(self._gap, 8)
        pad = 1 if self._frame else 0
        usable = max(width - 2 * pad, cw)
        if g == 1:
            per_row, group_w = max(1, (usable + gap) // (cw + gap)), cw
        else:
            gap = max(2, gap // 2)  # the tiles of one group sit closer together than the groups
            group_w = g * cw + (g - 1) * gap
            per_row = max(1, (max(usable, group_w) + self._group_gap) // (group_w + self._group_gap))
        n_groups = -(-n // g)
        rows = -(-n_groups // per_row)
        per_row = -(-n_groups // rows)  # balance the rows: 8 tiles that need two rows go 4 + 4, not 7 + 1
        rects = []
        row_h = ch + gap + (0 if self._captions is None else 4)
        for i in range(n):
            gi, ti = divmod(i, g)
            row, col = divmod(gi, per_row)
            x = col * (cw + gap) if g == 1 else col * (group_w + self._group_gap) + ti * (cw + gap)
            rects.append(QRect(pad + x + (cw - tw) // 2, pad + row * row_h, tw, th))
        height = rects[-1].y() + ch + pad
        return rects, height

    def _relayout(self) -> None:
        width = self.width() if self.width() > 0 else 400
        if width == self._laid_out_width and len(self._rects) == len(self._tiles):
            return
        self._rects, height = self._layout(width)
        self._laid_out_width = width
        self._mosaic = None
        if self.minimumHeight() != height:
            self.setMinimumHeight(height)
            self.updateGeometry()

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        return self._layout(width)[1]

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        n = len(self._tiles)
        if not n:
            return QSize(120, 0)
        _, _, cw, _ = self._cell()
        w = min(n, 8 * self._group) * (cw + self._gap) + 2
        return QSize(w, self._layout(w)[1])

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        if not len(self._tiles):
            return QSize(0, 0)
        _, _, cw, _ = self._cell()
        return QSize(min(cw * self._group, 240), 0)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._relayout()
        super().resizeEvent(event)

    def tile_rect(self, i: int) -> QRect:
        """Where tile ``i`` is drawn, in widget coordinates (for tests and hit-testing)."""
        self._relayout()
        return QRect(self._rects[i])

    def index_at(self, pos: QPoint) -> int:
        self._relayout()
        for i, r in enumerate(self._rects):
            if r.adjusted(-1, -1, 1, 1).contains(pos):
                return i
        return -1

    # ---- painting and interaction -------------------------------------------------------
    def _compose(self) -> QImage:
        """Every tile upscaled, framed and placed, as one ARGB32 image (transparent between tiles)."""
        n = len(self._rects)
        if not n:
            return QImage()
        s = self.scale()
        width = max(r.right() for r in self._rects) + 2
        height = max(r.bottom() for r in self._rects) + 2
        canvas = np.zeros((height, width), np.uint32)
        big = self._tiles[:n].repeat(s, axis=1).repeat(s, axis=2)  # (N, h*s, w*s)
        if self._pixel_grid and s >= 6:
            # Faint lines between source pixels make a 3x3 kernel read as nine weights, even near white.
            rgb = big.view(np.uint8).reshape(big.shape + (4,))  # repeat() made a fresh array: edit in place
            rgb[:, s::s, :, :3] = (rgb[:, s::s, :, :3] * np.float32(0.9)).astype(np.uint8)
            rgb[:, :, s::s, :3] = (rgb[:, :, s::s, :3] * np.float32(0.9)).astype(np.uint8)
        frame = np.uint32(0x50000000)  # 30% black (premultiplied ARGB: black stays 0)
        for i, r in enumerate(self._rects):
            x, y, w, h = r.x(), r.y(), r.width(), r.height()
            if self._frame:
                canvas[y - 1:y + h + 1, x - 1:x + w + 1] = frame
            canvas[y:y + h, x:x + w] = big[i]
        self._mosaic_buffer = canvas  # the QImage below borrows this memory: keep it alive with the image
        return QImage(canvas.data, width, height, 4 * width, QImage.Format.Format_ARGB32_Premultiplied)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._relayout()
        if not self._rects:
            return
        if self._mosaic is None:
            self._mosaic = self._compose()
        p = QPainter(self)
        p.drawImage(0, 0, self._mosaic)
        if self._captions is not None:
            fm = QFontMetrics(self._caption_font)
            p.setFont(self._caption_font)
            p.setPen(self.palette().color(self.foregroundRole()))
            cw = self._cell()[2]
            clip = event.rect()
            for r, text in zip(self._rects, self._captions, strict=False):
                text_rect = QRect(r.center().x() - cw // 2, r.bottom() + 3, cw, fm.height())
                if text_rect.intersects(clip):
                    p.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                               fm.elidedText(text, Qt.TextElideMode.ElideRight, cw))
        for i, color, width in ((self._hover, QColor(ACCENT.red(), ACCENT.green(), ACCENT.blue(), 150), 2.0),
                                (self._selected, ACCENT, 2.5)):
            if 0 <= i < len(self._rects):
                p.setPen(QPen(color, width))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRect(QRectF(self._rects[i]).adjusted(-1.5, -1.5, 1.5, 1.5))
        p.end()

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            i = self.index_at(event.pos())
            text = self._tooltip(i) if (i >= 0 and self._tooltip is not None) else ""
            if text:
                QToolTip.showText(event.globalPos(), text, self, self._rects[i])
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._hover_enabled:
            i = self.index_at(event.position().toPoint())
            if i != self._hover:
                self._hover = i
                self.update()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._hover != -1:
            self._hover = -1
            self.update()
        super().leaveEvent(event)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        i = self.index_at(event.position().toPoint())
        if i >= 0 and event.button() == Qt.MouseButton.LeftButton:
            self.tile_clicked.emit(i)
            event.accept()
            return
        super().mousePressEvent(event)


class ImageView(QWidget):
    """One image fitted into the widget (aspect kept, whole-pixel upscaling, no smoothing)."""

    def __init__(self, parent: QWidget | None = None, *, min_side: int = 96, placeholder: str = ""):
        super().__init__(parent)
        self._image: QImage | None = None
        self._placeholder = placeholder
        self._min_side = min_side
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_argb(self, argb: np.ndarray | None) -> None:
        """Show a (H, W) uint32 ARGB image (None: the placeholder)."""
        self._image = None if argb is None else qimage(argb)
        self.update()

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self.update()

    def image(self) -> QImage | None:
        return self._image

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def image_rect(self) -> QRect:
        """Where the image is drawn (empty without an image)."""
        if self._image is None:
            return QRect()
        return fitted_rect(self.rect().adjusted(1, 1, -1, -1), self._image.width(), self._image.height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self._min_side * 2, self._min_side * 2)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self._min_side, self._min_side)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        if self._image is None:
            if self._placeholder:
                p.setPen(self.palette().color(self.foregroundRole()).lighter(170))
                p.drawText(self.rect().adjusted(8, 8, -8, -8), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                           self._placeholder)
            p.end()
            return
        r = self.image_rect()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        p.drawImage(r, self._image)
        p.setPen(QPen(QColor(0, 0, 0, 60), 1))
        p.drawRect(QRectF(r).adjusted(-0.5, -0.5, 0.5, 0.5))
        p.end()


class ColorBar(QWidget):
    """A horizontal colour scale with its low, middle (0 for a symmetric scale) and high values."""

    def __init__(self, parent: QWidget | None = None, *, cmap: str = "diverging", label: str = ""):
        super().__init__(parent)
        self._cmap = cmap
        self._lo, self._hi = -1.0, 1.0
        self._label = label
        self._strip = qimage(map_argb(np.linspace(0, 1, LUT_SIZE, dtype=np.float32)[None], cmap, 0.0, 1.0))
        self._scaled: QImage | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(QFontMetrics(self.font()).height() + 14)

    def set_range(self, lo: float, hi: float, cmap: str | None = None, label: str | None = None) -> None:
        if cmap is not None and cmap != self._cmap:
            self._cmap = cmap
            self._strip = qimage(map_argb(np.linspace(0, 1, LUT_SIZE, dtype=np.float32)[None], cmap, 0.0, 1.0))
            self._scaled = None
        if label is not None:
            self._label = label
        if (float(lo), float(hi)) != (self._lo, self._hi) or cmap is not None or label is not None:
            self._lo, self._hi = float(lo), float(hi)
            self.update()

    def range(self) -> tuple[float, float]:
        return self._lo, self._hi

    def cmap(self) -> str:
        return self._cmap

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(220, self.height())

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        fm = QFontMetrics(self.font())
        label_w = fm.horizontalAdvance(self._label) + 8 if self._label else 0
        lo_text, hi_text = fmt_value(self._lo), fmt_value(self._hi)
        side = max(fm.horizontalAdvance(lo_text), fm.horizontalAdvance(hi_text)) + 6
        bar = QRect(label_w + side, 2, max(20, self.width() - label_w - 2 * side - 2), 8)
        if self._scaled is None or self._scaled.size() != bar.size():
            # Scaled and framed once per size: a paint is then a single cheap drawImage.
            self._scaled = self._strip.scaled(bar.size(), Qt.AspectRatioMode.IgnoreAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation)
            fp = QPainter(self._scaled)
            fp.setPen(QPen(QColor(0, 0, 0, 70), 1))
            fp.drawRect(self._scaled.rect().adjusted(0, 0, -1, -1))
            fp.end()
        p.drawImage(bar.topLeft(), self._scaled)
        p.setPen(self.palette().color(self.foregroundRole()))
        ty = bar.bottom() + 2
        th = fm.height()
        if self._label:
            p.drawText(QRect(0, 0, label_w, self.height()), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                       self._label)
        p.drawText(QRect(label_w, 0, side - 4, bar.height() + 4), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                   lo_text)
        p.drawText(QRect(bar.right() + 5, 0, side, bar.height() + 4), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   hi_text)
        if self._lo < 0 < self._hi:
            x = bar.x() + int(bar.width() * (-self._lo) / (self._hi - self._lo))
            p.drawLine(x, bar.bottom() + 1, x, bar.bottom() + 3)
            p.drawText(QRect(x - 20, ty, 40, th), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, "0")
        p.end()


class ProbabilityBars(QWidget):
    """Class probabilities as a compact horizontal bar list; the predicted class is highlighted.

    Up to ``max_rows`` classes are listed in class order (so bars do not jump around as training
    moves them); with more classes, the most probable ``max_rows`` are listed, highest first.
    """

    def __init__(self, parent: QWidget | None = None, *, max_rows: int = 10):
        super().__init__(parent)
        self._max_rows = max_rows
        self._rows: list[tuple[str, float, bool]] = []
        self._marked: int | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._row_h = QFontMetrics(self.font()).height() + 3
        self.setFixedHeight(0)

    def set_probabilities(self, proba: np.ndarray | None, class_names: Sequence[str] | None = None,
                          true_class: int | None = None) -> None:
        """Show ``proba`` (k,); ``true_class`` (optional) gets a small marker."""
        if proba is None or not len(np.atleast_1d(proba)):
            self._rows = []
            self.setFixedHeight(0)
            self.update()
            return
        p = np.nan_to_num(np.asarray(proba, dtype=np.float64).reshape(-1), nan=0.0)
        names = list(class_names or [])
        names += [str(i) for i in range(len(names), len(p))]
        top = int(np.argmax(p))
        idx = list(range(len(p))) if len(p) <= self._max_rows else list(np.argsort(-p, kind="stable")[: self._max_rows])
        self._rows = [(names[i], float(p[i]), i == top) for i in idx]
        self._marked = None if true_class is None else (idx.index(true_class) if true_class in idx else None)
        self.setFixedHeight(len(self._rows) * self._row_h + 2)
        self.update()

    def rows(self) -> list[tuple[str, float, bool]]:
        """(class name, probability, is predicted) per listed row."""
        return list(self._rows)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        if not self._rows:
            return
        p = QPainter(self)
        fm = QFontMetrics(self.font())
        name_w = min(max(fm.horizontalAdvance(n) for n, _, _ in self._rows) + 8, int(self.width() * 0.42))
        pct_w = fm.horizontalAdvance("100.0%") + 6
        bar_w = max(10, self.width() - name_w - pct_w - 4)
        fg = self.palette().color(self.foregroundRole())
        for row, (name, prob, top) in enumerate(self._rows):
            y = row * self._row_h + 1
            text_rect = QRect(0, y, name_w - 6, self._row_h)
            p.setPen(fg)
            font = QFont(self.font())
            font.setBold(top)
            p.setFont(font)
            p.drawText(text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       fm.elidedText(name, Qt.TextElideMode.ElideRight, name_w - 6))
            track = QRect(name_w, y + 3, bar_w, self._row_h - 6)
            p.fillRect(track, QColor(0, 0, 0, 18))
            fill = QRect(track.x(), track.y(), int(round(track.width() * min(max(prob, 0.0), 1.0))), track.height())
            p.fillRect(fill, ACCENT if top else QColor("#9AA7BD"))
            if self._marked == row:
                p.setPen(QPen(QColor("#1C8C4E"), 2))
                p.drawRect(track.adjusted(0, 0, -1, -1))
            p.setPen(fg)
            p.drawText(QRect(track.right() + 6, y, pct_w, self._row_h),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{100 * prob:.1f}%")
        p.end()
