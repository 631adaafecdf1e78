"""The main window: composes palette, canvas, inspector and data panel around a Document.

Widgets emit intents; the handlers here turn them into undoable Document edits. After every
edit ``_on_document_spec_changed`` re-runs shape inference and refreshes every view.

Extending (e.g. a training toolbar and plot docks): pass ``features=[SomeController]``; each
is called with the window and can use ``self.menus[name]``, ``self.actions[name]``,
``add_dock(widget, title, area, name, tabify_with)`` and ``add_toolbar(title)``. Features run
before ``restore_layout()``, so their docks come back where the user left them.

Start-up (issue 14): with ``lazy=True`` (what ``python main.py`` does) the window shows with the
editor, menus, toolbars and every dock in place, the view docks holding light placeholders;
pyqtgraph, the views and the features' presenters are built after the first frame, one small
step per event-loop turn (``later(fn)`` queues a step). ``finish_building()`` does the rest at
once - anything that needs a view (Train, a kernel-lab preset) calls it first. Without
``lazy`` (tests, scripts) the window is complete when the constructor returns.
"""
from __future__ import annotations

import importlib
import json
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QByteArray, QMimeData, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget, QLabel, QMainWindow, QMessageBox, QToolBar, QWidget

from app.document import Document, copy_payload, parse_payload
from app.engine_loader import EngineLoader, TaskRunner
from app.file_ops import FileOpsMixin, startup_spec
from app.presenters_sequence import DOCKS as SEQUENCE_VIEWS
from app.presenters_sequence import raise_views_for
from app.preview import preview
from engine import datasets
from engine import layers as L
from engine.spec import Spec
from widgets import pyside_fix
from widgets.editor.canvas import NetworkCanvas
from widgets.editor.data_panel import DataPanel
from widgets.editor.inspector import Inspector
from widgets.editor.layout import auto_layout
from widgets.editor.palette import LayerPalette

APP_NAME = "Neural Playground"
LAYOUT_VERSION = 5  # bump when the default dock set changes, so old saved layouts are dropped
SLOW_DATASETS = ("iris", "digits")  # their preview needs sklearn, loaded after the window shows
VIEW_DOCKS = ("curves_dock", "boundary_dock", "neuron_dock", "filters_dock", "feature_maps_dock", "saliency_dock",
              "evaluation_dock", "gradients_dock", "distributions_dock", "roc_dock", "embedding_dock",
              "landscape_dock")

_SEQUENCE_DOCKS = ("regression_dock", "hidden_dock", "attention_dock", "prediction_dock", "text_dock")
_IMAGE_DOCKS = ("filters_dock", "feature_maps_dock", "saliency_dock")
# docks with nothing to show for a kind of data: hidden when that kind is chosen (View menu brings them back)
HIDDEN_FOR = {
    "plane": _IMAGE_DOCKS + _SEQUENCE_DOCKS,
    "image": ("boundary_dock", "neuron_dock") + _SEQUENCE_DOCKS,
    "regression": ("boundary_dock", "neuron_dock", "evaluation_dock", "roc_dock") + _IMAGE_DOCKS
    + _SEQUENCE_DOCKS[1:],
    "sequence": ("boundary_dock", "neuron_dock", "regression_dock") + _IMAGE_DOCKS,
}


def data_kind(info) -> str | None:
    """plane | image | regression | sequence (None: no data yet): which views mean something."""
    if info is None:
        return None
    if info.is_image:
        return "image"
    if info.is_sequence:
        return "sequence"
    return "regression" if info.task == "regression" else "plane"


def app_settings() -> QSettings:
    """Settings in an INI file; the organisation comes from NP_SETTINGS_ORG (tests set it)."""
    org = os.environ.get("NP_SETTINGS_ORG") or "NeuralPlayground"
    return QSettings(QSettings.IniFormat, QSettings.UserScope, org, "NeuralPlayground")


