"""Shared test set-up: Qt runs offscreen and never touches the user's settings."""
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NP_SETTINGS_ORG", "NeuralPlaygroundTests")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

EXAMPLES = os.path.join(ROOT, "assets", "examples")

# PySide6 6.12 on CPython 3.11 leaks references to True/None on every emit; see widgets/pyside_fix.py
from widgets import pyside_fix  # noqa: E402

pyside_fix.install()
