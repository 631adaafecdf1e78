"""File > Export > PyTorch project... in the window: the worker writes the folder (the GUI holds no torch)."""
import os

import pytest
import torch
from PySide6.QtWidgets import QFileDialog

from app.training import TrainingController
from engine import spec as S
from tests.conftest import EXAMPLES


@pytest.fixture
def window(make_window, qtbot):
    spec = S.load(os.path.join(EXAMPLES, "xor.json"))
    spec.training.device = "cpu"
    spec.training.epochs = 3
    win = make_window(spec, start_engine=True, features=(TrainingController,))
    qtbot.waitUntil(lambda: win.engine.ready, timeout=60000)
    return win


def test_the_menu_action_writes_the_project_with_the_trained_weights(window, qtbot, tmp_path, monkeypatch):
    win, ctl = window, window.training
    act = win.actions["export_project"]
    assert act in win.menus["export"].actions() and win.menus["export"].menuAction() in win.menus["file"].actions()
    out = tmp_path / "xor_project"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))

    # before any training: the design's initial weights
    with qtbot.waitSignal(ctl.session.exported, timeout=60000) as sig:
        act.trigger()
    assert sig.args[0].error == "" and sig.args[0].kind == "project", sig.args[0].error
    assert {"model.py", "data.py", "train.py", "snapshot.pt", "config.json", "README.md"} <= set(os.listdir(out))
    assert "PyTorch project" in win.statusBar().currentMessage()
    fresh = torch.load(out / "snapshot.pt", weights_only=True)
    assert fresh["epoch"] == 0

    # after training: the run's weights and optimiser state, fetched in the worker
    ctl.train()
    qtbot.waitUntil(lambda: ctl.state == "finished", timeout=60000)
    trained = out.parent / "trained"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(trained))
    with qtbot.waitSignal(ctl.session.exported, timeout=60000) as sig:
        act.trigger()
    assert sig.args[0].error == "", sig.args[0].error
    snap = torch.load(trained / "snapshot.pt", weights_only=True)
    assert snap["epoch"] == 3 and snap["optimizer"]["state"]
    live = ctl.session.fetch_weights(ctl.run.run_id)
    assert live.keys() == snap["model"].keys()
    assert all(torch.equal(snap["model"][k], torch.from_numpy(v)) for k, v in live.items())
    assert not any(torch.equal(snap["model"][k], fresh["model"][k]) for k in live if k.endswith("weight"))


def test_a_folder_that_is_not_empty_is_refused_with_the_reason(window, qtbot, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("mine")
    with qtbot.waitSignal(window.training.session.exported, timeout=60000) as sig:
        assert window.training.export_project(str(busy))
    assert "not empty" in sig.args[0].error
    assert "Export failed" in window.training.last_message and "not empty" in window.training.last_message
    assert os.listdir(busy) == ["thesis.tex"]
