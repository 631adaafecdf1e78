"""Fixtures for the app tests: settings in a temp folder, a main window that never prompts at teardown."""
import pytest
from PySide6.QtCore import QSettings

from engine.spec import DatasetSpec, EdgeSpec, LayerSpec, Spec


@pytest.fixture(autouse=True)
def temp_settings(tmp_path):
    """Every test gets empty settings: nothing left over from the user or another test."""
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(tmp_path / "settings"))
    yield


def chain_spec(dataset: str = "xor") -> Spec:
    """Input -> Dense(8) -> Activation tanh -> Output, laid out top to bottom."""
    spec = Spec(name="chain", dataset=DatasetSpec(dataset, {}))
    chain = [("input1", "Input", {}), ("dense1", "Dense", {"units": 8}), ("act1", "Activation", {"function": "tanh"}),
             ("output1", "Output", {})]
    spec.layers = [LayerSpec(lid, kind, params, (0.0, 132.0 * i)) for i, (lid, kind, params) in enumerate(chain)]
    spec.edges = [EdgeSpec(a[0], b[0]) for a, b in zip(chain, chain[1:], strict=False)]
    return spec


@pytest.fixture
def make_window(qtbot):
    """make_window(spec=None, show=True) -> MainWindow without the torch loader."""
    from app.main_window import MainWindow

    made = []

    def make(spec=None, show=True, **kw):
        kw.setdefault("start_engine", False)
        win = MainWindow(chain_spec() if spec is None else spec, **kw)
        made.append(win)  # closed below, not by qtbot: its teardown runs before ours and would prompt
        if show:
            win.show()
            qtbot.waitExposed(win)
            qtbot.waitUntil(lambda: win._first_frame_done, timeout=3000)
        return win

    yield make
    for win in made:
        win.ask_save_changes = lambda: "discard"  # teardown must never block on a dialog
        win.close()
        win.deleteLater()
