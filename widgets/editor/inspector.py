"""Inspector: edit the selected layer's parameters, or the design's name and training settings.

A view: it shows a Spec and a shape Report and emits what the user asked for
(param_changed, training_changed, name_changed, layer_renamed); it never edits the Spec.
Refreshes set editor values with signals blocked and leave a focused editor alone when
its value already matches, so typing is never interrupted.
"""
from __future__ import annotations

import math
import re
from contextlib import contextmanager

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine import layers as L
from engine import spec as S

INT_LIMIT = 2**31 - 1
ERROR_STYLE = "color: #c62828;"
MUTED_STYLE = "color: #5f6672;"
_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

# (field, label, editor kind, options) - the TrainingSpec fields in the order a user thinks of them
TRAINING_FIELDS = {
    "Optimiser": [
        ("optimizer", "Optimiser", "choice", S.OPTIMIZERS),
        ("lr", "Learning rate", "log", (1e-5, 10.0)),
        ("momentum", "Momentum", "float", (0.0, 0.999, 3, 0.05)),
        ("nesterov", "Nesterov", "bool", None),
        ("weight_decay", "Weight decay", "log0", (1e-5, 1.0)),
    ],
    "Loss and regularisation": [
        ("loss", "Loss", "choice", S.LOSSES),
        ("l1", "L1 penalty", "log0", (1e-5, 1.0)),
        ("l2", "L2 penalty", "log0", (1e-5, 1.0)),
        ("grad_clip", "Gradient clip", "log0", (0.1, 1000.0)),
    ],
    "Loop": [
        ("batch_size", "Batch size", "int", (1, 65536)),
        ("epochs", "Epochs", "int", (1, 100000)),
        ("seed", "Seed", "int", (0, INT_LIMIT)),
        ("device", "Device", "choice", S.DEVICES),
    ],
    "Learning-rate schedule": [
        ("lr_schedule", "Schedule", "choice", S.SCHEDULES),
        ("step_size", "Step size (epochs)", "int", (1, 100000)),
        ("gamma", "Gamma", "float", (0.01, 1.0, 3, 0.05)),
    ],
}
TRAINING_HELP = {
    "optimizer": "The update rule: SGD, or an adaptive method (Adam, AdamW, RMSprop, Adagrad).",
    "lr": "Step size of each update. Arrow keys step 1-2-5 per decade.",
    "momentum": "Used by SGD and RMSprop: how much of the previous step carries over.",
    "nesterov": "SGD only: look-ahead momentum.",
    "weight_decay": "The optimiser's own decay (decoupled for AdamW).",
    "loss": "cross_entropy for classes; bce for two classes; mse, mae (L1) or huber for numbers (regression).",
    "l1": "Penalty on the sum of |weights| added to the loss.",
    "l2": "Penalty on the sum of weights squared added to the loss.",
    "grad_clip": "Largest allowed global gradient norm; 0 turns clipping off.",
    "lr_schedule": "How the learning rate changes over epochs.",
    "step_size": "Epochs between decays for the step schedule.",
    "gamma": "Decay factor for the step and exponential schedules.",
}


@contextmanager
def blocked(*widgets):
    """Set values without emitting: a refresh is not a user edit."""
    old = [w.blockSignals(True) for w in widgets]
    try:
        yield
    finally:
        for w, o in zip(widgets, old, strict=True):
            w.blockSignals(o)


