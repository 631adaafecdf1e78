"""The Lessons panel: lessons grouped in a tree, the open lesson's text, its steps (some with a
button) and the verdict of its claims. Plain data in, signals out; app.lessons drives it."""
from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

OK, FAIL, WAIT = "#2e7d32", "#b00020", "#666666"


class LessonsPanel(QWidget):
    """Signals: ``lesson_chosen(name)``, ``step_clicked(index)``."""

    lesson_chosen = Signal(str)
    step_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setObjectName("lessons_tree")
        self.tree.setHeaderHidden(True)
        self.tree.itemActivated.connect(self._on_tree_item)
        self.tree.itemClicked.connect(self._on_tree_item)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(False)
        self.steps_box = QWidget()
        self.steps = QVBoxLayout(self.steps_box)
        self.steps.setContentsMargins(0, 0, 0, 0)
        self.verdict = QLabel()
        self.verdict.setObjectName("lesson_verdict")
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.buttons: list[QPushButton] = []
        detail = QWidget()
        box = QVBoxLayout(detail)
        box.setContentsMargins(4, 0, 0, 0)
        box.addWidget(self.title)
        self.text.setMinimumHeight(90)
        box.addWidget(self.text, 2)
        box.addWidget(self.steps_box)
        box.addWidget(self.verdict)
        box.addStretch(0)
        split = QSplitter(Qt.Vertical)  # the dock is tall and narrow: the list above, the lesson below
        split.addWidget(self.tree)
        split.addWidget(detail)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 5)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(split)

    def set_lessons(self, groups: list[tuple[str, list[tuple[str, str]]]]) -> None:
        """[(group, [(name, title)])] in display order."""
        self.tree.clear()
        for group, items in groups:
            top = QTreeWidgetItem([group.capitalize()])
            top.setFlags(Qt.ItemIsEnabled)
            for name, title in items:
                it = QTreeWidgetItem([title])
                it.setData(0, Qt.UserRole, name)
                top.addChild(it)
            self.tree.addTopLevelItem(top)
            top.setExpanded(True)

    def select_lesson(self, name: str) -> bool:
        """Make the lesson ``name`` the tree's current item (scrolled to); False if it is not listed."""
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                it = top.child(j)
                if it.data(0, Qt.UserRole) == name:
                    self.tree.setCurrentItem(it)
                    self.tree.scrollToItem(it)
                    return True
        return False

    def selected_lesson(self) -> str:
        it = self.tree.currentItem()
        return (it.data(0, Qt.UserRole) or "") if it is not None else ""

    def _on_tree_item(self, item: QTreeWidgetItem, _col: int = 0) -> None:
        name = item.data(0, Qt.UserRole)
        if name:
            self.lesson_chosen.emit(name)

    def show_lesson(self, title: str, text: str, steps: list[tuple[str, str]]) -> None:
        """``steps``: (text, button label or "")."""
        self.title.setText(f"<h3>{html.escape(title)}</h3>")
        self.text.setPlainText(text)
        while self.steps.count():
            w = self.steps.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.buttons = []
        for i, (t, button) in enumerate(steps):
            row = QWidget()
            lay = QVBoxLayout(row)
            lay.setContentsMargins(0, 0, 0, 4)
            lab = QLabel(f"{i + 1}. {html.escape(t)}")
            lab.setWordWrap(True)
            lay.addWidget(lab)
            if button:
                b = QPushButton(button)
                b.clicked.connect(lambda _c=False, i=i: self.step_clicked.emit(i))
                line = QHBoxLayout()
                line.addStretch(1)
                line.addWidget(b)
                lay.addLayout(line)
                self.buttons.append(b)
            self.steps.addWidget(row)
        self.verdict.setText("<i>Follow the steps and train: the lesson checks its claims when a run ends.</i>")

    def show_verdicts(self, heading: str, verdicts: list[tuple[bool | None, str]]) -> None:
        lines = [f"<b>{html.escape(heading)}</b>"]
        for ok, text in verdicts:
            colour, mark = (WAIT, "&#8230;") if ok is None else ((OK, "&#10004;") if ok else (FAIL, "&#10008;"))
            lines.append(f"<span style='color:{colour}'>{mark} {html.escape(text)}</span>")
        self.verdict.setText("<br>".join(lines))
