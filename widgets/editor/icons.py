"""Small vector glyphs for layer kinds, drawn with QPainter, and the colour of each layer group.

One glyph per kind (and per activation function) so a layer is recognisable at a glance in
the palette and on the canvas. Glyphs are drawn in a 24 x 24 design box and scaled.
"""
from __future__ import annotations

import math
from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

from engine.layers import REGISTRY

# Colour per engine.layers.GROUPS entry; muted enough for white text on top, distinct from the
# selection blue and the error red / warning amber used on the canvas.
GROUP_COLORS: dict[str, str] = {
    "Core": "#4A63C8",
    "Convolution": "#0E9488",
    "Normalisation and regularisation": "#8454C4",
    "Activation": "#E07A1F",
    "Merge": "#CC3F74",
    "Sequence": "#2E7D32",
    "Attention": "#B8860B",
    "Generative": "#5E7D1E",
}
UNKNOWN_COLOR = "#7A8190"

ACTIVATION_NAMES: dict[str, str] = {
    "linear": "Linear", "sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU", "leaky_relu": "Leaky ReLU",
    "elu": "ELU", "gelu": "GELU", "silu": "SiLU", "softplus": "Softplus", "softmax": "Softmax",
}


def group_color(group: str) -> QColor:
    """The colour of a layer group (grey for an unknown group)."""
    return QColor(GROUP_COLORS.get(group, UNKNOWN_COLOR))


def kind_color(kind: str) -> QColor:
    """The colour of the group a layer kind belongs to (grey for an unknown kind)."""
    k = REGISTRY.get(kind)
    return group_color(k.group) if k else QColor(UNKNOWN_COLOR)


def layer_icon(kind: str, params: dict | None = None) -> QIcon:
    """A QIcon for a layer kind: the glyph in the group colour on a light tinted tile.

    For Activation, ``params["function"]`` picks the curve drawn (a generic S-curve without it).
    """
    fn = (params or {}).get("function") if kind == "Activation" else None
    return _cached_icon(kind, fn if isinstance(fn, str) else None)


@lru_cache(maxsize=64)
def _cached_icon(kind: str, function: str | None) -> QIcon:
    icon = QIcon()
    color = kind_color(kind)
    for size in (16, 24, 32, 48):
        icon.addPixmap(_render(kind, function, size, color))
    return icon


def _render(kind: str, function: str | None, size: int, color: QColor) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    tint = QColor(color)
    tint.setAlpha(38)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(tint)
    r = size * 0.22
    p.drawRoundedRect(QRectF(0.5, 0.5, size - 1, size - 1), r, r)
    paint_glyph(p, QRectF(size * 0.12, size * 0.12, size * 0.76, size * 0.76), kind, color,
                {"function": function} if function else None)
    p.end()
    return pm


def paint_glyph(p: QPainter, rect: QRectF, kind: str, color: QColor, params: dict | None = None) -> None:
    """Draw the glyph of ``kind`` into ``rect`` with strokes in ``color`` (no background)."""
    p.save()
    p.translate(rect.topLeft())
    p.scale(rect.width() / 24.0, rect.height() / 24.0)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(color, 1.9)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    fill = QColor(color)
    fill.setAlpha(110)
    draw = _GLYPHS.get(kind, _glyph_unknown)
    if kind == "Activation":
        fn = (params or {}).get("function")
        _glyph_activation(p, color, fill, fn if isinstance(fn, str) else None)
    else:
        draw(p, color, fill)
    p.restore()


# ---- glyphs (24 x 24 design box) ------------------------------------------------------

def _dot(p: QPainter, x: float, y: float, r: float, brush: QColor | None) -> None:
    p.save()
    p.setBrush(QBrush(brush) if brush is not None else Qt.BrushStyle.NoBrush)
    p.drawEllipse(QPointF(x, y), r, r)
    p.restore()


def _glyph_input(p, c, fill):
    p.drawLine(QPointF(12, 2.5), QPointF(12, 13))
    p.drawPolyline([QPointF(7.5, 9), QPointF(12, 13.5), QPointF(16.5, 9)])
    p.drawPolyline([QPointF(3, 14), QPointF(3, 21), QPointF(21, 21), QPointF(21, 14)])


