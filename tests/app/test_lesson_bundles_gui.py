"""File > Import Lesson Bundle...: a teacher's bundle joins the Lessons dock at once (and after a
restart); a hostile bundle shows an error and leaves the lessons as they were."""
import json
import os
import zipfile

import pytest
from PySide6.QtCore import QMimeData, QUrl

from app.lessons import LessonsController
from app.training import TrainingController
from engine import lessons as LS

FEATURES = (TrainingController, LessonsController)


def _bundle(path, members: dict):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in members.items():
            zf.writestr(n, json.dumps(d))
    return str(path)


def _renamed(name: str, new: str, title: str) -> dict:
    with open(os.path.join(LS.LESSONS_DIR, name + ".json"), encoding="utf-8") as fh:
        d = json.load(fh)
    d["name"], d["title"] = new, title
    return d


def _listed(ctl) -> list[tuple[str, str]]:
    """(group, title) of every lesson in the dock's tree, as the user sees them."""
    tree = ctl.panel.tree
    return [(tree.topLevelItem(i).text(0), tree.topLevelItem(i).child(j).text(0))
            for i in range(tree.topLevelItemCount()) for j in range(tree.topLevelItem(i).childCount())]


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURAL_PLAYGROUND_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def win(make_window, data):
    w = make_window(features=FEATURES)
    w.errors = []
    w.show_error = lambda title, text: w.errors.append((title, text))
    return w


def test_import_lists_the_lesson_at_once_and_after_a_restart(win, data, tmp_path, make_window):
    ctl = win.lessons
    before = _listed(ctl)
    good = _bundle(tmp_path / "class.nplesson", {"class_momentum.json": _renamed("momentum", "class_momentum",
                                                                                 "Momentum for class 3b")})
    ctl.ask_bundle_open_path = lambda: good
    win.actions["import_lessons"].trigger()
    assert win.errors == []
    assert set(_listed(ctl)) - set(before) == {("Optimisation", "Momentum for class 3b")}
    assert ctl.panel.selected_lesson() == "class_momentum" and ctl.dock.isVisible()
    assert "Momentum for class 3b" in win.statusBar().currentMessage()
    assert os.path.isfile(data / "lessons" / "class_momentum.json")
    assert ctl.open("class_momentum") and win.document.spec.name == "Momentum for class 3b"
    # the open (imported) lesson exports as a bundle; a shipped one is refused with a reason
    ctl.ask_bundle_save_path = lambda name: str(tmp_path / f"out-{name}.nplesson")
    win.actions["export_lessons"].trigger()
    with zipfile.ZipFile(tmp_path / "out-class_momentum.nplesson") as zf:
        assert zf.namelist() == ["class_momentum.json"]
    ctl.open("momentum")
    assert not ctl.export_bundle(str(tmp_path / "shipped.nplesson"))
    assert "comes with Neural Playground" in win.errors[-1][1] and not os.path.exists(tmp_path / "shipped.nplesson")
    again = make_window(features=FEATURES)
    assert ("Optimisation", "Momentum for class 3b") in _listed(again.lessons)


@pytest.mark.parametrize("members, why", [
    ({"ok_one.json": None, "../evil.json": None}, "outside the lessons folder"),
    ({"ok_one.json": None, "momentum.json": "shipped"}, "has the name of a lesson that comes with"),
    ({"ok_one.json": None, "payload.exe": None}, "unknown member 'payload.exe'"),
])
def test_a_bad_bundle_shows_an_error_and_changes_nothing(win, data, tmp_path, members, why):
    ctl = win.lessons
    before = _listed(ctl)
    made = {n: (_renamed("momentum", "momentum", "Momentum") if v == "shipped"
                else _renamed("dropout", n[:-5] if n.endswith(".json") else "x", "Bad")) for n, v in members.items()}
    bad = _bundle(tmp_path / "bad.nplesson", made)
    ctl.ask_bundle_open_path = lambda: bad
    win.actions["import_lessons"].trigger()
    assert len(win.errors) == 1 and why in win.errors[0][1] and "not installed" in win.errors[0][1]
    assert _listed(ctl) == before
    assert not os.path.exists(data / "lessons") or os.listdir(data / "lessons") == []


def test_a_dropped_bundle_is_installed(win, tmp_path):
    path = _bundle(tmp_path / "drop.nplesson", {"dropped.json": _renamed("dropout", "dropped", "Dropped dropout")})
    assert win.open_path(path)
    assert win.lessons.panel.selected_lesson() == "dropped" and win.errors == []
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path)])
    assert win._dropped_json(mime) == path  # dragging one onto the window is accepted
