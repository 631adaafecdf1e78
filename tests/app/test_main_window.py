"""The editor window as a user drives it: drops, wiring, shapes, undo, files, prompts."""
import json
import os

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from app.document import copy_payload, read_design
from app.file_ops import EXAMPLES_DIR
from engine.spec import DatasetSpec, LayerSpec, Spec, dumps, load
from tests.app.conftest import chain_spec
from widgets.editor.palette import layer_mime


def _drop(view, mime, pos: QPoint):
    """What a real drag does, without QDrag.exec (which blocks offscreen)."""
    vp = view.viewport()
    p = QPointF(pos)
    for ev in (QDragEnterEvent(p, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier),
               QDragMoveEvent(p, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier),
               QDropEvent(p, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)):
        QApplication.sendEvent(vp, ev)


def test_window_title_docks_and_status(make_window):
    win = make_window()
    assert win.windowTitle() == "chain[*] - Neural Playground"
    assert {"palette_dock", "inspector_dock", "data_dock"} <= set(win.docks)
    assert win.dockWidgetArea(win.docks["palette_dock"]) == Qt.LeftDockWidgetArea
    assert win.centralWidget() is win.canvas
    assert win.totals_label.text().startswith("4 layers \u00b7 42 parameters")  # 2*8+8 + 8*2+2