def _glyph_output(p, c, fill):
    p.save()
    p.setBrush(fill)
    for i, h in enumerate((7, 15, 10)):
        x = 3.5 + i * 6.2
        p.drawRoundedRect(QRectF(x, 21 - h, 4.6, h), 1, 1)
    p.restore()
    p.drawLine(QPointF(2, 21.5), QPointF(22, 21.5))


def _glyph_dense(p, c, fill):
    left = [(4, 4), (4, 12), (4, 20)]
    right = [(20, 7.5), (20, 16.5)]
    thin = QPen(c, 1.1)
    p.save()
    p.setPen(thin)
    for a in left:
        for b in right:
            p.drawLine(QPointF(*a), QPointF(*b))
    p.restore()
    for x, y in left + right:
        _dot(p, x, y, 2.4, c)


def _glyph_flatten(p, c, fill):
    for i in range(3):
        for j in range(3):
            p.drawRect(QRectF(1.5 + 3.3 * i, 7 + 3.3 * j, 3.3, 3.3))
    p.drawLine(QPointF(12.5, 12), QPointF(16, 12))
    p.drawPolyline([QPointF(14.5, 10), QPointF(16.5, 12), QPointF(14.5, 14)])
    p.save()
    p.setBrush(fill)
    p.drawRect(QRectF(18.5, 1.5, 4, 21))
    p.restore()


def _glyph_conv(p, c, fill):
    p.drawRoundedRect(QRectF(8, 2, 14, 14), 1.5, 1.5)
    p.save()
    p.setBrush(QColor(255, 255, 255, 230))
    p.drawRoundedRect(QRectF(2, 8, 14, 14), 1.5, 1.5)
    p.setBrush(c)
    p.drawRect(QRectF(4.5, 10.5, 5, 5))
    p.restore()


def _grid2(p, c, fill, filled: list[bool]):
    for k, on in enumerate(filled):
        i, j = k % 2, k // 2
        r = QRectF(3 + 9 * i, 3 + 9 * j, 9, 9)
        p.save()
        p.setBrush(fill if on else Qt.BrushStyle.NoBrush)
        p.drawRect(r)
        p.restore()


def _glyph_maxpool(p, c, fill):
    _grid2(p, c, c, [False, True, False, False])


def _glyph_avgpool(p, c, fill):
    _grid2(p, c, fill, [True, True, True, True])


def _glyph_gap(p, c, fill):
    p.drawRoundedRect(QRectF(6, 2, 11, 11), 1.2, 1.2)
    p.save()
    p.setBrush(QColor(255, 255, 255, 230))
    p.drawRoundedRect(QRectF(2, 6, 11, 11), 1.2, 1.2)
    p.restore()
    p.drawLine(QPointF(14, 17), QPointF(17.5, 19.5))
    _dot(p, 20, 20.5, 2.5, c)


def _glyph_dropout(p, c, fill):
    dropped = {(0, 1), (1, 2), (2, 0)}
    for i in range(3):
        for j in range(3):
            x, y = 4 + 8 * i, 4 + 8 * j
            if (i, j) in dropped:
                p.save()
                p.setPen(QPen(c, 1.2))
                _dot(p, x, y, 2.6, None)
                p.restore()
            else:
                _dot(p, x, y, 2.6, c)


def _bell(p):
    path = QPainterPath()
    for k in range(41):
        x = -3 + 6 * k / 40
        px, py = 12 + x * 3.3, 20 - 15 * math.exp(-x * x / 1.1)
        path.moveTo(px, py) if k == 0 else path.lineTo(px, py)
    p.drawPath(path)


def _glyph_batchnorm(p, c, fill):
    _bell(p)
    p.drawLine(QPointF(2, 20.5), QPointF(22, 20.5))


def _glyph_layernorm(p, c, fill):
    p.drawPolyline([QPointF(5, 3), QPointF(2.5, 3), QPointF(2.5, 21), QPointF(5, 21)])
    p.drawPolyline([QPointF(19, 3), QPointF(21.5, 3), QPointF(21.5, 21), QPointF(19, 21)])
    for y in (7.5, 12, 16.5):
        p.drawLine(QPointF(7, y), QPointF(17, y))


def _glyph_add(p, c, fill):
    _dot(p, 12, 12, 9.5, None)
    p.drawLine(QPointF(12, 7), QPointF(12, 17))
    p.drawLine(QPointF(7, 12), QPointF(17, 12))


