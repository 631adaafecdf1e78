"""A progress row for on-demand analyses: a start button, a progress bar and Cancel."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget


class JobRow(QWidget):
    """[start] [progress....] [Cancel] message; ``start_requested`` / ``cancel_requested``."""

    start_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, text: str, tip: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.start_button = QPushButton(text)
        self.start_button.setToolTip(tip)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(12)
        self.cancel_button = QPushButton("Cancel")
        self.message = QLabel("")
        self.message.setStyleSheet("color: #5f6368")
        for w in (self.start_button, self.progress, self.cancel_button):
            lay.addWidget(w)
        lay.addWidget(self.message, 1)
        self.start_button.clicked.connect(lambda: self.start_requested.emit())
        self.cancel_button.clicked.connect(lambda: self.cancel_requested.emit())
        self.set_running(False)

    def set_running(self, running: bool, message: str = "") -> None:
        self.running = running
        self.start_button.setEnabled(not running)
        self.cancel_button.setVisible(running)
        self.progress.setVisible(running)
        if running:
            self.progress.setValue(0)
        self.message.setText(message)

    def set_progress(self, fraction: float, message: str = "") -> None:
        self.progress.setValue(int(round(1000 * min(max(fraction, 0.0), 1.0))))
        if message:
            self.message.setText(message)
