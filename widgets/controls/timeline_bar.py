"""The training timeline under the curves: a slider over the epochs that have a checkpoint, a label
("Showing epoch 12 of 60"), "Back to now" and "Fork from here".

It only renders what it is told (the checkpointed epochs, the epoch shown) and emits intent; the
app asks the worker for the views at that epoch. A drag is debounced: the epoch is emitted once the
slider has rested for DEBOUNCE_MS, so only the latest position of a quick drag is computed.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QSizePolicy, QSlider, QWidget

DEBOUNCE_MS = 120
WIDE_PX = 560  # narrower than this: two rows
_MUTED = "#80868b"


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 100 * 1024 else f"{n / 1024:.0f} kB"


class TimelineBar(QWidget):
    """One row: slider, label, Back to now, Fork from here. Disabled while training runs."""

    epoch_chosen = Signal(int)  # show the views at this checkpointed epoch
    live_requested = Signal()  # back to the current model
    fork_requested = Signal(int)  # start a new run from this epoch's weights

    def __init__(self, budget_mb: int = 200, parent: QWidget | None = None):
        super().__init__(parent)
        self.budget_mb = budget_mb
        self._epochs = np.zeros(0, np.int64)
        self._now = 0  # the run's completed epochs
        self._showing: int | None = None
        self._interactive = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._on_timer_timeout)

        self.title = QLabel("Timeline", self)
        self.title.setStyleSheet(f"color:{_MUTED}")
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 0)
        self.slider.setPageStep(1)
        self.slider.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.label = QLabel(self)
        self.live_button = QPushButton("Back to now", self)
        self.live_button.setToolTip("Show the current model again in every view")
        self.fork_button = QPushButton("Fork from here", self)
        self.fork_button.setToolTip("Start a new run from the weights of the epoch shown, with the design's current "
                                    "settings (learning rate, optimiser...); its epochs are numbered on from there "
                                    "and this run stays in the curves as a faint line")
        for button in (self.live_button, self.fork_button):
            button.setStyleSheet("QPushButton { padding: 2px 8px; }")  # the style's 80 px minimum crowds a narrow dock
        # one row in a wide dock; in a narrow one (a laptop's bottom dock) the slider gets a row of its
        # own above the label and buttons, so it stays long enough to aim at an epoch
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(4, 0, 4, 0)
        self._grid.setHorizontalSpacing(6)
        self._grid.setVerticalSpacing(0)
        self._wide: bool | None = None
        self._arrange(True)

        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.live_button.clicked.connect(self._on_live_button_clicked)
        self.fork_button.clicked.connect(self._on_fork_button_clicked)
        self.set_checkpoints(self._epochs)

    # ---- what the app tells it --------------------------------------------------------------
    def set_checkpoints(self, epochs, nbytes: int = 0, budget: int | None = None, now: int | None = None) -> None:
        """The epochs that have a checkpoint (ascending), the memory they use and the run's epoch count."""
        self._epochs = np.asarray(epochs, np.int64).ravel()
        if now is not None:
            self._now = int(now)
        budget_mb = self.budget_mb if budget is None else budget / (1024 * 1024)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(len(self._epochs) - 1, 0))
        if self._showing is None:
            self.slider.setValue(self.slider.maximum())
        self.slider.blockSignals(False)
        self.setToolTip(f"Look back: drag to show every view as the model was at an earlier epoch (pause or finish "
                        f"the run first).\nThe weights of every epoch are kept in up to {budget_mb:.0f} MB; "
                        f"beyond that older epochs thin out evenly.\nNow: {len(self._epochs)} checkpoints, "
                        f"{_megabytes(int(nbytes))}.")
        self._update()

    def set_showing(self, epoch: int | None) -> None:
        """The epoch the views show (None: the current model)."""
        self._showing = None if epoch is None or epoch < 0 else int(epoch)
        if self._showing is not None and len(self._epochs) and not self._timer.isActive():
            idx = int(np.abs(self._epochs - self._showing).argmin())
            self.slider.blockSignals(True)
            self.slider.setValue(idx)
            self.slider.blockSignals(False)
        elif self._showing is None:
            self._timer.stop()
            self.slider.blockSignals(True)
            self.slider.setValue(self.slider.maximum())
            self.slider.blockSignals(False)
        self._update()

    def set_interactive(self, on: bool) -> None:
        """True when the run is paused or has ended: the slider and Fork work then."""
        self._interactive = bool(on)
        self._update()

    def clear(self) -> None:
        self._showing = None
        self._now = 0
        self.set_checkpoints(np.zeros(0, np.int64))

    # ---- reading ------------------------------------------------------------------------------
    @property
    def showing(self) -> int | None:
        return self._showing

    def epochs(self) -> np.ndarray:
        return self._epochs.copy()

    def slider_epoch(self) -> int | None:
        if not len(self._epochs):
            return None
        return int(self._epochs[min(self.slider.value(), len(self._epochs) - 1)])

    def index_of(self, epoch: int) -> int:
        """The slider position of the checkpoint nearest ``epoch``."""
        return int(np.abs(self._epochs - int(epoch)).argmin())

    # ---- internals ----------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._arrange(event.size().width() >= WIDE_PX)

    def _arrange(self, wide: bool) -> None:
        if wide == self._wide:
            return
        self._wide = wide
        if hasattr(self, "_epochs"):
            self._update()
        g = self._grid
        for w in (self.title, self.slider, self.label, self.live_button, self.fork_button):
            g.removeWidget(w)
        for col in range(6):
            g.setColumnStretch(col, 0)
        if wide:
            for col, w in enumerate((self.title, self.slider, self.label, self.live_button, self.fork_button)):
                g.addWidget(w, 0, col)
            g.setColumnStretch(1, 1)
        else:
            g.addWidget(self.title, 0, 0)
            g.addWidget(self.slider, 0, 1, 1, 4)
            g.addWidget(self.label, 1, 0, 1, 2)
            g.addWidget(self.live_button, 1, 3)
            g.addWidget(self.fork_button, 1, 4)
            g.setColumnStretch(2, 1)

    def _update(self) -> None:
        have = len(self._epochs) > 0
        usable = self._interactive and len(self._epochs) > 1
        self.slider.setEnabled(usable)
        self.fork_button.setEnabled(self._interactive and have)
        self.live_button.setEnabled(self._showing is not None)
        if self._showing is not None:
            # a narrow dock has room for the short form beside the buttons
            self.label.setText(f"<b>{'Showing epoch' if self._wide else 'Epoch'} {self._showing} of {self._now}</b>")
        elif not have:
            self.label.setText(f"<span style='color:{_MUTED}'>no checkpoints yet</span>")
        elif not self._interactive:
            self.label.setText(f"<span style='color:{_MUTED}'>epoch {self._now} - pause to look back</span>")
        else:
            self.label.setText(f"<span style='color:{_MUTED}'>now: epoch {self._now}</span>")

    def _on_slider_value_changed(self, _value: int) -> None:
        if self._interactive:
            self._timer.start()  # restarted by every move: emits once the drag rests

    def _on_timer_timeout(self) -> None:
        epoch = self.slider_epoch()
        if epoch is not None and self._interactive:
            self.epoch_chosen.emit(epoch)

    def _on_live_button_clicked(self) -> None:
        self.live_requested.emit()

    def _on_fork_button_clicked(self) -> None:
        epoch = self._showing if self._showing is not None else self.slider_epoch()
        if epoch is not None:
            self.fork_requested.emit(epoch)
