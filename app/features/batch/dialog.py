"""The "Segment All Images" dialog: options, Start / Cancel, per-image and overall progress.

Non-modal: the batch runs in the :class:`~app.workers.batch_runner.BatchRunner`'s thread; closing
the dialog leaves it running (the summary goes to the Messages dock).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.workers.batch import BatchRequest, BatchSummary
from app.workers.batch_runner import BatchRunner
from core.variants import VARIANTS

NO_VARIANT = "Tick at least one variant to write."


@dataclass(frozen=True)
class BatchOptions:
    """The dialog's choices."""

    out: str
    variants: tuple[str, ...] = ("8s",)
    overlays: bool = False
    skip_existing: bool = False


def clock(seconds: float) -> str:
    """Seconds as "m:ss" (or "h:mm:ss")."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class BatchDialog(QDialog):
    """Pick the output folder, the variants and extras; follow the batch; cancel it.

    Signals:
        startRequested(): Start was clicked (the owner reads :meth:`options`).
    """

    startRequested = Signal()

    def __init__(self, runner: BatchRunner, parent: QWidget | None = None) -> None:
        """Build the widgets and follow ``runner``'s signals."""
        super().__init__(parent)
        self.setWindowTitle("Segment All Images")
        self.setObjectName("batch-dialog")
        self.setModal(False)
        self.resize(660, 0)
        self.runner = runner
        self._t0 = 0.0
        self.source_label = QLabel(self)
        self.source_label.setWordWrap(True)
        self.out_edit = QLineEdit(self)
        self.out_edit.setMinimumWidth(360)
        self.out_edit.textChanged.connect(self._update_buttons)
        self.out_edit.textChanged.connect(self.out_edit.setToolTip)
        self.browse_button = QPushButton("Browse…", self)
        self.browse_button.clicked.connect(self.browse)
        self.variant_boxes = {v: QCheckBox(f"FCN-{v}", self) for v in VARIANTS}
        for box in self.variant_boxes.values():
            box.toggled.connect(self._update_buttons)
        self.overlay_box = QCheckBox("Also write colored overlays (<stem>_<variant>_overlay.jpg)",
                                     self)
        self.skip_box = QCheckBox("Skip images whose outputs already exist", self)
        self.file_label = QLabel("—", self)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.image_bar = QProgressBar(self)
        self.image_bar.setRange(0, 1000)
        self.image_bar.setFormat("%p%")
        self.overall_bar = QProgressBar(self)
        self.overall_bar.setRange(0, 1000)
        self.overall_bar.setFormat("0 / 0 images")
        self.eta_label = QLabel("—", self)
        self.status_label = QLabel("", self)
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_button = QPushButton("Start", self)
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.startRequested)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop after the current image's tile; every file "
                                      "written so far stays complete")
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close", self)
        self.close_button.setToolTip("Hide this dialog (a running batch goes on)")
        self.close_button.clicked.connect(self.close)
        self._layout()
        runner.started.connect(self._on_started)
        runner.progress.connect(self._on_progress)
        runner.finished.connect(self._on_finished)
        runner.cancelled.connect(self._on_finished)
        runner.failed.connect(self._on_failed)
        runner.busyChanged.connect(self._update_buttons)
        self._update_buttons()

    def _layout(self) -> None:
        folder = QHBoxLayout()
        folder.addWidget(self.out_edit, 1)
        folder.addWidget(self.browse_button)
        variants = QHBoxLayout()
        for box in self.variant_boxes.values():
            variants.addWidget(box)
        variants.addStretch(1)
        output = QGroupBox("Output", self)
        form = QFormLayout(output)
        form.addRow("Folder:", folder)
        form.addRow("Masks:", variants)
        form.addRow("", self.overlay_box)
        form.addRow("", self.skip_box)
        progress = QGroupBox("Progress", self)
        pform = QFormLayout(progress)
        pform.addRow("Image:", self.file_label)
        pform.addRow("", self.image_bar)
        pform.addRow("Overall:", self.overall_bar)
        pform.addRow("Time:", self.eta_label)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.start_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.source_label)
        layout.addWidget(output)
        layout.addWidget(progress)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        layout.addLayout(buttons)

    # ------------------------------------------------------------------ options
    def options(self) -> BatchOptions:
        """The options as chosen now."""
        return BatchOptions(
            out=self.out_edit.text().strip(),
            variants=tuple(v for v, box in self.variant_boxes.items() if box.isChecked()),
            overlays=self.overlay_box.isChecked(),
            skip_existing=self.skip_box.isChecked(),
        )

    def set_options(self, options: BatchOptions) -> None:
        """Show ``options``."""
        self.out_edit.setText(options.out)
        for v, box in self.variant_boxes.items():
            box.setChecked(v in options.variants)
        self.overlay_box.setChecked(options.overlays)
        self.skip_box.setChecked(options.skip_existing)

    def set_source(self, text: str) -> None:
        """The line saying which images and which model a batch would use."""
        self.source_label.setText(text)

    def show_message(self, text: str) -> None:
        """Show a sentence under the progress (why nothing started, the summary, ...)."""
        self.status_label.setText(text)

    def browse(self) -> None:
        """Ask for the output folder."""
        folder = QFileDialog.getExistingDirectory(self, "Output Folder", self.out_edit.text())
        if folder:
            self.out_edit.setText(folder)

    def cancel(self) -> None:
        """Cancel the running batch."""
        if self.runner.cancel():
            self.show_message("Cancelling… (the image being segmented stops at its next tile)")
            self.cancel_button.setEnabled(False)

    # ------------------------------------------------------------------ runner events
    def _update_buttons(self, *_args: object) -> None:
        busy = self.runner.busy
        opts = self.options()
        self.start_button.setEnabled(not busy and bool(opts.out) and bool(opts.variants))
        self.cancel_button.setEnabled(busy)
        for widget in (self.out_edit, self.browse_button, self.overlay_box, self.skip_box,
                       *self.variant_boxes.values()):
            widget.setEnabled(not busy)
        if not busy and not opts.variants:
            self.show_message(NO_VARIANT)
        elif self.status_label.text() == NO_VARIANT:
            self.show_message("")

    def _on_started(self, request: BatchRequest) -> None:
        self._t0 = time.monotonic()
        self.show_message(f"Writing into {request.out}")
        self.file_label.setText("Loading the model…")
        self.image_bar.setValue(0)
        self.overall_bar.setValue(0)
        self.overall_bar.setFormat(f"0 / {len(request.images)} images")
        self.eta_label.setText("—")

    def _on_progress(self, done: int, total: int, name: str, fraction: float) -> None:
        if name:
            self.file_label.setText(name)
        self.image_bar.setValue(round(1000 * fraction))
        units = done + fraction
        self.overall_bar.setValue(round(1000 * units / max(1, total)))
        self.overall_bar.setFormat(f"{done} / {total} images")
        elapsed = time.monotonic() - self._t0
        if units > 0.05 and done < total:
            left = elapsed / units * (total - units)
            self.eta_label.setText(f"{clock(elapsed)} elapsed · about {clock(left)} left")
        else:
            self.eta_label.setText(f"{clock(elapsed)} elapsed")

    def _on_finished(self, summary: BatchSummary) -> None:
        self.overall_bar.setValue(round(1000 * summary.done / max(1, summary.total)))
        self.overall_bar.setFormat(f"{summary.done} / {summary.total} images")
        if not summary.cancelled:
            self.image_bar.setValue(1000)
        self.file_label.setText("—")
        self.eta_label.setText(f"{clock(time.monotonic() - self._t0)} in all")
        self.show_message(summary.text())

    def _on_failed(self, message: str) -> None:
        self.file_label.setText("—")
        self.show_message(message)
