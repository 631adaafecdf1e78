"""The kernel lab in the main window: presets from engine.kernel_lab, the numbers from the worker.

Every change of the lab's fields sends one KernelLab command over the run channel (the worker
answers even with no run); the answer fills the view. The multiply-add of the highlighted cell
comes from engine.kernel_lab.explain (numpy, no torch) and is shown next to torch's number.
"""
from __future__ import annotations

import itertools

import numpy as np
from PySide6.QtCore import QObject, Qt

from engine import kernel_lab as K
from engine import protocol as P


class KernelLabController(QObject):
    """Adds the Kernel lab dock (``kernel_lab_dock``); needs the TrainingController's session."""

    def __init__(self, window):
        super().__init__(window)
        self.w = window
        window.kernel_lab = self
        self.session = window.training.session
        self.view = None  # built after the first frame (MainWindow.later)
        self.dock = window.add_dock(None, "Kernel lab", Qt.BottomDockWidgetArea, "kernel_lab_dock",
                                    tabify_with="saliency_dock")
        self._ids = itertools.count(1)
        self._pending = 0
        self._args: dict | None = None
        self.last: P.KernelLabResult | None = None
        window.later(self._build_view)

    def _build_view(self) -> None:
        from widgets.views.kernel_lab import KernelLabView  # widgets.views: pyqtgraph

        self.view = KernelLabView()
        self.view.set_presets(list(K.PRESETS))
        self.w.set_dock_widget(self.dock, self.view)
        self.view.changed.connect(self._on_view_changed)
        self.view.preset_chosen.connect(self.load_preset)
        self.view.position_changed.connect(self._on_view_position_changed)
        self.view.sample_requested.connect(self._on_view_sample_requested)
        self.session.kernel_lab_ready.connect(self._on_session_kernel_lab_ready)
        self.load_preset("worked: 6x6 vertical edge")

    def load_preset(self, name: str) -> None:
        if self.view is None:
            self.w.finish_building()
        preset = dict(K.PRESETS[name], name=name)
        self.view.load(preset)  # emits changed -> request

    def show(self, preset: str = "") -> None:
        self.dock.show()
        self.dock.raise_()
        if preset:
            self.load_preset(preset)

    def _on_view_changed(self) -> None:
        try:
            args = self.view.settings()
        except ValueError as exc:
            self.view.show_error(str(exc))
            return
        self._args = args
        preset = self._preset_for_current()
        if preset is not None:  # the grids show rounded numbers (1/9 as 0.1111): compute with the exact ones
            x = np.asarray(preset["input"], dtype=np.float64)
            args["x"] = x[None] if x.ndim == 2 else x
            args["kernel"] = None if preset["kernel"] is None else np.asarray(preset["kernel"], dtype=np.float64)
        self._pending = next(self._ids)
        self.session.start_worker()
        cmd_args = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in args.items()}
        if not self.session.send(P.KernelLab(self._pending, cmd_args)):
            self.view.show_error("the trainer process is not running - it restarts with the next Train")

    def _on_session_kernel_lab_ready(self, ev: P.KernelLabResult) -> None:
        if ev.request_id != self._pending:
            return  # an answer to an edit that was already replaced
        if ev.error:
            self.view.show_error(ev.error)
            return
        self.last = ev
        self.view.show_result(ev.output, ev.formula, ev.layer, ev.params, ev.pad)
        preset = self._preset_for_current()
        if preset is not None:
            matches = K.preset_matches(K.LabResult(ev.output, tuple(ev.output.shape[1:]), ev.pad, ev.formula,
                                                   ev.params, ev.layer), preset)
            self.view.show_expected(preset.get("expected"), preset.get("note", ""), matches)

    def _preset_for_current(self) -> dict | None:
        """The preset the fields still show (an edit after loading it ends the comparison)."""
        name = self.view.preset.currentText()
        p, a = K.PRESETS.get(name), self._args
        if p is None or a is None:
            return None
        keys = ("op", "stride", "size", "ceil_mode")
        if any(a[k] != p[k] for k in keys) or str(a["padding"]) != str(p["padding"]):
            return None
        if not _close(a["x"], p["input"]) or (p["op"] in ("conv", "transposed") and not _close(a["kernel"], p["kernel"])):
            return None
        return dict(p, name=name)

    def _on_view_position_changed(self, row: int, col: int) -> None:
        if self._args is None or self.last is None:
            return
        a = self._args
        try:
            info = K.explain(a["x"], a["kernel"], op=a["op"], stride=a["stride"], pad=self.last.pad, row=row, col=col,
                             size=a["size"])
        except ValueError as exc:
            self.view.show_error(str(exc))
            return
        torch_value = float(self.last.output[0, row, col])
        self.view.show_position(a["x"], a["kernel"], info["cells"], f"{info['text']}   (torch: {torch_value:g})")

    def _on_view_sample_requested(self) -> None:
        training = getattr(self.w, "training", None)
        data = training.model.data if training is not None else None
        if data is None or data.val_images is None or not len(data.val_images):
            self.w.status("Train an image design first (e.g. digits): the lab takes a validation image of its dataset")
            return
        img = np.asarray(data.val_images[0], dtype=np.float64)
        self.view.input_edit.setPlainText("\n\n".join("\n".join(" ".join(f"{v:.2g}" for v in row) for row in ch) for ch in img))


def _close(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.size == b.size and bool(np.allclose(a.ravel(), b.ravel(), atol=1e-3))
