"""Shared test set-up: Qt runs offscreen and never touches the user's settings; gpu tests need a CUDA GPU."""
import gc
import os
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NP_SETTINGS_ORG", "NeuralPlaygroundTests")
# autosaves and their locks (app.runfiles) never go to the user's data folder
os.environ.setdefault("NEURAL_PLAYGROUND_DATA", __import__("tempfile").mkdtemp(prefix="np-test-data-"))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

EXAMPLES = os.path.join(ROOT, "assets", "examples")

# PySide6 6.12 on CPython 3.11 leaks references to True/None on every emit; see widgets/pyside_fix.py
from widgets import pyside_fix  # noqa: E402

pyside_fix.install()
# Python's cyclic collector must not free Qt objects in a reader or worker thread (a deadlock, see
# widgets/pyside_fix.py): it is off here, and each test's garbage is collected in the main thread
gc.disable()


@pytest.fixture(autouse=True)
def _collect_garbage_in_the_main_thread():
    yield
    gc.collect()


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``gpu`` unless torch sees a CUDA GPU.

    torch is imported only when a collected test carries the marker: some test processes (the
    import-time and architecture checks) must not have torch imported early by the test harness.
    """
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in gpu_items:
        item.add_marker(skip)