def test_dropping_a_palette_item_makes_a_node_where_dropped_with_its_shape(make_window):
    win = make_window(Spec(name="empty"))
    vp = win.canvas.viewport()
    where = QPoint(vp.width() // 3, vp.height() // 3)
    _drop(win.canvas, layer_mime("Input", {}), where)
    assert [lay.kind for lay in win.document.spec.layers] == ["Input"]
    lay = win.document.spec.layers[0]
    scene = win.canvas.mapToScene(where)
    assert abs(lay.pos[0] - scene.x()) < 2 and abs(lay.pos[1] - scene.y()) < 2
    assert win.report.shapes[lay.id] == (2,)  # XOR points
    assert win.canvas.selected_ids() == [lay.id]

    _drop(win.canvas, layer_mime("Dense", {"units": 5}), QPoint(where.x(), where.y() + 150))
    dense = win.document.spec.layers[1]
    assert (dense.kind, dense.params) == ("Dense", {"units": 5})
    win.canvas.edge_requested.emit(lay.id, dense.id)  # what dragging from port to port emits
    assert win.report.shapes[dense.id] == (5,)
    assert win.report.counts[dense.id] == 2 * 5 + 5
    assert win.canvas.node_item(dense.id).shape_text == "5"


def test_refused_edge_and_canvas_messages_reach_the_status_bar(make_window):
    win = make_window()
    win.canvas.edge_requested.emit("act1", "dense1")  # a cycle the canvas would normally refuse
    assert "loop" in win.statusBar().currentMessage()
    assert win.document.undo_stack.count() == 0
    win.canvas.status_message.emit("Cannot connect x to itself")
    assert win.statusBar().currentMessage() == "Cannot connect x to itself"


def test_shape_error_shows_on_the_node_and_clears_when_fixed(make_window):
    spec = chain_spec("digits")  # 1x8x8 images into a Dense layer
    win = make_window(spec)
    node = win.canvas.node_item("dense1")
    assert "flat input" in win.report.node_errors["dense1"]
    assert node.error and "Flatten" in node.error
    assert "problem" in win.totals_label.text()
    win.canvas.select_ids(["input1"])
    win.palette.kind_activated.emit("Flatten", {})
    flat = win.canvas.selected_ids()[0]
    assert win.document.spec.inputs_of("dense1") == [flat]
    assert win.report.shapes[flat] == (64,)
    assert "dense1" not in win.report.node_errors and node.error is None
    assert win.report.counts["dense1"] == 64 * 8 + 8


def test_add_with_mismatched_shapes_is_marked(make_window):
    win = make_window()
    doc = win.document
    d2 = doc.add_layer("Dense", {"units": 3}, (200, 100))
    add = doc.add_layer("Add", {}, (100, 300))
    for src, dst in (("input1", d2), ("dense1", add), (d2, add)):
        assert doc.connect(src, dst) is None
    assert "equal shapes" in win.canvas.node_item(add).error
    doc.set_param(d2, "units", 8)
    assert win.canvas.node_item(add).error is None and win.report.shapes[add] == (8,)


def test_palette_double_click_inserts_after_the_selection(make_window):
    win = make_window()
    win.canvas.select_ids(["dense1"])
    win.palette.kind_activated.emit("Dropout", {"rate": 0.2})
    spec = win.document.spec
    new = win.canvas.selected_ids()
    assert len(new) == 1 and spec.layer(new[0]).kind == "Dropout"
    assert spec.inputs_of(new[0]) == ["dense1"] and spec.outputs_of(new[0]) == ["act1"]
    assert win.document.undo_stack.undoText() == "Insert Dropout after dense1"


def test_delete_copy_paste_and_select_all_through_the_canvas_keys(make_window, qtbot):
    win = make_window()
    before = win.document.spec.to_dict()
    win.canvas.setFocus()
    win.canvas.select_ids(["dense1", "act1"])
    qtbot.keyClick(win.canvas, Qt.Key_C, Qt.ControlModifier)
    qtbot.keyClick(win.canvas, Qt.Key_V, Qt.ControlModifier)
    spec = win.document.spec
    pasted = win.canvas.selected_ids()
    assert len(spec.layers) == 6 and len(pasted) == 2 and not {"dense1", "act1"} & set(pasted)
    assert spec.layer(pasted[0]).pos == (40.0, 132.0 + 40.0)
    assert spec.inputs_of(pasted[1]) == [pasted[0]]
    qtbot.keyClick(win.canvas, Qt.Key_Delete)
    assert win.document.spec.to_dict()["layers"] == before["layers"]
    win.canvas.select_ids(["act1"])
    qtbot.keyClick(win.canvas, Qt.Key_Backspace)
    assert win.document.spec.layer("act1") is None
    assert all("act1" not in (e.src, e.dst) for e in win.document.spec.edges)
    win.actions["undo"].trigger()
    assert win.document.spec.layer("act1") is not None and len(win.document.spec.edges) == 3


def test_undo_redo_actions_name_the_edit_and_restore_exactly(make_window, qtbot):
    win = make_window()
    doc = win.document
    states = [doc.spec.to_dict()]
    win.canvas.nodes_moved.emit({"dense1": (80.0, 150.0)})
    states.append(doc.spec.to_dict())
    win.inspector.training_changed.emit("optimizer", "sgd")
    states.append(doc.spec.to_dict())
    win.data_panel.dataset_changed.emit("moons", {"n_points": 200, "noise": 0.1, "val_fraction": 0.2, "seed": 1})
    states.append(doc.spec.to_dict())
    win.canvas.edges_delete_requested.emit([("act1", "output1")])
    states.append(doc.spec.to_dict())
    win.auto_layout()
    states.append(doc.spec.to_dict())
    assert win.actions["undo"].text() == "&Undo Auto-layout"
    for i in range(len(states) - 1, 0, -1):
        win.actions["undo"].trigger()
        assert doc.spec.to_dict() == states[i - 1]
    assert not win.isWindowModified()
    for i in range(1, len(states)):
        win.actions["redo"].trigger()
        assert doc.spec.to_dict() == states[i]
    assert win.isWindowModified()
    keys = {s.toString() for s in win.actions["redo"].shortcuts()}
    assert {"Ctrl+Shift+Z", "Ctrl+Y"} <= keys


def test_inspector_edits_change_the_spec_and_are_undoable(make_window, qtbot):
    win = make_window()
    win.canvas.select_ids(["dense1"])
    assert win.inspector.tabs.currentIndex() == 0
    spin = win.inspector.layer_page.editors["units"]
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, "32")
    assert win.document.spec.layer("dense1").params["units"] == 32
    assert win.report.shapes["dense1"] == (32,)
    assert win.document.undo_stack.count() == 1, "typing is one undo step"
    assert spin.hasFocus() and spin.value() == 32, "the refresh after each edit leaves the editor alone"
    win.actions["undo"].trigger()
    assert win.document.spec.layer("dense1").params["units"] == 8 and spin.value() == 8

    win.canvas.select_ids([])
    assert win.inspector.tabs.currentIndex() == 1
    combo = win.inspector.design_page.editors["optimizer"]
    combo.setCurrentText("rmsprop")
    assert win.document.spec.training.optimizer == "rmsprop"
    name = win.inspector.design_page.name_edit
    name.setText("My net")
    name.editingFinished.emit()
    assert win.document.spec.name == "My net"
    assert win.windowTitle() == "My net[*] - Neural Playground" and win.isWindowModified()


