"""Neural Playground's data files: example designs, lessons, the text corpus and the icon.

A package only so that ``pip install .`` ships them beside ``app``, ``engine`` and ``widgets``:
the code finds them as ``<folder holding engine>/assets/...``, in the repository and installed.
"""
import os

ROOT = os.path.dirname(os.path.abspath(__file__))
ICON = os.path.join(ROOT, "icon.png")
EXAMPLES = os.path.join(ROOT, "examples")
