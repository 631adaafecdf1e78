"""The named colours every widget shares: TF-Playground class colours, the selection blue, NaN grey.

Conventions, kept everywhere so a colour means the same thing in every dock:

* class 0 / negative = TF-Playground blue, class 1 / positive = TF-Playground orange,
  0.5 / zero = near-white;
* classes beyond two take the next colours of ``CLASS_COLORS`` (up to 10, then repeat);
* whatever is selected or hovered - a card on the canvas, a tile, a confusion cell - is outlined
  in ``SELECTION_COLOR``;
* a NaN/inf value (diverged training) is flat ``NAN_RGB`` grey in images, never a colour of the map.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor

TF_BLUE = "#0877bd"    # class 0, negative values
TF_ORANGE = "#f59322"  # class 1, positive values
TF_WHITE = "#f7f7f7"   # 0.5 / zero: a touch off pure white so white-outlined points stay visible
BACKGROUND_ALPHA = 160 / 255  # TF Playground paints the decision area at this opacity over white

# First two are the TF-Playground pair; the rest are Tableau-10 hues ordered for contrast.
CLASS_COLORS: tuple[str, ...] = (
    TF_BLUE, TF_ORANGE, "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
)

SELECTION = "#1e88e5"  # the one selection / hover / "current" blue of the whole app
SELECTION_COLOR = QColor(SELECTION)
NAN_RGB = (190, 190, 190)


def selection_color(alpha: int = 255) -> QColor:
    """The selection blue, optionally translucent (hover outlines)."""
    c = QColor(SELECTION_COLOR)
    c.setAlpha(alpha)
    return c


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b) ints."""
    c = color.lstrip("#")
    if len(c) != 6:
        raise ValueError(f"colour {color!r} must be written as #rrggbb")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def rgb_to_hex(rgb) -> str:
    r, g, b = (int(v) for v in list(rgb)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def class_color(i: int) -> QColor:
    """The colour of class ``i`` (the palette repeats beyond 10 classes)."""
    return QColor(CLASS_COLORS[int(i) % len(CLASS_COLORS)])


def class_colors(k: int) -> np.ndarray:
    """(k, 3) uint8 colours for k classes: the palette, repeated beyond 10 classes."""
    k = max(int(k), 0)
    return np.array([hex_to_rgb(CLASS_COLORS[i % len(CLASS_COLORS)]) for i in range(k)], np.uint8).reshape(k, 3)
