"""Training controls (toolbar) and the training read-out for the status bar.

Shortcuts follow IDE habits and never clash with typing in a text field:
F5 Train / Resume, F6 Pause, F10 Step (one batch), Shift+F5 Stop, Ctrl+R Reset.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QProgressBar, QStyle, QToolBar, QWidget

from widgets import pyside_fix

pyside_fix.install()  # PySide6 6.12 on Python 3.11 loses references to True/None on every emit

STATES = ("idle", "running", "paused", "finished", "stopped", "diverged", "error")
STATE_LABELS = {"idle": "Idle", "running": "Training", "paused": "Paused", "finished": "Finished",
                "stopped": "Stopped", "diverged": "Diverged", "error": "Error"}
STATE_COLORS = {"idle": "#80868b", "running": "#1e8e3e", "paused": "#f29900", "finished": "#1a73e8",
                "stopped": "#5f6368", "diverged": "#d93025", "error": "#d93025"}
DEVICE_LABELS = {"auto": "Auto (best available)", "cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple MPS"}
# The speed choices, like TensorFlow Playground's pace: (label, epochs/s cap or 0 for full speed, slow motion)
PACES = (("Full speed", 0.0, False), ("100 epochs/s", 100.0, False), ("30 epochs/s", 30.0, False),
         ("10 epochs/s", 10.0, False), ("5 epochs/s", 5.0, False), ("1 epoch/s", 1.0, False),
         ("Slow motion (a step per frame)", 0.0, True))

SHORTCUTS = {"train": "F5", "pause": "F6", "step": "F10", "stop": "Shift+F5", "reset": "Ctrl+R"}

# Which actions a state allows: (train, pause, step, stop, reset).
_ENABLED = {
    "idle": (True, False, True, False, True),      # Step from idle starts a paused run and takes one batch
    "running": (False, True, False, True, False),
    "paused": (True, False, True, True, True),     # Train resumes
    "finished": (True, False, False, False, True),
    "stopped": (True, False, False, False, True),
    "diverged": (True, False, False, False, True),
    "error": (True, False, False, False, True),
}


class TrainingToolbar(QToolBar):
    """Train / Pause / Step / Stop / Reset and the device choice; ``set_state`` keeps them consistent."""

    train_requested = Signal()   # Train, or Resume when paused
    pause_requested = Signal()
    step_requested = Signal()    # one batch
    stop_requested = Signal()
    reset_requested = Signal()   # fresh weights
    device_changed = Signal(str)  # "auto" | "cpu" | "cuda" | "mps" | ...
    pace_changed = Signal(float, bool)  # epochs/s cap (0: full speed), slow motion

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Training", parent)
        self.setObjectName("training_toolbar")
        self.setIconSize(QSize(18, 18))
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        sp = QStyle.StandardPixmap
        self.train_action = self._action("Train", sp.SP_MediaPlay, "train", "Train the network", self.train_requested)
        self.pause_action = self._action("Pause", sp.SP_MediaPause, "pause", "Pause training (keeps the weights)",
                                         self.pause_requested)
        self.step_action = self._action("Step", sp.SP_MediaSkipForward, "step", "Train on one batch, then pause",
                                        self.step_requested)
        self.stop_action = self._action("Stop", sp.SP_MediaStop, "stop", "Stop training (keeps the weights)",
                                        self.stop_requested)
        self.reset_action = self._action("Reset", sp.SP_BrowserReload, "reset", "New random weights; clears the curves",
                                         self.reset_requested)
        self.addSeparator()
        self.device_label = QLabel(" Device ", self)
        self.device_combo = QComboBox(self)
        self.device_combo.setToolTip("Where the network trains; the choice applies to the next run")
        self.device_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.addWidget(self.device_label)
        self.addWidget(self.device_combo)
        self.device_combo.currentIndexChanged.connect(self._on_device_combo_changed)
        self.speed_label = QLabel(" Speed ", self)
        self.speed_combo = QComboBox(self)
        self.speed_combo.setObjectName("speed_combo")
        self.speed_combo.setToolTip("How fast training may go, so a fast run can be watched; applies at once")
        for label, cap, slow in PACES:
            self.speed_combo.addItem(label, (cap, slow))
        self.addWidget(self.speed_label)
        self.addWidget(self.speed_combo)
        self.speed_combo.currentIndexChanged.connect(self._on_speed_combo_changed)
        self._state = "idle"
        self.set_devices(["auto", "cpu"], "auto")
        self.set_state("idle")

    def _action(self, text: str, icon, key: str, what: str, signal) -> QAction:
        act = QAction(self.style().standardIcon(icon), text, self)
        act.setObjectName(f"{key}_action")
        act.setShortcut(QKeySequence(SHORTCUTS[key]))
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.setToolTip(f"{what} ({SHORTCUTS[key]})")
        act.triggered.connect(lambda _checked=False: signal.emit())
        self.addAction(act)
        return act

    # ---- public API ---------------------------------------------------------------------------
    def actions_by_name(self) -> dict[str, QAction]:
        return {"train": self.train_action, "pause": self.pause_action, "step": self.step_action,
                "stop": self.stop_action, "reset": self.reset_action}

    def set_state(self, state: str) -> None:
        """Enable the actions that make sense in ``state`` (idle, running, paused, finished, stopped, diverged, error)."""
        if state not in _ENABLED:
            raise ValueError(f"unknown training state {state!r}; expected one of {', '.join(STATES)}")
        self._state = state
        for act, on in zip(self.actions_by_name().values(), _ENABLED[state], strict=True):
            act.setEnabled(on)
        resume = state == "paused"
        self.train_action.setText("Resume" if resume else "Train")
        self.train_action.setToolTip(f"{'Resume training' if resume else 'Train the network'} ({SHORTCUTS['train']})")
        # the device is fixed for the life of a run
        busy = state in ("running", "paused")
        self.device_combo.setEnabled(not busy and self.device_combo.count() > 1)
        self.device_combo.setToolTip("Stop training to change the device" if busy
                                     else "Where the network trains; the choice applies to the next run")

    def state(self) -> str:
        return self._state

    def set_devices(self, devices: list[str], current: str | None = None) -> None:
        """Offer ``devices`` (e.g. ["auto", "cpu", "cuda"]) and select ``current`` without emitting device_changed."""
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        for d in devices:
            self.device_combo.addItem(DEVICE_LABELS.get(d, d), d)
        idx = self.device_combo.findData(current) if current is not None else 0
        self.device_combo.setCurrentIndex(max(idx, 0))
        self.device_combo.blockSignals(False)
        self.device_combo.setEnabled(self._state not in ("running", "paused") and self.device_combo.count() > 1)

    def device(self) -> str | None:
        return self.device_combo.currentData()

    def pace(self) -> tuple[float, bool]:
        """(epochs/s cap, 0 for full speed; slow motion) as chosen."""
        cap, slow = self.speed_combo.currentData()
        return float(cap), bool(slow)

    def set_pace(self, epochs_per_s: float, slow_motion: bool = False) -> None:
        """Choose the entry for this pace (it must be one of PACES); emits pace_changed when it changes."""
        for i, (_label, cap, slow) in enumerate(PACES):
            if cap == epochs_per_s and slow == slow_motion:
                self.speed_combo.setCurrentIndex(i)
                return
        raise ValueError(f"no speed entry for {epochs_per_s} epochs/s (slow motion {slow_motion})")

    # ---- handlers -----------------------------------------------------------------------------
    def _on_device_combo_changed(self, index: int) -> None:
        if index >= 0:
            self.device_changed.emit(self.device_combo.itemData(index))

    def _on_speed_combo_changed(self, index: int) -> None:
        if index >= 0:
            self.pace_changed.emit(*self.pace())


def format_elapsed(seconds: float) -> str:
    """mm:ss, or h:mm:ss from an hour on."""
    if not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_rate(samples_per_s: float) -> str:
    """12 samples/s, 3.4k samples/s, 1.2M samples/s."""
    if not math.isfinite(samples_per_s) or samples_per_s <= 0:
        return "– samples/s"
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if samples_per_s >= div:
            return f"{samples_per_s / div:.1f}{suffix} samples/s"
    return f"{samples_per_s:.0f} samples/s"


class TrainingStatus(QWidget):
    """Status-bar read-out: state, device, epoch e/E with a progress bar, step, samples/s, elapsed."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.state_label = QLabel(self)
        self.device_label = QLabel(self)
        self.device_label.setToolTip("The device training runs on")
        self.epoch_label = QLabel(self)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(False)
        self.progress.setFixedSize(90, 8)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.step_label = QLabel(self)
        self.rate_label = QLabel(self)
        self.rate_label.setToolTip("Training samples per second (forward and backward)")
        self.elapsed_label = QLabel(self)
        self.elapsed_label.setToolTip("Training time (pauses not counted)")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        lay.setSpacing(14)
        epoch_box = QHBoxLayout()  # the progress bar sits close to the epoch count it belongs to
        epoch_box.setSpacing(6)
        epoch_box.addWidget(self.epoch_label)
        epoch_box.addWidget(self.progress)
        for w in (self.state_label, self.device_label, epoch_box, self.step_label, self.rate_label, self.elapsed_label):
            lay.addLayout(w) if w is epoch_box else lay.addWidget(w)
        lay.addStretch(1)
        self.set_device("CPU")
        self.update_snapshot(0, 0, 0, 0.0, 0.0, "idle")

    def set_device(self, name: str) -> None:
        """The device name as shown, e.g. 'CPU' or 'CUDA NVIDIA GeForce RTX 4090'."""
        self.device_label.setText(f"<span style='color:#5f6368'>⚙</span> {name}")
        self.device_label.setToolTip(f"Training runs on {name}")

    def update_snapshot(self, epoch: int, epochs: int, step: int, samples_per_s: float, elapsed: float,
                        state: str) -> None:
        """Show one snapshot's progress; cheap enough to call for every snapshot."""
        color = STATE_COLORS.get(state, "#80868b")
        self.state_label.setText(f"<span style='color:{color}'>●</span> {STATE_LABELS.get(state, str(state))}")
        epochs = max(int(epochs), 0)
        self.epoch_label.setText(f"epoch {int(epoch)}/{epochs}" if epochs else f"epoch {int(epoch)}")
        self.progress.setRange(0, max(epochs, 1))
        self.progress.setValue(min(max(int(epoch), 0), max(epochs, 1)))
        self.step_label.setText(f"step {int(step):,}")
        self.rate_label.setText(format_rate(float(samples_per_s)))
        self.elapsed_label.setText(format_elapsed(float(elapsed)))

    def text(self) -> str:
        """Everything shown, as plain text (for tests and the accessible description)."""
        from PySide6.QtGui import QTextDocument

        parts = []
        for lab in (self.state_label, self.device_label, self.epoch_label, self.step_label, self.rate_label,
                    self.elapsed_label):
            doc = QTextDocument()
            doc.setHtml(lab.text())
            parts.append(doc.toPlainText())
        return "  ".join(parts)