class LogSpinBox(QDoubleSpinBox):
    """A spin box for rates: arrows step 1-2-5 per decade, text drops trailing zeros.

    With ``allow_zero`` the bottom of the range is 0 (off) and the first step up is ``lo``.
    """

    def __init__(self, lo: float, hi: float, allow_zero: bool = False, parent=None):
        super().__init__(parent)
        self._lo = lo
        self.setDecimals(5)
        self.setRange(0.0 if allow_zero else lo, hi)
        self.setKeyboardTracking(True)

    def textFromValue(self, value: float) -> str:
        text = f"{value:.5f}".rstrip("0").rstrip(".")
        return text or "0"

    def stepBy(self, steps: int) -> None:
        v = self.value()
        ladder = [m * 10.0**e for e in range(-6, 3) for m in (1, 2, 5)]
        ladder = [x for x in ladder if self._lo * 0.999 <= x <= self.maximum() * 1.001]
        if self.minimum() == 0:
            ladder = [0.0] + ladder
        for _ in range(abs(steps)):
            if steps > 0:
                bigger = [x for x in ladder if x > v * 1.0001 + 1e-12]
                v = bigger[0] if bigger else v
            else:
                smaller = [x for x in ladder if x < v * 0.9999]
                v = smaller[-1] if smaller else v
        self.setValue(v)


def _float_spin(lo: float, hi: float, decimals: int, step: float) -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setDecimals(decimals)
    w.setSingleStep(step)
    return w


class _WheelGuard(QObject):
    """Scrolling the inspector must not change a value the mouse happens to pass over:
    an unfocused editor hands wheel events to the scroll bar of the page instead."""

    def eventFilter(self, obj, event) -> bool:
        if event.type() != QEvent.Wheel or obj.hasFocus():
            return False
        w = obj.parentWidget()
        while w is not None and not isinstance(w, QScrollArea):
            w = w.parentWidget()
        if w is not None:
            QApplication.sendEvent(w.verticalScrollBar(), event)
        return True


_WHEEL_GUARD: _WheelGuard | None = None


def _no_wheel_steal(w: QWidget) -> QWidget:
    global _WHEEL_GUARD
    if _WHEEL_GUARD is None:
        _WHEEL_GUARD = _WheelGuard()
    w.setFocusPolicy(Qt.StrongFocus)
    w.installEventFilter(_WHEEL_GUARD)
    return w


def editor_for_param(par: L.Param) -> QWidget:
    """A typed editor for one registry parameter, with its range."""
    if par.type == "int":
        w = QSpinBox()
        lo = int(par.min) if par.min is not None else -INT_LIMIT
        hi = int(par.max) if par.max is not None else INT_LIMIT
        w.setRange(max(lo, -INT_LIMIT), min(hi, INT_LIMIT))
    elif par.type == "float":
        lo = par.min if par.min is not None else -1e9
        hi = par.max if par.max is not None else 1e9
        span = hi - lo
        decimals = 3 if span <= 1 else 2
        step = 0.05 if span <= 1 else 10 ** math.floor(math.log10(max(span, 1e-9))) / 10
        w = _float_spin(lo, hi, decimals, step)
    elif par.type == "bool":
        w = QCheckBox()
    else:
        w = QComboBox()
        w.addItems(list(par.choices))
    w.setToolTip(par.help)
    return _no_wheel_steal(w)


def editor_value(w: QWidget):
    if isinstance(w, QCheckBox):
        return w.isChecked()
    if isinstance(w, QComboBox):
        return w.currentText()
    return w.value()


def set_editor_value(w: QWidget, value) -> None:
    """Show ``value`` without emitting; a focused editor already showing it is left alone."""
    if value is None or (w.hasFocus() and editor_value(w) == value):
        return
    with blocked(w):
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            i = w.findText(str(value))
            if i < 0:  # a value from a file the list does not know: show it rather than hide it
                w.addItem(str(value))
                i = w.count() - 1
            w.setCurrentIndex(i)
        elif isinstance(w, QSpinBox):
            if isinstance(value, (int, float)) and math.isfinite(value):
                w.setValue(int(value))
        elif isinstance(value, (int, float)) and math.isfinite(value):
            w.setValue(float(value))


def _changed_signal(w: QWidget):
    if isinstance(w, QCheckBox):
        return w.toggled
    if isinstance(w, QComboBox):
        return w.currentTextChanged
    return w.valueChanged