def test_dataset_panel_edits_update_shapes_and_preview(make_window, tmp_path):
    win = make_window()
    win.data_panel.kind_combo.setCurrentText("spiral")
    assert win.document.spec.dataset.kind == "spiral"
    win.data_panel.editors["classes"].setValue(4)
    assert win.document.spec.dataset.params["classes"] == 4
    assert win.report.shapes["output1"] == (4,)
    assert len(win.data_panel.scatter.data) == win.document.spec.dataset.params["n_points"]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,x,0\n2,3,1\n4,5,0\n")
    win.document.set_dataset("csv", {"path": str(bad), "label_column": "label"})
    assert "not a number" in win.data_panel.message()
    assert "not a number" in win.statusBar().currentMessage()
    assert win.data_info is None and win.report.shapes.get("input1") is None


def test_iris_preview_waits_for_the_engine_then_loads_off_the_gui_thread(make_window, qtbot):
    win = make_window(chain_spec("iris"))
    assert "engine" in win.data_panel.message()
    with qtbot.waitSignal(win.engine.engine_ready, timeout=120000):
        win.engine.start()
    qtbot.waitUntil(lambda: not win.tasks.busy(), timeout=30000)
    assert win.data_panel.message() == ""
    assert len(win.data_panel.scatter.data) == 150
    assert win.engine_label.text() == "Editor ready", "without training there is no trainer to announce"


def test_save_then_open_gives_an_equal_design(make_window, tmp_path):
    win = make_window()
    win.document.set_param("dense1", "units", 12)
    path = str(tmp_path / "net.json")
    win.ask_save_path = lambda: path
    assert win.save()
    assert not win.isWindowModified() and win.document.path == path
    saved = win.document.spec.to_dict()
    assert load(path).to_dict() == saved
    assert win.recent_files()[0] == path

    win.document.set_param("dense1", "units", 3)
    win.ask_save_changes = lambda: "discard"
    win.ask_open_path = lambda: path
    assert win.open_design()
    assert win.document.spec.to_dict() == saved and not win.isWindowModified()
    assert win.windowFilePath() == path


def test_malformed_files_leave_the_design_intact_and_show_every_problem(make_window, tmp_path):
    win = make_window()
    win.document.set_param("dense1", "units", 9)
    before = win.document.spec.to_dict()
    shown = []
    win.show_error = lambda title, text: shown.append(text)
    win.ask_save_changes = lambda: (_ for _ in ()).throw(AssertionError("no prompt for a file that cannot open"))
    hostile = json.loads(dumps(chain_spec()))
    hostile["layers"][1]["params"]["units"] = 10**300
    hostile["training"]["momentum"] = "fast"
    cases = {"bad.json": "{\"format\": ", "deep.json": "[" * 50000, "hostile.json": json.dumps(hostile)}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        assert not win.open_path(str(tmp_path / name))
    assert len(shown) == 3
    assert "not valid JSON" in shown[0]
    assert "dense1.units" in shown[2] and "training.momentum" in shown[2]
    assert win.document.spec.to_dict() == before and win.document.path is None and win.isWindowModified()


def test_the_error_dialog_really_appears(make_window, tmp_path):
    win = make_window()
    (tmp_path / "bad.json").write_text("nope")
    seen = []

    def close_box():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.accept()
        else:
            QTimer.singleShot(20, close_box)

    QTimer.singleShot(20, close_box)
    assert not win.open_path(str(tmp_path / "bad.json"))
    assert seen and "bad.json" in seen[0] and "JSON" in seen[0]


