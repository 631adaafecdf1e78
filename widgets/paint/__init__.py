"""One painting vocabulary for every view: named colours (palette), value -> colour maps
(colormaps, on pyqtgraph's ColorMap), the one colour bar (colorbar) and numpy <-> QImage helpers
(images). Imports numpy, Qt and pyqtgraph only."""
