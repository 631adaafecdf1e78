"""Views of generative models (numpy in, drawing out): an autoencoder's reconstructions, its latent
plane with a latent walk and a VAE's decoded grid, and a GAN's plane (GAN Lab style).

Images arrive in data units (N, C, H, W), or (N, d) for flat data, which is shown as one row.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from widgets.paint.colormaps import colormap
from widgets.paint.palette import SELECTION, TF_BLUE, TF_ORANGE, class_colors

GAP = 1  # pixels between the tiles of a mosaic


def as_images(a: np.ndarray) -> np.ndarray:
    """(N, H, W) greyscale tiles from (N, C, H, W) (channel mean) or (N, d) (one row of d)."""
    a = np.asarray(a, np.float32)
    if a.ndim == 4:
        return a.mean(axis=1)
    if a.ndim == 2:
        return a[:, None, :]
    if a.ndim == 3:
        return a
    raise ValueError(f"images must be (N, C, H, W) or (N, d), got shape {a.shape}")


def mosaic(tiles: np.ndarray, cols: int, fill: float = np.nan) -> np.ndarray:
    """Tiles (N, H, W) laid out row by row in ``cols`` columns with GAP-pixel gaps (image rows = y down)."""
    n, h, w = tiles.shape
    rows = max(1, -(-n // cols))
    out = np.full((rows * (h + GAP) - GAP, cols * (w + GAP) - GAP), fill, np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + GAP):r * (h + GAP) + h, c * (w + GAP):c * (w + GAP) + w] = tiles[i]
    return out


def _show(item: pg.ImageItem, img: np.ndarray, lo: float, hi: float) -> None:
    img = np.where(np.isfinite(img), img, lo)
    item.setImage(img, levels=(lo, hi), autoLevels=False)


class ReconstructionView(QWidget):
    """Input (top row) against reconstruction (bottom row) for a few validation samples."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.inputs: np.ndarray | None = None
        self.recon: np.ndarray | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self.caption = QLabel("Inputs (top) and their reconstructions (bottom) - train an autoencoder to see them")
        self.caption.setWordWrap(True)
        lay.addWidget(self.caption)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("w")
        lay.addWidget(self.glw, 1)
        self.box = self.glw.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.item)

    def set_images(self, inputs: np.ndarray, recon: np.ndarray) -> None:
        self.inputs, self.recon = np.asarray(inputs, np.float32), np.asarray(recon, np.float32)
        a, b = as_images(self.inputs), as_images(self.recon)
        n = len(a)
        img = mosaic(np.concatenate([a, b]), n)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        _show(self.item, img, lo, hi if hi > lo else lo + 1)
        self.box.autoRange(padding=0.02)
        err = float(np.mean((a - b) ** 2))
        self.caption.setText(f"Inputs (top) and reconstructions (bottom) of {n} validation samples - "
                             f"mean squared error {err:.4f}")

    def clear(self) -> None:
        self.inputs = self.recon = None
        self.item.clear()


