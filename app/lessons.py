"""Lessons in the main window: the Lessons dock, Help > Lessons, steps that edit the design
(undoable, like any edit) or raise a view, and the verdict after each run.

A run that ends is matched to one of the open lesson's variants by its design; its history (the
arrays every snapshot carries) is kept under that variant, and the lesson's claims are judged by
the same functions the headless check uses (engine.lessons.judge, no torch).

File > Import Lesson Bundle... (or a ``.nplesson`` dropped on the window) installs a bundle's
lessons into ``<data folder>/lessons/`` (engine.lesson_bundle) and lists them at once; File >
Export Lesson Bundle... writes the open lesson as one, for a teacher to pass on.
"""
from __future__ import annotations

import os

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog

from app.runfiles import data_folder
from engine import lesson_bundle as LB
from engine import lessons as LS
from engine import protocol as P
from widgets.controls.lessons_panel import LessonsPanel

BUNDLE_FILTER = f"Lesson bundles (*{LB.EXTENSION});;All files (*)"


class LessonsController(QObject):
    """Adds the Lessons dock (``lessons_dock``) and Help > Lessons; needs the TrainingController."""

    def __init__(self, window):
        super().__init__(window)
        self.w = window
        window.lessons = self
        self.user_folder = os.path.join(data_folder(), "lessons")  # installed bundles' lessons
        self.lesson: LS.Lesson | None = None
        self.runs: dict[str, dict] = {}
        self._judged_run: int | None = None
        self.last_message = ""
        self.panel = LessonsPanel()
        self.reload()
        # a column of its own (no tab group): a lesson is read next to the views it talks about
        self.dock = window.add_dock(self.panel, "Lessons", Qt.RightDockWidgetArea, "lessons_dock")
        self.dock.hide()  # opened from Help > Lessons; the editor keeps its room until then
        act = QAction("&Lessons", window)
        act.setStatusTip("Short lessons on what the courses teach, each checked on a real run")
        act.triggered.connect(lambda _c=False: self.show())
        window.actions["lessons"] = act
        window.menus["help"].insertAction(window.actions["about"], act)
        self._build_file_menu()
        self.panel.lesson_chosen.connect(self.open)
        self.panel.step_clicked.connect(self.do_step)
        window.training.model.events.state.connect(self._on_model_state)

    def reload(self) -> None:
        """Read the shipped and the installed lessons again and list them (an unreadable installed
        file is left out, not fatal)."""
        self.lessons = {les.name: les for les in LS.all_lessons(user_folder=self.user_folder)}
        groups = [(g, [(les.name, les.title) for les in self.lessons.values() if les.group == g]) for g in LS.GROUPS]
        self.panel.set_lessons([(g, items) for g, items in groups if items])

    def user_lessons(self) -> set[str]:
        """Names of the listed lessons that were installed from bundles (not shipped)."""
        folder = os.path.abspath(self.user_folder)
        return {n for n, les in self.lessons.items() if os.path.dirname(os.path.abspath(les.source)) == folder}

    def _build_file_menu(self) -> None:
        w = self.w
        imp = QAction("Import &Lesson Bundle...", w)
        imp.setStatusTip(f"Install the lessons of a {LB.EXTENSION} bundle a teacher made; they join the Lessons dock")
        imp.triggered.connect(lambda _c=False: self.import_bundle())
        exp = QAction("E&xport Lesson Bundle...", w)
        exp.setStatusTip("Write the open lesson as a bundle others can import")
        exp.triggered.connect(lambda _c=False: self.export_bundle())
        w.actions["import_lessons"], w.actions["export_lessons"] = imp, exp
        menu = w.menus.get("file")
        if menu is None:
            return
        acts = menu.actions()
        quit_act = w.actions.get("quit")
        at = acts.index(quit_act) if quit_act in acts else len(acts)
        anchor = acts[at - 1] if at and acts[at - 1].isSeparator() else (acts[at] if at < len(acts) else None)
        for act in (imp, exp):  # in a group of their own, just above Quit
            menu.insertAction(anchor, act) if anchor is not None else menu.addAction(act)
        menu.insertSeparator(imp)

    # ---- prompts (tests replace these) ------------------------------------------------------------
    def ask_bundle_open_path(self) -> str:
        path, _ = QFileDialog.getOpenFileName(self.w, "Import lesson bundle", self.w._last_dir(), BUNDLE_FILTER)
        return path

    def ask_bundle_save_path(self, name: str) -> str:
        start = os.path.join(self.w._last_dir(), name + LB.EXTENSION)
        path, _ = QFileDialog.getSaveFileName(self.w, "Export lesson bundle", start, BUNDLE_FILTER)
        if path and not path.lower().endswith(LB.EXTENSION):
            path += LB.EXTENSION
        return path

    # ---- bundles ----------------------------------------------------------------------------------
    def import_bundle(self, path: str | None = None) -> bool:
        """Install a bundle; the Lessons dock lists its lessons with the first selected. A bad bundle
        shows why and installs nothing."""
        if path is None:
            path = self.ask_bundle_open_path()
            if not path:
                return False
        path = os.fspath(path)
        try:
            installed = LB.install_bundle(path, self.user_folder)
        except (LB.BundleError, OSError) as exc:
            why = str(exc) if isinstance(exc, LB.BundleError) else f"{self.user_folder} could not be written: {exc}"
            self.last_message = why
            self.w.show_error("Cannot import lesson bundle",
                              f"{os.path.basename(path)} was not installed - your lessons are unchanged.\n\n{why}")
            return False
        self.reload()
        self.show()
        self.panel.select_lesson(installed[0].name)
        titles = ", ".join(les.title for les in installed)
        self.last_message = f"Installed {len(installed)} lesson{'s' * (len(installed) != 1)}: {titles}"
        self.w.status(self.last_message + " - pick one in the Lessons dock", 0)
        return True

    def export_bundle(self, path: str | None = None) -> bool:
        """Write the open lesson as a bundle."""
        les = self.lesson
        if les is None:
            self.w.show_error("Export lesson bundle", "Open a lesson first (Help > Lessons): the open lesson is "
                                                      "the one exported.")
            return False
        if les.name not in self.user_lessons():
            self.w.show_error("Export lesson bundle", f"'{les.title}' comes with Neural Playground: everyone has it "
                                                      "already. Export a lesson you imported, or put your own lesson "
                                                      "files in a zip named *.nplesson.")
            return False
        if path is None:
            path = self.ask_bundle_save_path(les.name)
            if not path:
                return False
        try:
            size = LB.export_bundle(path, [les])
        except (OSError, ValueError) as exc:
            self.w.show_error("Cannot export lesson bundle", f"{path} could not be written: {exc}")
            return False
        self.w.status(f"Exported the lesson '{les.title}' to {os.path.basename(path)} ({size:,} bytes)")
        return True

    def show(self) -> None:
        self.dock.show()
        self.dock.raise_()

    def open(self, name: str) -> bool:
        """Open a lesson: its design becomes an untitled copy (unsaved work is asked about first)."""
        les = self.lessons[name]
        if not self.w.maybe_save():
            return False
        first = next((s.variant for s in les.steps if s.variant), "")
        spec = les.variant_spec(first) if first else les.design.copy()
        spec.name, spec.notes = les.title, les.text
        self.w.document.reset(spec, None)
        self.lesson, self.runs = les, {}
        self.panel.show_lesson(les.title, les.text, [(s.text, _button(s)) for s in les.steps])
        self.show()
        self.w.status(f"Lesson: {les.title}")
        return True

    def do_step(self, index: int) -> None:
        """A step's button: apply its variant as one undoable edit, then raise the view it names."""
        les = self.lesson
        step = les.steps[index]
        if step.variant:
            doc = self.w.document
            after = les.variant_spec(step.variant)
            after.name, after.notes = doc.spec.name, doc.spec.notes
            old_pos = {lay.id: lay.pos for lay in doc.spec.layers}
            for lay in after.layers:  # keep where the user put the layers
                lay.pos = old_pos.get(lay.id, lay.pos)
            if not doc.apply(after, f"Lesson: {step.button or step.variant}"):
                self.w.status("The design already is this step's setting")
        if step.preset and getattr(self.w, "kernel_lab", None) is not None:
            self.w.kernel_lab.show(step.preset)
        if step.dock:
            self.raise_dock(step.dock)

    def raise_dock(self, name: str) -> bool:
        dock = self.w.docks.get(name)
        if dock is None:
            self.w.status(f"This version has no '{name.replace('_dock', '').replace('_', ' ')}' view yet - "
                          "the curves show the effect meanwhile")
            return False
        dock.show()
        dock.raise_()
        return True

    def _on_model_state(self, state: str) -> None:
        if self.lesson is None or state not in P.ENDED:
            return
        run = self.w.training.model.run
        if run is None or run.snapshot is None or self._judged_run == run.run_id:
            return
        self._judged_run = run.run_id
        self.judge_run(run.spec, run.snapshot.history, run.state)

    def judge_run(self, spec, history: dict, state: str) -> list[LS.Verdict]:
        les = self.lesson
        variant = les.matching_variant(spec)
        if variant is None:
            self.panel.show_verdicts("This run's design is none of the lesson's steps - use a step's button to compare.",
                                     [])
            return []
        self.runs[variant] = LS.history_of(history, state, spec)
        verdicts = LS.judge(les, self.runs, with_engine=False)
        label = les.variants[variant].get("label", variant)
        self.panel.show_verdicts(f"After the run '{label}':", [(v.ok, v.text) for v in verdicts])
        return verdicts


def _button(step: LS.Step) -> str:
    """The step's button text: its own, or "Show <view>" for a step that only points at a view."""
    if step.button:
        return step.button
    if step.dock or step.preset:
        return "Show " + (step.dock or "kernel_lab_dock").removesuffix("_dock").replace("_", " ")
    return ""