def _heading(text: str, size: int = 13) -> QLabel:
    lab = QLabel(text)
    f = lab.font()
    f.setPointSize(size)
    f.setBold(True)
    lab.setFont(f)
    return lab


def _wrap(text: str = "", style: str = "") -> QLabel:
    lab = QLabel(text)
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(Qt.TextSelectableByMouse)
    if style:
        lab.setStyleSheet(style)
    return lab


class LayerPage(QWidget):
    """Kind, id, shapes, parameter count, error, typed parameter editors, help and formula."""

    param_changed = Signal(str, str, object)
    layer_renamed = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.layer_id: str | None = None
        self.kind: str | None = None
        self.editors: dict[str, QWidget] = {}
        self._ids: set[str] = set()

        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 10, 10, 10)
        lay.setSpacing(8)
        self.kind_label = _heading("")
        self.group_label = _wrap("", MUTED_STYLE)
        lay.addWidget(self.kind_label)
        lay.addWidget(self.group_label)

        top = QFormLayout()
        top.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.id_edit = QLineEdit()
        self.id_edit.setToolTip("The layer's name in the design, in exported weights and in the code")
        self.id_edit.editingFinished.connect(self._on_id_edit_finished)
        self.shape_label = _wrap()
        self.count_label = _wrap()
        top.addRow("Id", self.id_edit)
        top.addRow("Shape", self.shape_label)
        top.addRow("Parameters", self.count_label)
        lay.addLayout(top)
        self.error_label = _wrap("", ERROR_STYLE)
        lay.addWidget(self.error_label)

        self.params_box = QGroupBox("Settings")
        self.params_form = QFormLayout(self.params_box)
        self.params_form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        lay.addWidget(self.params_box)
        self.message_label = _wrap("", ERROR_STYLE)
        lay.addWidget(self.message_label)

        self.help_label = _wrap()
        self.formula_label = _wrap()
        self.formula_label.setStyleSheet("font-family: monospace; padding: 6px; border-radius: 3px;"
                                         "background: palette(alternate-base);")
        lay.addWidget(self.help_label)
        lay.addWidget(self.formula_label)
        lay.addStretch(1)

    def show_layer(self, spec: S.Spec, report: L.Report | None, layer_id: str) -> None:
        lay = spec.layer(layer_id)
        if lay is None:
            return
        kind = L.REGISTRY.get(lay.kind)
        if (layer_id, lay.kind) != (self.layer_id, self.kind):
            self._build_editors(kind)
            self.message_label.clear()
        self.layer_id, self.kind = layer_id, lay.kind
        self._ids = {x.id for x in spec.layers}
        self.kind_label.setText(lay.kind)
        self.group_label.setText(kind.group if kind else "unknown kind")
        if not self.id_edit.hasFocus():
            self.id_edit.setText(layer_id)
        self._show_report(report, layer_id)
        if kind is not None:
            resolved = kind.defaults()
            resolved.update(lay.params)
            for name, w in self.editors.items():
                set_editor_value(w, resolved.get(name))
            self.help_label.setText(kind.help)
            self.formula_label.setText(self._formula(kind, resolved))
        else:
            self.help_label.setText("")
            self.formula_label.setText("")
        self.params_box.setVisible(bool(self.editors))

    def _show_report(self, report: L.Report | None, lid: str) -> None:
        if report is None:
            self.shape_label.setText("-")
            self.count_label.setText("-")
            self.error_label.setText("")
            return
        ins = report.in_shapes.get(lid)
        out = report.shapes.get(lid)
        if out is None:
            self.shape_label.setText("unknown (see the message below)" if lid in report.node_errors else "unknown")
        elif ins:
            self.shape_label.setText(f"{', '.join(L.fmt_shape(s) for s in ins)}  \u2192  {L.fmt_shape(out)}")
        else:
            self.shape_label.setText(L.fmt_shape(out))
        count = report.counts.get(lid)
        self.count_label.setText(f"{count:,}" if count is not None else "-")
        err = report.node_errors.get(lid)
        warn = next((p.message for p in report.problems if p.where == lid and p.severity == "warning"), None)
        self.error_label.setStyleSheet(ERROR_STYLE if err else "color: #b26a00;")
        self.error_label.setText(err or warn or "")

    @staticmethod
    def _formula(kind: L.LayerKind, params: dict) -> str:
        if kind.kind == "Activation":
            return L.ACTIVATION_FORMULAS.get(params.get("function"), kind.formula)
        return kind.formula

    def _build_editors(self, kind: L.LayerKind | None) -> None:
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self.editors = {}
        for par in kind.params if kind else ():
            w = editor_for_param(par)
            w.setObjectName(f"param_{par.name}")
            _changed_signal(w).connect(lambda _v=None, name=par.name: self._on_editor_changed(name))
            self.editors[par.name] = w
            self.params_form.addRow(par.name.replace("_", " ").capitalize(), w)

    def _on_editor_changed(self, name: str) -> None:
        kind = L.REGISTRY.get(self.kind or "")
        if kind is None or self.layer_id is None:
            return
        value = editor_value(self.editors[name])
        why = kind.param_map[name].check(value)
        if why:
            self.message_label.setText(f"{name} {why}")
            return
        self.message_label.clear()
        self.param_changed.emit(self.layer_id, name, value)

    def _on_id_edit_finished(self) -> None:
        new = self.id_edit.text().strip()
        if self.layer_id is None or new == self.layer_id:
            self.message_label.clear()
            return
        if not _ID_RE.match(new):
            self.message_label.setText(f"'{new}' is not a valid id - use letters, digits and _, not starting with a digit")
        elif new in self._ids:
            self.message_label.setText(f"'{new}' is already used by another layer")
        else:
            self.message_label.clear()
            self.layer_renamed.emit(self.layer_id, new)
            return
        with blocked(self.id_edit):
            self.id_edit.setText(self.layer_id)


