"""Shared pieces for the CNN-insight views: a tiled image grid, a single fitted image and
probability bars (colours and numpy -> QImage come from widgets.paint).

Everything is painted with QPainter from small QImages built straight from numpy (one LUT lookup per
update, no per-pixel Python), scaled by whole pixels without smoothing so a 3x3 kernel stays nine
crisp squares. Tiles are created per update and painted on the next paint event, so many updates
between two paints cost only the numpy work (Qt coalesces ``update()`` calls).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from widgets import pyside_fix
from widgets.paint.images import fitted_rect, qimage
from widgets.paint.palette import SELECTION_COLOR, selection_color

pyside_fix.install()  # PySide6 6.12 on Python 3.11 loses references to True/None on every emit and void call

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
        for i, color, width in ((self._hover, selection_color(150), 2.0), (self._selected, SELECTION_COLOR, 2.5)):
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
            p.fillRect(fill, SELECTION_COLOR if top else QColor("#9AA7BD"))
            if self._marked == row:
                p.setPen(QPen(QColor("#1C8C4E"), 2))
                p.drawRect(track.adjusted(0, 0, -1, -1))
            p.setPen(fg)
            p.drawText(QRect(track.right() + 6, y, pct_w, self._row_h),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{100 * prob:.1f}%")
        p.end()