def _glyph_concat(p, c, fill):
    p.drawRect(QRectF(2.5, 2.5, 7.5, 7.5))
    p.drawRect(QRectF(14, 2.5, 7.5, 7.5))
    p.drawPolyline([QPointF(6.25, 10), QPointF(6.25, 14)])
    p.drawPolyline([QPointF(17.75, 10), QPointF(17.75, 14)])
    p.save()
    p.setBrush(fill)
    p.drawRect(QRectF(2.5, 14.5, 19, 7))
    p.restore()
    p.drawLine(QPointF(12, 14.5), QPointF(12, 21.5))


def _glyph_unknown(p, c, fill):
    p.drawRoundedRect(QRectF(3, 3, 18, 18), 3, 3)
    p.drawText(QRectF(3, 3, 18, 18), Qt.AlignmentFlag.AlignCenter, "?")


def _activation_curve(fn: str | None):
    """(f, y_min, y_max) used to draw an activation function's curve over x in [-3, 3]."""
    sig = lambda x: 1 / (1 + math.exp(-x))
    curves = {
        None: (math.tanh, -1.15, 1.15),
        "linear": (lambda x: x, -3.2, 3.2),
        "sigmoid": (sig, -0.1, 1.1),
        "tanh": (math.tanh, -1.15, 1.15),
        "relu": (lambda x: max(0.0, x), -0.6, 3.1),
        "leaky_relu": (lambda x: x if x > 0 else 0.18 * x, -0.8, 3.1),
        "elu": (lambda x: x if x > 0 else math.exp(x) - 1, -1.2, 3.1),
        "gelu": (lambda x: x * sig(1.702 * x), -0.6, 3.1),
        "silu": (lambda x: x * sig(x), -0.6, 3.1),
        "softplus": (lambda x: math.log1p(math.exp(x)), -0.3, 3.2),
    }
    return curves.get(fn, curves[None])


def _glyph_activation(p, c, fill, fn):
    axis = QPen(QColor(c.red(), c.green(), c.blue(), 110), 1.0)
    if fn == "softmax":  # a probability distribution: bars that sum to one
        p.save()
        p.setBrush(fill)
        for i, h in enumerate((4, 15, 7, 2.5)):
            p.drawRoundedRect(QRectF(2.5 + i * 5, 20.5 - h, 4, h), 0.8, 0.8)
        p.restore()
        p.save()
        p.setPen(axis)
        p.drawLine(QPointF(1.5, 21), QPointF(22.5, 21))
        p.restore()
        return
    f, lo, hi = _activation_curve(fn)
    to_y = lambda v: 21.5 - (v - lo) / (hi - lo) * 19
    p.save()
    p.setPen(axis)
    p.drawLine(QPointF(1.5, to_y(0.0)), QPointF(22.5, to_y(0.0)))
    p.drawLine(QPointF(12, 1.5), QPointF(12, 22.5))
    if fn not in ACTIVATION_NAMES:  # the generic entry: a faint ReLU behind the S-curve, "some function"
        p.setPen(QPen(QColor(c.red(), c.green(), c.blue(), 120), 1.3, Qt.PenStyle.DashLine))
        p.drawPolyline([QPointF(2, to_y(0.0)), QPointF(12, to_y(0.0)), QPointF(21, 3)])
    p.restore()
    path = QPainterPath()
    for k in range(49):
        x = -3 + 6 * k / 48
        px, py = 2 + 20 * k / 48, to_y(f(x))
        path.moveTo(px, py) if k == 0 else path.lineTo(px, py)
    p.drawPath(path)


# ---- sequence and attention glyphs ---------------------------------------------------------

def _glyph_recurrent(p, c, fill):  # a cell with its state looping back into itself
    p.save()
    p.setBrush(fill)
    p.drawRoundedRect(QRectF(5, 9, 14, 10), 2, 2)
    p.restore()
    p.drawArc(QRectF(7, 2, 10, 10), 0, 180 * 16)
    p.drawPolyline([QPointF(15, 5), QPointF(17, 7.5), QPointF(19.5, 5.5)])
    p.drawLine(QPointF(1.5, 14), QPointF(5, 14))
    p.drawLine(QPointF(19, 14), QPointF(22.5, 14))