class DesignPage(QWidget):
    """The design's name and every training setting."""

    training_changed = Signal(str, object)
    name_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.editors: dict[str, QWidget] = {}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 10, 10, 10)
        lay.setSpacing(8)
        form = QFormLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setToolTip("Shown in the title bar and saved in the file")
        self.name_edit.editingFinished.connect(self._on_name_edit_finished)
        form.addRow("Design name", self.name_edit)
        lay.addLayout(form)
        for title, fields in TRAINING_FIELDS.items():
            box = QGroupBox(title)
            f = QFormLayout(box)
            f.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
            for name, label, kind, opts in fields:
                w = self._make(kind, opts)
                w.setObjectName(f"training_{name}")
                w.setToolTip(TRAINING_HELP.get(name, ""))
                _changed_signal(w).connect(lambda _v=None, n=name: self._on_editor_changed(n))
                self.editors[name] = _no_wheel_steal(w)
                f.addRow(label, w)
            lay.addWidget(box)
        self.summary_label = _wrap("", MUTED_STYLE)
        lay.addWidget(self.summary_label)
        lay.addStretch(1)

    @staticmethod
    def _make(kind: str, opts) -> QWidget:
        if kind == "choice":
            w = QComboBox()
            w.addItems(list(opts))
            return w
        if kind == "bool":
            return QCheckBox()
        if kind == "int":
            w = QSpinBox()
            w.setRange(*opts)
            return w
        if kind in ("log", "log0"):
            return LogSpinBox(opts[0], opts[1], allow_zero=(kind == "log0"))
        return _float_spin(*opts)

    def show_design(self, spec: S.Spec, report: L.Report | None) -> None:
        if not self.name_edit.hasFocus():
            self.name_edit.setText(spec.name)
        t = spec.training
        for name, w in self.editors.items():
            set_editor_value(w, getattr(t, name))
        self._update_enabled(t)
        if report is not None:
            n = len(spec.layers)
            self.summary_label.setText(f"{n} layer{'s' * (n != 1)}, {report.total_params:,} trainable parameters")

    def _update_enabled(self, t: S.TrainingSpec) -> None:
        # settings the chosen optimiser or schedule ignores are greyed out, not hidden
        self.editors["momentum"].setEnabled(t.optimizer in ("sgd", "rmsprop"))
        self.editors["nesterov"].setEnabled(t.optimizer == "sgd" or t.nesterov)
        self.editors["step_size"].setEnabled(t.lr_schedule == "step")
        self.editors["gamma"].setEnabled(t.lr_schedule in ("step", "exponential"))

    def _on_editor_changed(self, name: str) -> None:
        value = editor_value(self.editors[name])
        if name in ("batch_size", "epochs", "seed", "step_size"):
            value = int(value)
        self.training_changed.emit(name, value)

    def _on_name_edit_finished(self) -> None:
        self.name_changed.emit(self.name_edit.text().strip())


