"""The live views. numpy, Qt, pyqtgraph and widgets.paint only: never engine, torch or app."""

from widgets.paint.plots import cache_axis_pictures

cache_axis_pictures()  # before any view makes a plot
