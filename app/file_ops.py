"""File menu behaviour for the main window: New, Open, Save, Save As, recent files, examples.

A mixin so MainWindow stays readable. The prompts (ask_*) and show_error are methods the
tests replace; everything else is plain logic over ``self.document``.
"""
from __future__ import annotations

import glob
import os

from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.document import read_design
from engine import spec as S
from engine.spec import EdgeSpec, LayerSpec, Spec, SpecError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES_DIR = os.path.join(ROOT, "assets", "examples")
MAX_RECENT = 8
MAX_LISTED_PROBLEMS = 25


def builtin_xor() -> Spec:
    """The XOR starter used when assets/examples/xor.json is missing."""
    chain = [("input1", "Input", {}), ("dense1", "Dense", {"units": 8}), ("activation1", "Activation", {"function": "tanh"}),
             ("dense2", "Dense", {"units": 8}), ("activation2", "Activation", {"function": "tanh"}), ("output1", "Output", {})]
    spec = Spec(name="xor", dataset=S.DatasetSpec("xor", {}))
    spec.layers = [LayerSpec(lid, kind, params, (0.0, 132.0 * i)) for i, (lid, kind, params) in enumerate(chain)]
    spec.edges = [EdgeSpec(a[0], b[0]) for a, b in zip(chain, chain[1:], strict=False)]
    spec.training.lr = 0.03
    return spec


def new_spec() -> Spec:
    """File > New: an Input wired to an Output on XOR, ready for layers in between."""
    spec = Spec(name="untitled")
    spec.layers = [LayerSpec("input1", "Input", {}, (0.0, 0.0)), LayerSpec("output1", "Output", {}, (0.0, 264.0))]
    spec.edges = [EdgeSpec("input1", "output1")]
    return spec


def example_paths() -> list[str]:
    return sorted(glob.glob(os.path.join(EXAMPLES_DIR, "*.json")))


def startup_spec() -> Spec:
    """The XOR example if it is readable, else the built-in copy."""
    try:
        return read_design(os.path.join(EXAMPLES_DIR, "xor.json"))
    except SpecError:
        return builtin_xor()


def problems_text(problems: list) -> str:
    lines = [f"\u2022 {p}" for p in problems[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        lines.append(f"... and {len(problems) - MAX_LISTED_PROBLEMS} more")
    return "\n".join(lines)


class FileOpsMixin:
    """Needs ``self.document``, ``self.settings``, ``self.status(msg)`` on a QMainWindow."""

    # ---- prompts (tests monkeypatch these) -----------------------------------------
    def ask_save_changes(self) -> str:
        """'save', 'discard' or 'cancel' for unsaved changes."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Warning)
        box.setWindowTitle("Unsaved changes")
        box.setText(f'Save the changes to "{self.document.display_name()}"?')
        box.setInformativeText("Your changes will be lost if you don't save them.")
        box.setStandardButtons(QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel)
        box.setDefaultButton(QMessageBox.Save)
        box.setEscapeButton(QMessageBox.Cancel)
        box.exec()
        answer = box.standardButton(box.clickedButton()) if box.clickedButton() else QMessageBox.Cancel
        return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(answer, "cancel")

    def ask_open_path(self) -> str:
        path, _ = QFileDialog.getOpenFileName(self, "Open design", self._last_dir(), "Designs (*.json);;All files (*)")
        return path

    def ask_save_path(self) -> str:
        start = self.document.path or os.path.join(self._last_dir(), f"{self.document.display_name()}.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save design as", start, "Designs (*.json)")
        if path and not path.lower().endswith(".json"):
            path += ".json"
        return path

    def show_error(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)

    # ---- commands ------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """True if it is fine to drop the current design (saved, discarded or unmodified)."""
        if not self.document.is_modified():
            return True
        answer = self.ask_save_changes()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def new_design(self) -> bool:
        if not self.maybe_save():
            return False
        self.document.reset(new_spec())
        self.status("New design: add layers between the Input and the Output")
        return True

    def open_design(self) -> bool:
        path = self.ask_open_path()
        return bool(path) and self.open_path(path)

    def open_path(self, path: str, as_copy: bool = False) -> bool:
        """Open a design file (or a run file, when run files are a feature of this window); a file
        that cannot be used leaves the open design untouched."""
        if path.lower().endswith(".nprun") and hasattr(self, "runfiles"):
            return self.runfiles.open_run(path)
        if path.lower().endswith(".nplesson") and hasattr(self, "lessons"):
            return self.lessons.import_bundle(path)
        try:
            spec = read_design(path)
        except SpecError as exc:
            self.show_error("Cannot open design",
                            f"{os.path.basename(path)} was not opened - the current design is unchanged.\n\n"
                            + problems_text(exc.problems))
            return False
        if not self.maybe_save():
            return False
        self.document.reset(spec, None if as_copy else path)
        if not as_copy:
            self.add_recent(path)
            self.settings.setValue("files/last_dir", os.path.dirname(os.path.abspath(path)))
        n = self.problem_count()
        where = "example" if as_copy else "design"
        marked = f" - {n} problem{'s' * (n != 1)} marked on the layers" if n else ""
        self.status(f"Opened {where} {os.path.basename(path)}{marked}")
        return True

    def open_example(self, path: str) -> bool:
        """An example opens as an untitled copy so the file in assets/ is never overwritten."""
        return self.open_path(path, as_copy=True)

    def save(self) -> bool:
        if not self.document.path:
            return self.save_as()
        return self._save_to(self.document.path)

    def save_as(self) -> bool:
        path = self.ask_save_path()
        return bool(path) and self._save_to(path)

    def _save_to(self, path: str) -> bool:
        try:
            self.document.save(path)
        except OSError as exc:
            self.show_error("Cannot save design", f"{path} could not be written: {exc.strerror or exc}\n\n"
                            "The design is still open; choose another folder with Save As.")
            return False
        self.add_recent(path)
        self.settings.setValue("files/last_dir", os.path.dirname(os.path.abspath(path)))
        self.status(f"Saved {os.path.basename(path)}")
        return True

    # ---- recent files --------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.settings.value("files/recent", [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [v for v in (value or []) if isinstance(v, str)][:MAX_RECENT]

    def add_recent(self, path: str) -> None:
        path = os.path.abspath(path)
        files = [path] + [p for p in self.recent_files() if p != path]
        self.settings.setValue("files/recent", files[:MAX_RECENT])

    def clear_recent(self) -> None:
        self.settings.setValue("files/recent", [])

    def _last_dir(self) -> str:
        d = self.settings.value("files/last_dir", "")
        return d if isinstance(d, str) and os.path.isdir(d) else os.path.expanduser("~")

    def _fill_recent_menu(self) -> None:
        menu = self.menus["recent"]
        menu.clear()
        files = self.recent_files()
        for path in files:
            act = menu.addAction(os.path.basename(path))
            act.setToolTip(path)
            act.setStatusTip(path)
            act.setEnabled(os.path.isfile(path))
            act.triggered.connect(lambda _c=False, p=path: self.open_path(p))
        if files:
            menu.addSeparator()
        clear = menu.addAction("Clear recent files")
        clear.setEnabled(bool(files))
        clear.triggered.connect(self.clear_recent)

    def _fill_examples_menu(self) -> None:
        menu = self.menus["examples"]
        menu.clear()
        paths = example_paths()
        for path in paths:
            act = menu.addAction(os.path.splitext(os.path.basename(path))[0])
            act.triggered.connect(lambda _c=False, p=path: self.open_example(p))
        if not paths:
            menu.addAction("(no examples found)").setEnabled(False)