def _scrolled(w: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.NoFrame)
    area.setWidget(w)
    return area


class Inspector(QWidget):
    """Tabbed inspector: "Layer" for the selection, "Training" for the design's settings."""

    param_changed = Signal(str, str, object)
    layer_renamed = Signal(str, str)
    training_changed = Signal(str, object)
    name_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.spec: S.Spec | None = None
        self.report: L.Report | None = None
        self.selected: list[str] = []

        self.layer_page = LayerPage()
        self.design_page = DesignPage()
        self.empty_label = _wrap("Select a layer on the canvas to edit it.\n\n"
                                 "Drag layers from the palette, then drag from a layer's output port to "
                                 "another layer to connect them.", MUTED_STYLE)
        self.empty_label.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.empty_label.setContentsMargins(10, 10, 10, 10)
        self.layer_stack = QStackedWidget()
        self.layer_stack.addWidget(self.empty_label)
        self.layer_stack.addWidget(_scrolled(self.layer_page))

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.layer_stack, "Layer")
        self.tabs.addTab(_scrolled(self.design_page), "Training")
        self.tabs.setCurrentIndex(1)  # nothing is selected yet: show the design's settings
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.tabs)

        self.layer_page.param_changed.connect(self.param_changed)
        self.layer_page.layer_renamed.connect(self.layer_renamed)
        self.design_page.training_changed.connect(self.training_changed)
        self.design_page.name_changed.connect(self.name_changed)

    def add_tab(self, widget: QWidget, title: str) -> int:
        """Later features (live training) add their own pages here."""
        return self.tabs.addTab(widget, title)

    def set_design(self, spec: S.Spec, report: L.Report | None) -> None:
        """Show the current design; call after every edit (emits nothing)."""
        self.spec, self.report = spec, report
        self.selected = [i for i in self.selected if spec.layer(i) is not None]
        self._refresh()

    def show_layers(self, ids: list[str]) -> None:
        """The canvas selection changed: show that layer, or the training settings if none."""
        before = list(self.selected)
        self.selected = list(ids)
        self._refresh()
        if self.selected != before:
            self.tabs.setCurrentIndex(0 if self.selected else 1)

    def _refresh(self) -> None:
        if self.spec is None:
            return
        self.design_page.show_design(self.spec, self.report)
        if len(self.selected) == 1 and self.spec.layer(self.selected[0]) is not None:
            self.layer_page.show_layer(self.spec, self.report, self.selected[0])
            self.layer_stack.setCurrentIndex(1)
        else:
            if self.selected:
                n = len(self.selected)
                total = sum((self.report.counts.get(i, 0) if self.report else 0) for i in self.selected)
                self.empty_label.setText(f"{n} layers selected ({total:,} parameters).\n\n"
                                         "Select a single layer to edit its settings.")
            else:
                self.empty_label.setText("Select a layer on the canvas to edit it.\n\n"
                                         "Drag layers from the palette, then drag from a layer's output port to "
                                         "another layer to connect them.")
            self.layer_page.layer_id = None
            self.layer_page.kind = None
            self.layer_stack.setCurrentIndex(0)
