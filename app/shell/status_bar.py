"""The status bar: hover readout, the model label and ONE keyed progress (text, bar, Cancel).

Every long job shows its progress under a key ("inference", "task", "set", "batch"...): the
latest shown key is on screen, the others come back when it ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMainWindow, QProgressBar, QPushButton


@dataclass
class Progress:
    """One job's progress.

    Attributes:
        text: What runs (may be empty: the bar alone).
        fraction: Done, in [0, 1]; negative: busy, no fraction known.
        cancel: Called by the Cancel button (None: no button).
        tip: The label's tooltip.
    """

    text: str
    fraction: float
    cancel: Callable[[], object] | None = None
    tip: str = ""


class StatusBar:
    """The window's status-bar widgets.

    Attributes:
        hover_label: x, y, RGB, class and probability under the cursor.
        model_label: the model and its device.
        label, bar, cancel_button: the progress of the job on screen.
    """

    def __init__(self, window: QMainWindow) -> None:
        """Add the widgets to ``window``'s status bar (the progress hidden)."""
        bar = window.statusBar()
        self.bar_widget = bar
        self.hover_label = QLabel("", window)
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model_label = QLabel("No model", window)
        self.model_label.setContentsMargins(12, 0, 4, 0)
        self.label = QLabel("", window)
        self.bar = QProgressBar(window)
        self.bar.setFixedWidth(160)
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel", window)
        self.cancel_button.clicked.connect(self._cancel)
        bar.addWidget(self.hover_label, 1)
        bar.addPermanentWidget(self.model_label)
        bar.addPermanentWidget(self.label)
        bar.addPermanentWidget(self.bar)
        bar.addPermanentWidget(self.cancel_button)
        self._jobs: dict[str, Progress] = {}
        self._render()

    # ------------------------------------------------------------------ keyed progress
    def show_progress(self, key: str, text: str, fraction: float = -1.0,
                      cancel: Callable[[], object] | None = None, tip: str = "") -> None:
        """Show or update ``key``'s progress; it moves to the front."""
        self._jobs.pop(key, None)
        self._jobs[key] = Progress(text, fraction, cancel, tip)
        self._render()

    def update_fraction(self, key: str, fraction: float) -> None:
        """Update only ``key``'s fraction (nothing if it is not shown)."""
        job = self._jobs.get(key)
        if job is not None:
            job.fraction = fraction
            self._render()

    def hide_progress(self, key: str) -> None:
        """End ``key``'s progress."""
        if self._jobs.pop(key, None) is not None:
            self._render()

    def is_shown(self, key: str) -> bool:
        """Whether ``key`` has a progress (on screen or behind another)."""
        return key in self._jobs

    def text(self, key: str) -> str:
        """``key``'s progress text ('' when none)."""
        job = self._jobs.get(key)
        return job.text if job is not None else ""

    def current(self) -> str | None:
        """The key on screen, or None."""
        return next(reversed(self._jobs), None)

    def _render(self) -> None:
        key = self.current()
        if key is None:
            for w in (self.label, self.bar, self.cancel_button):
                w.hide()
            return
        job = self._jobs[key]
        self.label.setText(job.text)
        self.label.setToolTip(job.tip)
        self.label.setVisible(bool(job.text))
        if job.fraction < 0:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(round(1000 * min(1.0, job.fraction)))
        self.bar.show()
        self.cancel_button.setVisible(job.cancel is not None)

    def _cancel(self) -> None:
        key = self.current()
        job = self._jobs.get(key) if key is not None else None
        if job is not None and job.cancel is not None:
            job.cancel()