def test_closing_with_changes_prompts(make_window, qtbot):
    win = make_window()
    win.document.set_param("dense1", "units", 4)
    asked = []
    win.ask_save_changes = lambda: asked.append(1) or "cancel"
    win.close()
    assert asked and win.isVisible()
    win.ask_save_changes = lambda: "discard"
    win.close()
    assert not win.isVisible()


def test_the_real_save_prompt_appears_and_its_buttons_work(make_window):
    win = make_window()
    win.document.set_param("dense1", "units", 4)
    texts = []

    def answer(button):
        def click():
            box = QApplication.activeModalWidget()
            if isinstance(box, QMessageBox):
                texts.append(box.text())
                box.button(button).click()
            else:
                QTimer.singleShot(20, click)
        QTimer.singleShot(20, click)

    answer(QMessageBox.Cancel)
    win.close()
    assert win.isVisible() and "chain" in texts[0]
    answer(QMessageBox.Discard)
    win.close()
    assert not win.isVisible()


def test_new_and_examples_open_untitled_copies(make_window):
    win = make_window()
    win.ask_save_changes = lambda: "discard"
    win.document.set_param("dense1", "units", 4)
    assert win.new_design()
    kinds = [lay.kind for lay in win.document.spec.layers]
    assert kinds == ["Input", "Output"] and win.report.ok
    example = os.path.join(EXAMPLES_DIR, "xor.json")
    win._fill_examples_menu()
    labels = [a.text() for a in win.menus["examples"].actions()]
    assert "xor" in labels
    assert win.open_example(example)
    assert win.document.path is None and not win.isWindowModified()
    assert win.document.spec.to_dict() == read_design(example).to_dict()


def test_a_design_dropped_on_the_window_opens(make_window, tmp_path):
    win = make_window()
    spec = chain_spec()
    spec.name = "dropped"
    path = tmp_path / "dropped.json"
    path.write_text(dumps(spec))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    _drop(win.canvas, mime, QPoint(50, 50))
    assert win.document.spec.name == "dropped" and win.document.path == str(path)


def test_recent_files_menu_lists_saved_files(make_window, tmp_path):
    win = make_window()
    for i in range(10):
        p = tmp_path / f"d{i}.json"
        p.write_text(dumps(chain_spec()))
        win.add_recent(str(p))
    win._fill_recent_menu()
    names = [a.text() for a in win.menus["recent"].actions() if a.text()]
    assert names[:8] == [f"d{i}.json" for i in range(9, 1, -1)]
    assert names[-1] == "Clear recent files"


def test_window_layout_comes_back_at_next_start(make_window):
    win = make_window()
    screen = win.screen().availableGeometry()  # restoreGeometry keeps windows on the screen
    size = (screen.width() - 61, screen.height() - 83)
    win.resize(*size)
    win.docks["data_dock"].hide()
    win.close()
    again = make_window()
    assert (again.width(), again.height()) == size
    assert not again.docks["data_dock"].isVisible()


def test_auto_layout_is_one_undoable_step(make_window):
    win = make_window()
    win.document.move_layers({"act1": (500.0, -300.0)})
    before = win.document.spec.to_dict()
    win.actions["auto_layout"].trigger()
    ys = [lay.pos[1] for lay in win.document.spec.layers]
    assert ys == sorted(ys), "layers flow top to bottom"
    win.actions["undo"].trigger()
    assert win.document.spec.to_dict() == before


def test_paste_ignores_foreign_clipboard_text(make_window):
    win = make_window()
    QApplication.clipboard().setText("hello")
    assert win.paste() == []
    assert "Nothing to paste" in win.statusBar().currentMessage()
    QApplication.clipboard().setText('{"format": "neural-playground-layers", "layers": [{"id": "a", "kind": "Nope"}]}')
    assert win.paste() == []
    QApplication.clipboard().setText(json.dumps(copy_payload(win.document.spec, ["dense1"])))
    first, second = win.paste(), win.paste()
    spec = win.document.spec
    assert spec.layer(first[0]).pos == (40.0, 172.0) and spec.layer(second[0]).pos == (80.0, 212.0)