def _glyph_lstm(p, c, fill):  # the cell plus its cell-state line running straight through
    _glyph_recurrent(p, c, fill)
    p.drawLine(QPointF(5, 22), QPointF(19, 22))


def _glyph_gru(p, c, fill):  # the cell plus an update gate
    _glyph_recurrent(p, c, fill)
    _dot(p, 12, 14, 2.2, c)


def _glyph_embedding(p, c, fill):  # a table of rows, one picked out
    for i in range(4):
        p.drawLine(QPointF(8, 4 + 5 * i), QPointF(21, 4 + 5 * i))
    p.save()
    p.setBrush(fill)
    p.drawRect(QRectF(7, 7, 15, 4))
    p.restore()
    _dot(p, 3.5, 9, 1.8, c)


def _glyph_attention(p, c, fill):  # a weight matrix with a bright diagonal
    for i in range(3):
        for j in range(3):
            p.save()
            p.setBrush(fill if i == j else Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(3 + 6.3 * j, 3 + 6.3 * i, 5.4, 5.4))
            p.restore()


def _glyph_posenc(p, c, fill):  # a sine wave over a step axis
    path = QPainterPath(QPointF(2, 12))
    for k in range(1, 41):
        x = 2 + 20 * k / 40
        path.lineTo(QPointF(x, 12 - 7 * math.sin(2 * math.pi * k / 20)))
    p.drawPath(path)
    p.drawLine(QPointF(2, 21), QPointF(22, 21))


def _glyph_seqpool(p, c, fill):  # many steps into one
    for i in range(4):
        _dot(p, 4 + 5.3 * i, 5, 1.6, fill)
        p.drawLine(QPointF(4 + 5.3 * i, 7), QPointF(12, 16))
    _dot(p, 12, 19, 2.6, c)


def _glyph_reshape(p, c, fill):  # a row cut into a block
    p.drawRect(QRectF(2, 3, 20, 4))
    p.drawLine(QPointF(12, 8.5), QPointF(12, 12))
    p.drawRect(QRectF(7, 13, 10, 8))
    p.drawLine(QPointF(7, 17), QPointF(17, 17))


_GLYPHS = {
    "RNN": _glyph_recurrent, "LSTM": _glyph_lstm, "GRU": _glyph_gru, "Embedding": _glyph_embedding,
    "SelfAttention": _glyph_attention, "PositionalEncoding": _glyph_posenc, "SequencePool": _glyph_seqpool,
    "ToSequence": _glyph_reshape,
    "Input": _glyph_input, "Output": _glyph_output, "Dense": _glyph_dense, "Flatten": _glyph_flatten,
    "Conv2d": _glyph_conv, "MaxPool2d": _glyph_maxpool, "AvgPool2d": _glyph_avgpool, "GlobalAvgPool": _glyph_gap,
    "Dropout": _glyph_dropout, "BatchNorm": _glyph_batchnorm, "LayerNorm": _glyph_layernorm,
    "Add": _glyph_add, "Concat": _glyph_concat,
}


def _mirrored(glyph):
    """The glyph flipped left-right (on its 24-unit box): Reshape is Flatten run backwards."""
    def paint(p, c, fill):
        p.save()
        p.translate(24, 0)
        p.scale(-1, 1)
        glyph(p, c, fill)
        p.restore()
    return paint


def _glyph_upsample(p, c, fill):
    p.drawRect(QRectF(2, 14, 8, 8))
    p.drawRect(QRectF(8, 2, 14, 14))
    p.drawLine(QPointF(7, 17), QPointF(15, 9))


def _glyph_vae(p, c, fill):
    _dot(p, 6, 12, 3.5, fill)
    _dot(p, 18, 7, 2.5, None)
    _dot(p, 18, 17, 2.5, None)
    p.drawLine(QPointF(9.5, 12), QPointF(15.5, 7))
    p.drawLine(QPointF(9.5, 12), QPointF(15.5, 17))


# autoencoder layers: Reshape undoes a Flatten, Upsample enlarges the grid, VAESample draws a random code
_GLYPHS.update({"Reshape": _mirrored(_glyph_flatten), "Upsample": _glyph_upsample, "VAESample": _glyph_vae})
