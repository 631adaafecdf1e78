"""Plot settings every live view shares."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem

_installed = False


def cache_axis_pictures() -> None:
    """Keep each plot axis as a pixmap that Qt redraws only when the axis changes (once per process).

    Measured with bench/ui_latency.py (xor, every dock open): replaying the axes' tick-label
    pictures on every repaint of every plot took 55 % of the GUI thread, and the event loop's
    median delay was 8-12 ms. An axis whose range is unchanged now costs a blit; pyqtgraph calls
    ``update()`` when ticks or labels change, which refreshes the cache.
    """
    global _installed
    if _installed:
        return
    init = pg.AxisItem.__init__

    def cached_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)

    pg.AxisItem.__init__ = cached_init
    _installed = True