def test_image_dataset_kinds_appear_once_the_engine_is_ready(make_window, qtbot):
    win = make_window(Spec(name="img", dataset=DatasetSpec("xor", {}), layers=[LayerSpec("input1", "Input")]))
    win._on_engine_ready("CPU")
    kinds = [win.data_panel.kind_combo.itemText(i) for i in range(win.data_panel.kind_combo.count())]
    from engine.datasets import all_kinds
    assert kinds == all_kinds()


def test_a_design_dropped_on_a_dock_opens_too(make_window, tmp_path):
    win = make_window()
    spec = chain_spec()
    spec.name = "on the window"
    path = tmp_path / "w.json"
    path.write_text(dumps(spec))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPointF(5, 5), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    win.dragEnterEvent(enter)
    assert enter.isAccepted()
    win.dropEvent(QDropEvent(QPointF(5, 5), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))
    assert win.document.spec.name == "on the window"


def test_features_add_docks_and_menus_that_are_restored(make_window):
    from PySide6.QtWidgets import QLabel

    def feature(win):
        win.add_dock(QLabel("curves"), "Curves", Qt.BottomDockWidgetArea, "curves_dock")
        win.menus["training"] = win.menuBar().addMenu("&Training")
        return "installed"

    win = make_window(features=[feature])
    assert win.features == ["installed"] and "curves_dock" in win.docks
    assert win.docks["curves_dock"].toggleViewAction() in win.menus["panels"].actions()
    win.docks["curves_dock"].hide()
    win.close()
    again = make_window(features=[feature])
    assert not again.docks["curves_dock"].isVisible() and again.docks["inspector_dock"].isVisible()


def test_an_11_layer_cnn_stays_legible_after_auto_layout_and_fit(make_window, qtbot):
    """digits_cnn (11 layers) drawn as one long column, at 1400 x 900: Auto-layout + fit keep the cards readable."""
    import os

    from engine import spec as S
    from tests.conftest import EXAMPLES

    with open(os.path.join(EXAMPLES, "digits_cnn.json"), encoding="utf-8") as fh:
        spec = S.loads(fh.read())
    assert len(spec.layers) == 11
    for i, lay in enumerate(spec.layers):
        lay.pos = (0.0, 110.0 * i)
    win = make_window(spec)
    win.resize(1400, 900)
    qtbot.wait(50)
    win.actions["auto_layout"].trigger()
    qtbot.wait(50)
    canvas = win.canvas
    assert canvas.zoom() >= 0.6  # the cards' text is readable
    view = canvas.viewport().rect()
    for lay in win.document.spec.layers:
        assert view.contains(canvas.mapFromScene(*lay.pos)), lay.id  # and all of them are in view


@pytest.mark.parametrize("fault", ["read-only folder", "full disk", "interrupted write"])
def test_a_failed_save_keeps_the_previous_file_and_the_open_design_and_says_why(make_window, tmp_path, monkeypatch,
                                                                                 fault):
    import errno
    import tempfile

    win = make_window()
    path = str(tmp_path / "design.json")
    assert win._save_to(path)
    before = open(path, "rb").read()
    win.document.set_param("dense1", "units", 9)
    edited = win.document.spec.to_dict()
    shown = []
    win.show_error = lambda title, text: shown.append(text)
    if fault == "read-only folder":  # root ignores chmod: this is what the OS answers a user there
        def mkstemp(*_a, **_k):
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    elif fault == "full disk":
        def fsync(_fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(os, "fsync", fsync)
    else:  # the process is interrupted after the temporary file is written, before it replaces the old one
        def replace(*_a):
            raise KeyboardInterrupt
        monkeypatch.setattr(os, "replace", replace)
    if fault == "interrupted write":
        with pytest.raises(KeyboardInterrupt):
            win._save_to(path)
    else:
        assert not win._save_to(path)
        words = {"read-only folder": "Permission denied", "full disk": "No space left"}[fault]
        assert len(shown) == 1 and words in shown[0] and "still open" in shown[0]
    monkeypatch.undo()
    assert open(path, "rb").read() == before, "the previous file is intact"
    assert sorted(os.listdir(tmp_path)) == ["design.json"], "no temporary file is left behind"
    assert win.document.spec.to_dict() == edited and win.isWindowModified(), "the edit is still open, unsaved"
