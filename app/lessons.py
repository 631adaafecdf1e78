"""Lessons in the main window: the Lessons dock, Help > Lessons, steps that edit the design
(undoable, like any edit) or raise a view, and the verdict after each run.

A run that ends is matched to one of the open lesson's variants by its design; its history (the
arrays every snapshot carries) is kept under that variant, and the lesson's claims are judged by
the same functions the headless check uses (engine.lessons.judge, no torch).
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction

from engine import lessons as LS
from engine import protocol as P
from widgets.controls.lessons_panel import LessonsPanel


class LessonsController(QObject):
    """Adds the Lessons dock (``lessons_dock``) and Help > Lessons; needs the TrainingController."""

    def __init__(self, window):
        super().__init__(window)
        self.w = window
        window.lessons = self
        self.lessons = {les.name: les for les in LS.all_lessons()}
        self.lesson: LS.Lesson | None = None
        self.runs: dict[str, dict] = {}
        self._judged_run: int | None = None
        self.panel = LessonsPanel()
        groups = [(g, [(les.name, les.title) for les in self.lessons.values() if les.group == g]) for g in LS.GROUPS]
        self.panel.set_lessons([(g, items) for g, items in groups if items])
        # a column of its own (no tab group): a lesson is read next to the views it talks about
        self.dock = window.add_dock(self.panel, "Lessons", Qt.RightDockWidgetArea, "lessons_dock")
        self.dock.hide()  # opened from Help > Lessons; the editor keeps its room until then
        act = QAction("&Lessons", window)
        act.setStatusTip("Short lessons on what the courses teach, each checked on a real run")
        act.triggered.connect(lambda _c=False: self.show())
        window.actions["lessons"] = act
        window.menus["help"].insertAction(window.actions["about"], act)
        self.panel.lesson_chosen.connect(self.open)
        self.panel.step_clicked.connect(self.do_step)
        window.training.model.events.state.connect(self._on_model_state)

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