class LatentView(QWidget):
    """The validation set's latent codes in a plane (PCA when the code has more than 2 dimensions),
    coloured by class; press or drag in it to decode that point (``point_requested``); a VAE's (or
    any 2-D code's) decoded grid over the same plane beside it."""

    point_requested = Signal(float, float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.points: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.decoded: np.ndarray | None = None
        self.grid: np.ndarray | None = None
        self.chosen: tuple[float, float] | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self.caption = QLabel("Latent space of the validation set - press or drag in it to decode a point")
        self.caption.setWordWrap(True)
        lay.addWidget(self.caption)
        row = QHBoxLayout()
        lay.addLayout(row, 1)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setAspectLocked(False)
        self.plot.setMenuEnabled(False)
        self.plot.getPlotItem().hideButtons()
        self.plot.getViewBox().setMouseEnabled(False, False)
        self.scatter = pg.ScatterPlotItem(size=6, pen=None)
        self.marker = pg.ScatterPlotItem(size=14, symbol="+", pen=pg.mkPen(SELECTION, width=3), brush=None)
        self.plot.addItem(self.scatter)
        self.plot.addItem(self.marker)
        row.addWidget(self.plot, 3)
        side = pg.GraphicsLayoutWidget()
        side.setBackground("w")
        side.addLabel("decoded point", row=0, col=0)
        self.decoded_box = side.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.decoded_item = pg.ImageItem(axisOrder="row-major")
        self.decoded_box.addItem(self.decoded_item)
        self.grid_label = side.addLabel("decoded grid", row=2, col=0)
        self.grid_box = side.addViewBox(row=3, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.grid_item = pg.ImageItem(axisOrder="row-major")
        self.grid_box.addItem(self.grid_item)
        side.ci.layout.setRowStretchFactor(1, 1)
        side.ci.layout.setRowStretchFactor(3, 2)
        row.addWidget(side, 2)
        self.plot.scene().sigMouseClicked.connect(self._on_click)
        self.plot.scene().sigMouseMoved.connect(self._on_move)

    # ---- data in --------------------------------------------------------------------------
    def set_latent(self, points: np.ndarray, labels: np.ndarray, extent, dims: int = 2,
                   class_names: list[str] | None = None) -> None:
        self.points, self.labels = np.asarray(points, np.float32), np.asarray(labels)
        k = int(self.labels.max()) + 1 if len(self.labels) else 1
        colors = class_colors(k)
        brushes = [pg.mkBrush(*colors[int(c)], 200) for c in self.labels]
        self.scatter.setData(pos=self.points, brush=brushes)
        x0, x1, y0, y1 = (float(v) for v in extent)
        self.plot.setXRange(x0, x1, padding=0)
        self.plot.setYRange(y0, y1, padding=0)
        self.extent = (x0, x1, y0, y1)
        what = f"{dims}-D code, first two principal components" if dims > 2 else f"{dims}-D code"
        self.caption.setText(f"Latent space of {len(self.points)} validation samples ({what}), coloured by class "
                             "- no label was used to train. Press or drag to decode a point.")

    def set_grid(self, images: np.ndarray | None) -> None:
        self.grid = None if images is None else np.asarray(images, np.float32)
        self.grid_label.setVisible(self.grid is not None)
        if self.grid is None:
            self.grid_item.clear()
            return
        tiles = as_images(self.grid)
        n = int(round(np.sqrt(len(tiles))))
        _show(self.grid_item, mosaic(tiles, n), 0.0, max(1e-6, float(np.nanmax(tiles))))
        self.grid_box.autoRange(padding=0.02)

    def set_decoded(self, x: float, y: float, image: np.ndarray) -> None:
        self.chosen = (x, y)
        self.decoded = np.asarray(image, np.float32)
        tile = as_images(self.decoded[None])[0]
        _show(self.decoded_item, tile, 0.0, max(1e-6, float(np.nanmax(tile))))
        self.decoded_box.autoRange(padding=0.02)
        self.marker.setData(pos=[(x, y)])

    def clear(self) -> None:
        self.points = self.labels = self.decoded = self.grid = None
        self.scatter.clear()
        self.marker.clear()
        self.decoded_item.clear()
        self.grid_item.clear()

    # ---- the latent walk --------------------------------------------------------------------
    def request(self, x: float, y: float) -> None:
        """Ask for the decoding of plane point (x, y) (what a press or drag does)."""
        self.marker.setData(pos=[(x, y)])
        self.point_requested.emit(float(x), float(y))

    def _on_click(self, ev) -> None:
        if ev.button() == Qt.LeftButton:
            p = self.plot.getViewBox().mapSceneToView(ev.scenePos())
            self.request(p.x(), p.y())

    def _on_move(self, pos) -> None:
        from PySide6.QtWidgets import QApplication

        if QApplication.mouseButtons() & Qt.LeftButton and self.plot.sceneBoundingRect().contains(pos):
            p = self.plot.getViewBox().mapSceneToView(pos)
            self.request(p.x(), p.y())


class GanView(QWidget):
    """Real (green) and generated (purple) points over the discriminator's probability of "real"
    (blue 0 .. white 0.5 .. orange 1), arrows where the generator's loss pushes its samples, and
    both losses below. "Draw target" lets the user click points of a target distribution
    (``target_drawn`` with the (N, 2) points, on "Use drawing")."""

    target_drawn = Signal(object)
    REAL, FAKE = "#1b9e3e", "#7b3294"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.real = self.fake = self.heat = self.arrows = None
        self.drawing: list[tuple[float, float]] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self.caption = QLabel("GAN: real and generated points, the discriminator's view of the plane")
        self.caption.setWordWrap(True)
        lay.addWidget(self.caption)
        bar = QHBoxLayout()
        bar.addStretch(1)
        self.draw_box = QCheckBox("Draw target")
        self.draw_box.setToolTip("Click in the plane to add points of your own target distribution")
        self.use_button = QPushButton("Use drawing")
        self.use_button.setToolTip("Make the drawn points the GAN's target (the design's generative.points)")
        self.use_button.clicked.connect(self._use_drawing)
        self.show_arrows = QCheckBox("Arrows")
        self.show_arrows.setChecked(True)
        self.show_arrows.toggled.connect(lambda on: self.arrow_item.setVisible(on))
        for w in (self.show_arrows, self.draw_box, self.use_button):
            bar.addWidget(w)
        lay.addLayout(bar)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.plot.getPlotItem().hideButtons()
        self.plot.getViewBox().setMouseEnabled(False, False)
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item.setLookupTable(colormap("plane").getLookupTable(0.0, 1.0, 255))
        self.heat_item.setZValue(-10)
        self.real_item = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(QColor(self.REAL)))
        self.fake_item = pg.ScatterPlotItem(size=5, pen=None, brush=pg.mkBrush(QColor(self.FAKE)))
        self.arrow_item = pg.PlotDataItem(pen=pg.mkPen(QColor(60, 60, 60, 170), width=1), connect="pairs")
        self.drawn_item = pg.ScatterPlotItem(size=7, symbol="x", pen=pg.mkPen("k"), brush=None)
        for it in (self.heat_item, self.real_item, self.fake_item, self.arrow_item, self.drawn_item):
            self.plot.addItem(it)
        lay.addWidget(self.plot, 3)
        self.losses = pg.PlotWidget(background="w")
        self.losses.setMenuEnabled(False)
        self.losses.addLegend(offset=(5, 5))
        self.losses.setLabel("bottom", "epoch")
        self.d_curve = self.losses.plot(pen=pg.mkPen(TF_BLUE, width=2), name="discriminator loss")
        self.g_curve = self.losses.plot(pen=pg.mkPen(TF_ORANGE, width=2), name="generator loss")
        lay.addWidget(self.losses, 2)
        self.plot.scene().sigMouseClicked.connect(self._on_click)

    def set_state(self, real: np.ndarray, fake: np.ndarray, heat: np.ndarray, extent, arrows: np.ndarray | None) -> None:
        self.real, self.fake = np.asarray(real, np.float32), np.asarray(fake, np.float32)
        self.heat, self.arrows = np.asarray(heat, np.float32), arrows
        x0, x1, y0, y1 = (float(v) for v in extent)
        self.heat_item.setImage(self.heat, levels=(0.0, 1.0), autoLevels=False)
        self.heat_item.setRect(pg.QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
        self.real_item.setData(pos=self.real)
        self.fake_item.setData(pos=self.fake)
        if arrows is not None and len(arrows):
            a = np.asarray(arrows, np.float32)
            seg = np.empty((2 * len(a), 2), np.float32)
            seg[0::2], seg[1::2] = a[:, :2], a[:, :2] + a[:, 2:4]
            self.arrow_item.setData(seg[:, 0], seg[:, 1])
        else:
            self.arrow_item.setData([], [])
        self.plot.setXRange(x0, x1, padding=0)
        self.plot.setYRange(y0, y1, padding=0)
        spread = float(np.mean(np.std(self.fake, axis=0))) if len(self.fake) else 0.0
        self.caption.setText(f"Real (green), generated (purple); background: discriminator's P(real), orange = real. "
                             f"Spread of generated points {spread:.2f}")

    def set_losses(self, epochs: np.ndarray, d_loss: np.ndarray, g_loss: np.ndarray,
                   real_to_fake: np.ndarray | None = None) -> None:
        """Both losses per epoch; ``real_to_fake`` (mean distance of a real point to its nearest generated
        one) is shown in the caption: it stays high when the generator covers only some modes."""
        self.d_curve.setData(np.asarray(epochs, float), np.asarray(d_loss, float))
        self.g_curve.setData(np.asarray(epochs, float), np.asarray(g_loss, float))
        if real_to_fake is not None and len(real_to_fake) and self.fake is not None:
            gap = float(real_to_fake[-1])
            note = " - parts of the target are missed (mode collapse?)" if gap > 0.15 else ""
            self.caption.setText(self.caption.text().split(" | ")[0] + f" | real->generated gap {gap:.2f}{note}")

    def clear(self) -> None:
        self.real = self.fake = self.heat = self.arrows = None
        for it in (self.real_item, self.fake_item):
            it.clear()
        self.heat_item.clear()
        self.arrow_item.setData([], [])
        self.d_curve.setData([], [])
        self.g_curve.setData([], [])

    # ---- drawing a target --------------------------------------------------------------------
    def add_drawn_point(self, x: float, y: float) -> None:
        self.drawing.append((float(x), float(y)))
        self.drawn_item.setData(pos=np.asarray(self.drawing, np.float32))

    def _on_click(self, ev) -> None:
        if self.draw_box.isChecked() and ev.button() == Qt.LeftButton:
            p = self.plot.getViewBox().mapSceneToView(ev.scenePos())
            self.add_drawn_point(p.x(), p.y())

    def _use_drawing(self) -> None:
        if len(self.drawing) >= 2:
            self.target_drawn.emit(np.asarray(self.drawing, np.float32))
            self.drawing = []
            self.drawn_item.clear()
            self.draw_box.setChecked(False)