# Views attribute -> (module in widgets.views, class), in the order they are built after the first
# frame: the docks in front in the default layout first
VIEW_CLASSES = {"curves": ("curves", "CurvesView"), "boundary": ("boundary", "BoundaryView"),
                "evaluation": ("evaluation", "EvaluationView"), "neuron": ("boundary", "NeuronMapView"),
                "filters": ("filters", "FiltersView"), "feature_maps": ("feature_maps", "FeatureMapsView"),
                "saliency": ("saliency", "SaliencyView"), "gradients": ("gradients", "GradientsView"),
                "distributions": ("distributions", "DistributionsView"), "roc": ("roc", "RocView"),
                "embedding": ("embedding", "EmbeddingView"), "landscape": ("landscape", "LandscapeView"),
                "regression": ("sequence", "RegressionView"), "hidden": ("sequence", "HiddenStateView"),
                "attention": ("sequence", "AttentionView"), "prediction": ("sequence", "PredictionView"),
                "text": ("sequence", "TextView")}


@dataclass
class Views:
    """The live views, each in a dock of the main window (``docks`` by object name). None until
    the window has built them (MainWindow.finish_building)."""

    curves: Any = None
    boundary: Any = None
    neuron: Any = None
    filters: Any = None
    feature_maps: Any = None
    saliency: Any = None
    evaluation: Any = None
    gradients: Any = None
    distributions: Any = None
    roc: Any = None
    embedding: Any = None
    landscape: Any = None
    # regression and sequence views (docks named in app.presenters_sequence)
    regression: Any = None
    hidden: Any = None
    attention: Any = None
    prediction: Any = None
    text: Any = None
    docks: dict = field(default_factory=dict)


def _import_views() -> None:
    import widgets.views  # noqa: F401 - pyqtgraph and its set-up (widgets/views/__init__.py)


def _placeholder() -> QWidget:
    """What a view dock shows until its view is built: a quiet word, no pyqtgraph."""
    label = QLabel("Loading...")
    label.setAlignment(Qt.AlignCenter)
    label.setEnabled(False)  # the greyed text of the style
    label.setMinimumSize(150, 120)
    return label


def _dataset_key(ds) -> str:
    return ds.kind + json.dumps(ds.params, sort_keys=True, default=str)


