"""The live views. numpy, Qt, pyqtgraph and widgets.paint only: never engine, torch or app."""