class MainWindow(FileOpsMixin, QMainWindow):
    """The editor window. Public parts: document, canvas, palette, inspector, data_panel,
    menus, actions, docks, add_dock, add_toolbar, status, engine (EngineLoader), tasks,
    later, finish_building, is_built."""

    built = Signal()  # every view and presenter exists (lazy windows: some time after the first frame)

    def __init__(self, spec: Spec | None = None, settings: QSettings | None = None, start_engine: bool = True,
                 restore: bool = True, features: tuple = (), lazy: bool = False):
        """``features``: callables ``f(window)`` that add docks, toolbars and menus; they run
        before the saved layout is restored so their docks come back where the user left them.
        ``lazy``: build the views after the first frame (see the module docstring)."""
        super().__init__()
        self._steps: deque[Callable[[], None]] = deque()  # the building left to do, in order
        self._built = False
        self._in_step = False
        self._layout_restored = False
        self._restored_state: QByteArray | None = None  # the saved dock layout, once applied
        self._build_timer = QTimer(self)  # a child: it dies with the window, and so does the building
        self._build_timer.setSingleShot(True)
        self._build_timer.setInterval(0)
        self._build_timer.timeout.connect(self._build_next)
        # "first_frame" and "built": (time.perf_counter(), time.process_time()) when they happened (bench/startup.py)
        self.startup_times: dict[str, tuple[float, float]] = {}
        self.setObjectName("main_window")
        self.settings = settings or app_settings()
        self.document = Document(spec if spec is not None else startup_spec(), self)
        self.report: L.Report | None = None
        self.data_info = None
        self.data_error = ""
        self.menus: dict = {}
        self.actions: dict[str, QAction] = {}
        self.docks: dict[str, QDockWidget] = {}
        self._info_cache: dict[str, tuple] = {}
        self._preview_key: str | None = None
        self._paste_count = 0
        self._start_engine = start_engine
        self._shown_once = False
        self._restore_size: QSize | None = None
        self._first_frame_done = False
        self.persist_layout = restore  # False: neither read nor write the saved window layout

        pyside_fix.collect_garbage_in_gui_thread()  # never in the reader threads: see widgets/pyside_fix.py
        self.engine = EngineLoader(self)
        self.tasks = TaskRunner(self)
        self.canvas = NetworkCanvas()
        self.setCentralWidget(self.canvas)
        self.palette = LayerPalette()
        self.inspector = Inspector()
        self.data_panel = DataPanel(include_images=False)  # image kinds arrive with the engine
        self.add_dock(self.palette, "Layers", Qt.LeftDockWidgetArea, "palette_dock")
        self.add_dock(self.inspector, "Inspector", Qt.RightDockWidgetArea, "inspector_dock")
        self.add_dock(self.data_panel, "Dataset", Qt.RightDockWidgetArea, "data_dock")
        self.views = Views()
        self._raised_for: str | None = None  # the kind of data whose docks were last brought forward
        self._plan_hidden: set[str] = set()  # the docks the dock plan hid (and may show again)
        self.plan_providers: list[Callable[[], set[str]]] = []  # features' docks with nothing to show
        self._fronts: dict[str, None] = {}  # the docks raise_docks brought to the front, in order
        self._build_actions()
        self.canvas.context_actions = [self.actions[n] if n else None for n in
                                       ("cut", "copy", "paste", "delete", None, "select_all", "auto_layout", "fit")]
        self._build_menus()
        self._build_status_bar()
        self._connect()
        self.setAcceptDrops(True)
        self.resize(1400, 900)
        self._arrange_docks()
        if not lazy:
            self.finish_building()  # the views exist before the features, which then build theirs at once
        self._on_document_spec_changed()
        self._on_document_path_changed(self.document.path or "")
        self.features = [make(self) for make in features]
        for name in list(self._fronts):  # a feature's tabified dock came to its group's front: undo that
            self.docks[name].raise_()
        if restore:
            self.restore_layout()
        self._layout_restored = restore

    # ---- building after the first frame -----------------------------------------------------
    def later(self, step: Callable[[], None]) -> None:
        """Run ``step`` once the window is built this far: at once when it is, else in its turn
        after the first frame (features build their views and presenters so)."""
        if self._built:
            step()
        else:
            self._steps.append(lambda: self._run_feature_step(step))

    def _run_feature_step(self, step: Callable[[], None]) -> None:
        step()
        if self._restored_state is not None:
            # the feature placed, showed and hid docks by the data's plan: the user's saved layout wins, as when
            # everything was built before it was restored - at once, before the window paints again
            self.restoreState(self._restored_state, LAYOUT_VERSION)

    def is_built(self) -> bool:
        """True once every view and presenter exists."""
        return self._built

    def finish_building(self) -> None:
        """Build whatever is still missing, now (Train pressed in the first moments, tests)."""
        if self._in_step:
            return  # called from a step: the rest follows in order
        while self._steps:
            self._run_step(self._steps.popleft())
        if not self._built:
            self._built = True
            self._build_timer.stop()
            if self._restored_state is None:  # features' late docks came to their groups' fronts: undo that
                for name in list(self._fronts):
                    self.docks[name].raise_()
            self.startup_times["built"] = (time.perf_counter(), time.process_time())
            self.built.emit()
            if self._first_frame_done and self._start_engine:
                self.engine.start()

    def _run_step(self, step: Callable[[], None]) -> None:
        self._in_step = True
        try:
            step()
        finally:
            self._in_step = False

    def _build_next(self) -> None:
        """One step per event-loop turn: the window answers the user in between."""
        if self._steps:
            self._run_step(self._steps.popleft())
        if self._steps:
            self._build_timer.start()
        else:
            self.finish_building()

    def _build_view(self, attr: str) -> None:
        module, cls = VIEW_CLASSES[attr]
        view = getattr(importlib.import_module(f"widgets.views.{module}"), cls)()
        setattr(self.views, attr, view)
        view.setMinimumSize(150, 120)  # docks may be squeezed on a small screen; views scale down
        self.set_dock_widget(self.views.docks[f"{attr}_dock"], view)

    def set_dock_widget(self, dock: QDockWidget, widget: QWidget) -> None:
        """Put ``widget`` in ``dock`` in place of its placeholder."""
        old = dock.widget()
        dock.setWidget(widget)
        if old is not None and old is not widget:
            old.deleteLater()

    # ---- building ------------------------------------------------------------------------
    def add_dock(self, widget: QWidget | None, title: str, area=Qt.RightDockWidgetArea, name: str | None = None,
                 tabify_with: str | None = None) -> QDockWidget:
        """Wrap ``widget`` in a dock (objectName ``name`` keeps its place across restarts); ``None``:
        a placeholder until ``set_dock_widget`` puts the real one in."""
        name = name or title.lower().replace(" ", "_") + "_dock"
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget if widget is not None else _placeholder())  # None: set_dock_widget() follows
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable | QDockWidget.DockWidgetClosable)
        # a dock made after the saved layout was restored (built after the first frame) goes where it was saved
        if not (self._layout_restored and self.restoreDockWidget(dock)):
            self.addDockWidget(area, dock)
            if tabify_with in self.docks:
                self.tabifyDockWidget(self.docks[tabify_with], dock)
        self.docks[name] = dock
        if "view" in self.menus:
            self.menus["panels"].addAction(dock.toggleViewAction())
        return dock

    def _arrange_docks(self) -> None:
        """Default layout: palette over dataset on the left, inspector over the decision boundary
        on the right, curves and the insight tabs under the canvas (a saved layout overrides it)."""
        bottom, right, left = Qt.BottomDockWidgetArea, Qt.RightDockWidgetArea, Qt.LeftDockWidgetArea
        v, d = self.views, self.docks
        self.setCorner(Qt.BottomLeftCorner, left)
        self.setCorner(Qt.BottomRightCorner, right)
        self.removeDockWidget(d["data_dock"])
        self.addDockWidget(left, d["data_dock"])
        d["data_dock"].show()
        self.splitDockWidget(d["palette_dock"], d["data_dock"], Qt.Vertical)
        self.add_dock(None, "Decision boundary", right, "boundary_dock")
        self.splitDockWidget(d["inspector_dock"], d["boundary_dock"], Qt.Vertical)
        self.add_dock(None, "Neuron", right, "neuron_dock", tabify_with="boundary_dock")
        self.add_dock(None, "Curves", bottom, "curves_dock")
        self.add_dock(None, "Evaluation", bottom, "evaluation_dock")
        self.splitDockWidget(d["curves_dock"], d["evaluation_dock"], Qt.Horizontal)
        self.add_dock(None, "Filters", bottom, "filters_dock", tabify_with="evaluation_dock")
        self.add_dock(None, "Feature maps", bottom, "feature_maps_dock", tabify_with="filters_dock")
        self.add_dock(None, "Saliency", bottom, "saliency_dock", tabify_with="feature_maps_dock")
        self.add_dock(None, "Gradients", bottom, "gradients_dock", tabify_with="saliency_dock")
        self.add_dock(None, "Distributions", bottom, "distributions_dock", tabify_with="gradients_dock")
        self.add_dock(None, "ROC / PR", bottom, "roc_dock", tabify_with="distributions_dock")
        self.add_dock(None, "Embedding", bottom, "embedding_dock", tabify_with="roc_dock")
        self.add_dock(None, "Loss landscape", bottom, "landscape_dock", tabify_with="embedding_dock")
        prev = "saliency_dock"
        for attr, title, name in SEQUENCE_VIEWS:  # the fit beside the boundary, the rest with the insight tabs
            if attr == "regression":
                self.add_dock(None, title, right, name, tabify_with="boundary_dock")
            else:
                self.add_dock(None, title, bottom, name, tabify_with=prev)
                prev = name
        for attr in VIEW_CLASSES:
            v.docks[f"{attr}_dock"] = d[f"{attr}_dock"]
            self._steps.append(lambda attr=attr: self._build_view(attr))
        self._steps.appendleft(_import_views)  # pyqtgraph itself: the largest step
        d["boundary_dock"].raise_()
        d["evaluation_dock"].raise_()
        self.resizeDocks([d["palette_dock"], d["inspector_dock"]], [240, 400], Qt.Horizontal)
        self.resizeDocks([d["palette_dock"], d["data_dock"]], [360, 490], Qt.Vertical)  # room for the preview
        self.resizeDocks([d["inspector_dock"], d["boundary_dock"]], [400, 450], Qt.Vertical)
        self.resizeDocks([d["curves_dock"]], [300], Qt.Vertical)
        self.resizeDocks([d["curves_dock"], d["evaluation_dock"]], [380, 380], Qt.Horizontal)

    def dock_plan(self, info) -> set[str]:
        """The docks with nothing to show for this data and design: the plane's pictures need points,
        the CNN views images, Attention a SelfAttention layer, Generated text a text corpus; features
        add theirs (``plan_providers``: the autoencoder and GAN views)."""
        kind = data_kind(info)
        hidden = set(HIDDEN_FOR.get(kind, ()))
        if kind == "sequence":
            if info.task == "regression":
                hidden |= {"evaluation_dock", "roc_dock"}  # a sequence regression has no classes
            if not any(lay.kind == "SelfAttention" for lay in self.document.spec.layers):
                hidden.add("attention_dock")
            if getattr(info, "kind", "") != "chars":
                hidden.add("text_dock")
        for provider in self.plan_providers:
            hidden |= provider()
        return hidden

    def show_views_for(self, info) -> None:
        """Hide the docks with nothing to show (dock_plan) and show again those it hid before; once per
        kind of data, bring the docks that mean most for it to the front. Docks the user closed stay closed."""
        self._apply_plan(self.dock_plan(info))
        kind = data_kind(info)
        if kind is None or kind == self._raised_for:
            return
        self._raised_for = kind
        if kind in ("sequence", "regression"):
            raise_views_for(self, info)
        elif kind == "image":
            self.raise_docks("feature_maps_dock", "evaluation_dock")
        else:
            self.raise_docks("boundary_dock", "evaluation_dock")

    def replan_docks(self) -> None:
        """The plan again, and the front docks of the data's kind (a feature's own docks went away)."""
        self._raised_for = None
        self.show_views_for(self.data_info)

    def _apply_plan(self, hidden: set[str]) -> None:
        hidden = {n for n in hidden if n in self.docks}
        for name in self._plan_hidden - hidden:  # hidden by an earlier plan, not by the user: back
            self.docks[name].setVisible(True)
        # only what the plan itself hides comes back later: a dock the user had closed stays closed
        self._plan_hidden = (self._plan_hidden & hidden) | {n for n in hidden if not self.docks[n].isHidden()}
        for name in hidden:
            self.docks[name].setVisible(False)

    def raise_docks(self, *names: str) -> None:
        """Bring these docks to the front of their tab groups (and keep them there once the features are added)."""
        for name in names:
            self.docks[name].raise_()
            self._fronts.pop(name, None)
            self._fronts[name] = None

    def add_toolbar(self, title: str, name: str | None = None) -> QToolBar:
        bar = self.addToolBar(title)
        bar.setObjectName(name or title.lower().replace(" ", "_") + "_toolbar")
        bar.setMovable(True)
        return bar

    def _action(self, name: str, text: str, slot, shortcut=None, tip: str = "", canvas_only: bool = False) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            keys = shortcut if isinstance(shortcut, list) else [shortcut]
            act.setShortcuts([QKeySequence(k) for k in keys])
        if canvas_only:
            # the canvas handles these keys itself; the menu only shows and offers them
            act.setShortcutContext(Qt.WidgetShortcut)
        if tip:
            act.setStatusTip(tip)
        act.triggered.connect(lambda _checked=False: slot())
        self.actions[name] = act
        return act

    def _build_actions(self) -> None:
        a = self._action
        a("new", "&New", self.new_design, QKeySequence.New, "Start a new design")
        a("open", "&Open...", self.open_design, QKeySequence.Open, "Open a design file")
        a("save", "&Save", self.save, QKeySequence.Save, "Save the design")
        a("save_as", "Save &As...", self.save_as, QKeySequence.SaveAs, "Save the design under a new name")
        a("quit", "&Quit", self.close, QKeySequence.Quit)
        undo = self.document.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcuts([QKeySequence.Undo])
        redo = self.document.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.actions.update(undo=undo, redo=redo)
        a("cut", "Cu&t", self.cut_selection, QKeySequence.Cut, canvas_only=True)
        a("copy", "&Copy", self.copy_selection, QKeySequence.Copy, canvas_only=True)
        a("paste", "&Paste", self.paste, QKeySequence.Paste, canvas_only=True)
        a("delete", "&Delete", self.delete_selection, [QKeySequence.Delete, "Backspace"], canvas_only=True)
        a("select_all", "Select &All", self.select_all, QKeySequence.SelectAll, canvas_only=True)
        a("zoom_in", "Zoom &In", self.canvas.zoom_in, [QKeySequence.ZoomIn, "Ctrl+="])
        a("zoom_out", "Zoom &Out", self.canvas.zoom_out, QKeySequence.ZoomOut)
        a("fit", "&Fit to View", self.canvas.fit_to_view, "F", canvas_only=True)
        a("auto_layout", "Auto-&Layout", self.auto_layout, "Ctrl+L", "Arrange the layers top to bottom")
        a("about", "&About Neural Playground", self._show_about)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = self.menus
        m["file"] = bar.addMenu("&File")
        for name in ("new", "open"):
            m["file"].addAction(self.actions[name])
        m["recent"] = m["file"].addMenu("Open &Recent")
        m["recent"].aboutToShow.connect(self._fill_recent_menu)
        m["examples"] = m["file"].addMenu("&Examples")
        m["examples"].aboutToShow.connect(self._fill_examples_menu)
        self._fill_examples_menu()
        self._fill_recent_menu()
        m["file"].addSeparator()
        for name in ("save", "save_as"):
            m["file"].addAction(self.actions[name])
        m["file"].addSeparator()
        m["file"].addAction(self.actions["quit"])
        m["edit"] = bar.addMenu("&Edit")
        for name in ("undo", "redo", None, "cut", "copy", "paste", "delete", None, "select_all"):
            m["edit"].addSeparator() if name is None else m["edit"].addAction(self.actions[name])
        m["view"] = bar.addMenu("&View")
        for name in ("zoom_in", "zoom_out", "fit", None, "auto_layout", None):
            m["view"].addSeparator() if name is None else m["view"].addAction(self.actions[name])
        m["panels"] = m["view"].addMenu("&Panels")
        for dock in self.docks.values():
            m["panels"].addAction(dock.toggleViewAction())
        m["help"] = bar.addMenu("&Help")
        m["help"].addAction(self.actions["about"])

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.totals_label = QLabel()
        self.engine_label = QLabel("Loading engine...")
        self.engine_label.setToolTip("torch loads in the background after the window shows")
        for lab in (self.totals_label, self.engine_label):
            lab.setContentsMargins(8, 0, 8, 0)
            bar.addPermanentWidget(lab)

    def _connect(self) -> None:
        doc, cv = self.document, self.canvas
        doc.spec_changed.connect(self._on_document_spec_changed)
        doc.modified_changed.connect(self.setWindowModified)
        doc.path_changed.connect(self._on_document_path_changed)
        cv.node_dropped.connect(self._on_canvas_node_dropped)
        cv.nodes_moved.connect(doc.move_layers)
        cv.edge_requested.connect(self._on_canvas_edge_requested)
        cv.edges_delete_requested.connect(doc.disconnect)
        cv.delete_requested.connect(doc.delete_layers)
        cv.selection_changed.connect(self.inspector.show_layers)
        cv.status_message.connect(self.status)
        cv.file_dropped.connect(self.open_path)
        cv.copy_requested.connect(self.copy_selection)
        cv.paste_requested.connect(self.paste)
        cv.node_activated.connect(self._on_canvas_node_activated)
        self.palette.kind_activated.connect(self._on_palette_kind_activated)
        self.inspector.param_changed.connect(self._on_inspector_param_changed)
        self.inspector.layer_renamed.connect(self._on_inspector_layer_renamed)
        self.inspector.training_changed.connect(doc.set_training)
        self.inspector.name_changed.connect(doc.set_name)
        self.data_panel.dataset_changed.connect(doc.set_dataset)
        self.engine.engine_ready.connect(self._on_engine_ready)
        self.engine.engine_failed.connect(self._on_engine_failed)
        self.tasks.task_done.connect(self._on_tasks_task_done)

    # ---- layout persistence --------------------------------------------------------------
    def restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray) and not state.isEmpty() and self.restoreState(state, LAYOUT_VERSION):
            self._restored_state = state
        size = self.settings.value("window/size")
        if isinstance(size, QSize) and size.isValid() and not self.isMaximized():
            # restoring the docks' sizes grows the window until it is laid out: size it once shown
            self._restore_size = size

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.settings.setValue("window/size", self.size())
        self.settings.sync()

    # ---- Qt events -----------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            if self._restore_size is not None:
                QTimer.singleShot(0, lambda: self.resize(self._restore_size))
            # after the first frame (paintEvent), or in any case soon: the preview, the views, the engine
            QTimer.singleShot(250, self._after_first_show)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        if not self._first_frame_done:  # the next turn of the event loop comes after this frame is on screen
            QTimer.singleShot(0, self._after_first_show)

    def _after_first_show(self) -> None:
        if self._first_frame_done:
            return
        self._first_frame_done = True
        self.startup_times["first_frame"] = (time.perf_counter(), time.process_time())
        self._update_preview()
        if not self._built:
            self._build_timer.start()  # the views and presenters, a step per turn; then the engine
        elif self._start_engine:
            self.engine.start()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.maybe_save():
            self._build_timer.stop()  # a window closed in its first moments builds no more views
            if self.persist_layout:
                self.save_layout()
            for feature in self.features:  # e.g. stop and join the training thread
                shutdown = getattr(feature, "shutdown", None)
                if shutdown is not None:
                    shutdown()
            event.accept()
        else:
            event.ignore()

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._dropped_json(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        path = self._dropped_json(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.open_path(path)

    @staticmethod
    def _dropped_json(mime: QMimeData) -> str | None:
        urls = mime.urls() if mime.hasUrls() else []
        ends = (".json", ".nprun", ".nplesson")  # a design, a run file or a lesson bundle (FileOps.open_path
        # hands the last two to app.runfiles and app.lessons)
        return next((u.toLocalFile() for u in urls if u.isLocalFile() and u.toLocalFile().lower().endswith(ends)), None)

    # ---- refresh after every edit ----------------------------------------------------------
    def status(self, message: str, msecs: int = 6000) -> None:
        self.statusBar().showMessage(message, msecs)

    def problem_count(self) -> int:
        return sum(p.severity == "error" for p in self.report.problems) if self.report else 0

    def _describe(self, ds) -> tuple:
        """(DataInfo or None, error message), cached per dataset settings."""
        key = _dataset_key(ds)
        if key not in self._info_cache:
            try:
                self._info_cache[key] = (datasets.describe(ds), "")
            except ValueError as exc:
                self._info_cache[key] = (None, str(exc))
        return self._info_cache[key]

    def _on_document_spec_changed(self) -> None:
        spec = self.document.spec
        old_error = self.data_error
        self.data_info, self.data_error = self._describe(spec.dataset)
        self.report = L.infer(spec, self.data_info)
        self.show_views_for(self.data_info)
        self.canvas.set_design(spec, self.report)
        self.inspector.set_design(spec, self.report)
        self.data_panel.set_dataset(spec.dataset.kind, spec.dataset.params)
        self._update_preview()
        if self.data_error and self.data_error != old_error:
            self.status(f"Dataset: {self.data_error}")
        self._update_title()
        n, total, errs = len(spec.layers), self.report.total_params, self.problem_count()
        text = f"{n} layer{'s' * (n != 1)} \u00b7 {total:,} parameters"
        self.totals_label.setText(text + (f" \u00b7 {errs} problem{'s' * (errs != 1)}" if errs else ""))

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.document.display_name()}[*] - {APP_NAME}")
        self.setWindowModified(self.document.is_modified())

    def _on_document_path_changed(self, path: str) -> None:
        self.setWindowFilePath(path)
        self._update_title()

    def _update_preview(self) -> None:
        if not self._first_frame_done:
            return  # made once the window is on screen
        ds = self.document.spec.dataset
        key = _dataset_key(ds)
        if key == self._preview_key:
            return
        self._preview_key = key
        if self.data_error:
            self.tasks.cancel("preview")
            self.data_panel.show_message(self.data_error)
        elif ds.kind in datasets.TWO_D:  # generated with numpy in a few ms: no thread needed
            self.tasks.cancel("preview")
            try:
                self._show_preview(preview(ds))
            except ValueError as exc:
                self.data_panel.show_message(str(exc))
        elif ds.kind in SLOW_DATASETS and not self.engine.ready:
            self.tasks.cancel("preview")
            self.data_panel.show_message("The preview appears when the engine has loaded...")
            self._preview_key = None  # retried by _on_engine_ready
        else:
            self.tasks.submit("preview", lambda ds=ds: preview(ds))

    def _show_preview(self, result: dict) -> None:
        if result["kind"] == "images":
            self.data_panel.show_images(result["images"], result["y"], result["class_names"], result["summary"])
        else:
            self.data_panel.show_points(result["x"], result["y"], result["class_names"], result["summary"])

    def _on_tasks_task_done(self, key: str, result, error: str) -> None:
        if key == "preview":
            if error:
                self.data_panel.show_message(error)
            elif result is not None:
                self._show_preview(result)

    def _on_engine_ready(self, _text: str = "") -> None:
        """The data loaders (sklearn, image readers) are in; torch loads in the trainer process."""
        if self.engine_label.text() == "Loading engine...":  # training, if present, says more
            self.engine_label.setText("Editor ready")
        self.data_panel.refresh_kinds(include_images=True)
        self._info_cache.clear()  # image kinds can now be described
        self._preview_key = None
        self._on_document_spec_changed()

    def _on_engine_failed(self, message: str) -> None:
        self.engine_label.setText("Engine failed to load")
        self.engine_label.setToolTip(message)
        self.show_error("Engine not available", f"torch could not be loaded, so training is unavailable:\n\n{message}\n\n"
                        "You can still edit and save designs. Reinstall with `make clean run`.")

    def is_busy(self) -> bool:
        """True while the window is being built, the engine is loading or a preview is being computed
        (screenshots wait)."""
        engine_loading = self._start_engine and not (self.engine.ready or self.engine.failed)
        return not self._first_frame_done or not self._built or engine_loading or self.tasks.busy()

    # ---- intents -> edits --------------------------------------------------------------------
    def _on_canvas_node_dropped(self, kind: str, params: dict, x: float, y: float) -> None:
        lid = self.document.add_layer(kind, params, (x, y))
        self.canvas.select_ids([lid])

    def _on_canvas_edge_requested(self, src: str, dst: str) -> None:
        why = self.document.connect(src, dst)
        if why:
            self.status(why)

    def _on_palette_kind_activated(self, kind: str, params: dict) -> None:
        sel = self.canvas.selected_ids()
        lid = self.document.insert_after(sel[0] if len(sel) == 1 else None, kind, params, self.canvas.scene_center())
        self.canvas.select_ids([lid])
        if len(sel) != 1:
            self.status(f"Added {kind} - select a layer first to wire the next one in after it")

    def _on_inspector_param_changed(self, lid: str, name: str, value) -> None:
        why = self.document.set_param(lid, name, value)
        if why:
            self.status(why)

    def _on_inspector_layer_renamed(self, old: str, new: str) -> None:
        why = self.document.rename_layer(old, new)
        if why:
            self.status(why)
        else:
            self.canvas.select_ids([new])

    def _on_canvas_node_activated(self, lid: str) -> None:
        self.inspector.tabs.setCurrentIndex(0)
        self.docks["inspector_dock"].raise_()

    def delete_selection(self) -> None:
        ids, edges = self.canvas.selected_ids(), self.canvas.selected_edges()
        if ids:
            self.document.delete_layers(ids)
        rest = [e for e in edges if e[0] not in ids and e[1] not in ids]
        if rest:
            self.document.disconnect(rest)

    def select_all(self) -> None:
        self.canvas.select_ids([lay.id for lay in self.document.spec.layers])

    def copy_selection(self) -> bool:
        ids = self.canvas.selected_ids()
        if not ids:
            self.status("Nothing to copy - select layers first")
            return False
        # plain JSON text: readable anywhere, and a custom QMimeData left on the clipboard
        # crashes PySide6 at interpreter exit
        QApplication.clipboard().setText(json.dumps(copy_payload(self.document.spec, ids)))
        self._paste_count = 0
        self.status(f"Copied {len(ids)} layer{'s' * (len(ids) != 1)}")
        return True

    def cut_selection(self) -> None:
        if self.copy_selection():
            self.document.delete_layers(self.canvas.selected_ids())

    def paste(self) -> list[str]:
        text = QApplication.clipboard().text()
        try:
            payload = parse_payload(json.loads(text)) if text.lstrip().startswith("{") else None
        except (ValueError, RecursionError):
            payload = None
        if not payload:
            self.status("Nothing to paste - copy layers first")
            return []
        self._paste_count += 1
        ids = self.document.paste(payload, offset=40.0 * self._paste_count)
        self.canvas.select_ids(ids)
        return ids

    def auto_layout(self) -> None:
        vp = self.canvas.viewport()  # a long chain wraps into columns that fit this view legibly
        self.document.move_layers(auto_layout(self.document.spec, (vp.width(), vp.height())), text="Auto-layout")
        self.canvas.fit_to_view()

    def _show_about(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}",
                          f"<b>{APP_NAME}</b><p>Build neural networks by dragging layers, train real torch models "
                          "and watch them learn.</p>")
