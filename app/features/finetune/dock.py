"""FineTuneDock: options, Train / Cancel, progress with ETA, loss curve, before/after, versions."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.features.finetune.controller import FineTuneController, FineTuneOptions
from app.features.finetune.loss_curve import LossCurve
from app.features.finetune.results_table import BeforeAfterTable

MODE_DEFAULTS = {"fast": (200, 1e-2), "full": (500, 1e-4)}


def eta_text(seconds: float) -> str:
    """'ETA 42 s' or 'ETA 3 min 5 s'."""
    s = max(0, round(seconds))
    return f"ETA {s // 60} min {s % 60} s" if s >= 60 else f"ETA {s} s"


class FineTuneDock(QWidget):
    """The Fine-tune panel; it only calls the controller and shows what it reports."""

    def __init__(self, controller: FineTuneController, parent: QWidget | None = None) -> None:
        """Build the panel."""
        super().__init__(parent)
        self.controller = controller
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        form = QFormLayout()
        self.mode_box = QComboBox(self)
        self.mode_box.addItem("Fast (heads only)", "fast")
        self.mode_box.addItem("Full (every layer)", "full")
        self.mode_box.setItemData(0, "Backbone frozen, its features cached: seconds on a CPU",
                                  Qt.ItemDataRole.ToolTipRole)
        self.mode_box.setItemData(1, "Every layer is trained: for a GPU",
                                  Qt.ItemDataRole.ToolTipRole)
        self.iterations = QSpinBox(self)
        self.iterations.setRange(1, 100_000)
        self.lr = QDoubleSpinBox(self)
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-3)
        self.corrected_only = QCheckBox("Loss only on corrected pixels", self)
        self.corrected_only.setToolTip("The pixels you did not change are ignored by the loss")
        self.mix = QCheckBox("Mix in original data", self)
        self.mix.setToolTip("Also train on open images with reference masks (a quarter of "
                            "them are held out for the before/after table)")
        form.addRow("Mode", self.mode_box)
        form.addRow("Steps", self.iterations)
        form.addRow("Learning rate", self.lr)
        layout.addLayout(form)
        layout.addWidget(self.corrected_only)
        layout.addWidget(self.mix)
        row = QHBoxLayout()
        self.train_button = QPushButton("Train on corrections", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        row.addWidget(self.train_button, 1)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.status = QLabel("Correct some masks, then train on them.", self)
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.setChildrenCollapsible(False)
        self.curve = LossCurve(split)
        self.curve.setMinimumHeight(110)
        self.table = BeforeAfterTable(split)
        self.table.setMinimumHeight(100)
        box = QWidget(split)
        box_layout = QVBoxLayout(box)
        box_layout.setContentsMargins(0, 0, 0, 0)
        self.versions = QTreeWidget(box)
        self.versions.setHeaderLabels(["Model versions (lineage)"])
        self.versions.setToolTip("Double-click a version to use it")
        self.use_button = QPushButton("Use selected version", box)
        box_layout.addWidget(self.versions)
        box_layout.addWidget(self.use_button)
        box.setMinimumHeight(90)
        for widget, stretch in ((self.curve, 3), (self.table, 4), (box, 2)):
            split.setStretchFactor(split.indexOf(widget), stretch)
        layout.addWidget(split, 1)
        self.setMinimumHeight(500)  # scrolls below this (the dock sits in a QScrollArea)
        self._set_mode_defaults("fast")

        self.mode_box.activated.connect(lambda i: self._set_mode_defaults(
            self.mode_box.itemData(i)))
        self.train_button.clicked.connect(self.train)
        self.cancel_button.clicked.connect(controller.cancel)
        self.use_button.clicked.connect(self._use_selected)
        self.versions.itemDoubleClicked.connect(lambda item, _c: self._use(item))
        controller.started.connect(self._on_started)
        controller.phase.connect(self.status.setText)
        controller.progress.connect(self._on_progress)
        controller.versionReady.connect(self._on_version)
        controller.finished.connect(self._on_finished)
        controller.failed.connect(lambda msg: self.status.setText(msg))
        controller.cancelled.connect(
            lambda: self.status.setText("Cancelled: the model is unchanged."))
        controller.busyChanged.connect(self._on_busy)
        controller.versionsChanged.connect(self.refresh_versions)

    def _set_mode_defaults(self, mode: str) -> None:
        its, lr = MODE_DEFAULTS[mode]
        self.mode_box.setCurrentIndex(self.mode_box.findData(mode))
        self.iterations.setValue(its)
        self.lr.setValue(lr)

    def options(self) -> FineTuneOptions:
        """The options as the dock's widgets show them."""
        return FineTuneOptions(
            mode=self.mode_box.currentData(), iterations=self.iterations.value(),
            lr=self.lr.value(), corrected_only=self.corrected_only.isChecked(),
            mix_original=self.mix.isChecked(),
        )

    def train(self) -> bool:
        """Copy the options to the controller and start."""
        self.controller.options = self.options()
        self.curve.ensure_plot()
        return self.controller.start()

    def showEvent(self, event: Any) -> None:
        """Build the plot once the panel is really on screen (not at startup behind a tab)."""
        super().showEvent(event)
        QTimer.singleShot(0, self._on_shown)

    def _on_shown(self) -> None:
        if self.isVisible() and not self.visibleRegion().isEmpty():
            self.curve.ensure_plot()
            if self.controller.current_id() is not None:
                self.controller.warm_up()
            if self.controller.current_id() is not None:  # torch is imported by then
                self.refresh_versions()

    # ------------------------------------------------------------------ controller events
    def _on_started(self, images: int) -> None:
        self.curve.clear()
        self.table.setRowCount(0)
        self.progress.setRange(0, 0)
        self.status.setText(f"Starting on {images} corrected image(s)…")

    def _on_progress(self, p: Any) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setValue(round(1000 * p.iteration / max(1, p.total)))
        self.curve.add(p.iteration, p.loss)
        self.status.setText(f"Step {p.iteration}/{p.total} · loss {p.loss:.4f} · "
                            f"{eta_text(p.eta_seconds)}")

    def _on_version(self, outcome: Any) -> None:
        self.curve.set_history(outcome.loss_history)
        self._show_table(outcome)
        self.status.setText(f"Saved {outcome.checkpoint.name}; loading it and segmenting "
                            "again…")

    def _on_finished(self, outcome: Any) -> None:
        self._show_table(outcome)
        self.progress.setValue(1000)
        held = f", {outcome.held_images} held out" if outcome.held_images else ""
        self.status.setText(f"Done in {outcome.seconds:.1f} s: {outcome.iterations} steps on "
                            f"{outcome.images} corrected image(s){held}. New version "
                            f"{outcome.checkpoint.name}.")

    def _show_table(self, outcome: Any) -> None:
        sets = [("corrected", outcome.before, outcome.after)]
        if outcome.held_after:
            sets.append(("held out", outcome.held_before, outcome.held_after))
        self.table.setToolTip(f"Before → after the fine-tune, on the {outcome.images} corrected "
                              f"image(s) it trained on and on {outcome.held_images} held-out "
                              "image(s) with reference masks")
        self.table.show_scores(sets)

    def _on_busy(self, busy: bool) -> None:
        self.train_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        if not busy and self.progress.maximum() == 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(0)

    # ------------------------------------------------------------------ versions
    def refresh_versions(self) -> None:
        """Show the lineage tree, the current version in bold."""
        self.versions.clear()
        current = self.controller.current_id()
        items: dict[str, QTreeWidgetItem] = {}
        for v in self.controller.versions():
            parent = items.get(v.parent or "")
            item = QTreeWidgetItem([v.label])
            item.setData(0, Qt.ItemDataRole.UserRole, v)
            if v.id == current:
                font = item.font(0)
                font.setBold(True)
                item.setFont(0, font)
                item.setText(0, f"{v.label}  (in use)")
            if parent is not None:
                parent.addChild(item)
            else:
                self.versions.addTopLevelItem(item)
            items[v.id] = item
        self.versions.expandAll()

    def _use_selected(self) -> None:
        item = self.versions.currentItem()
        if item is not None:
            self._use(item)

    def _use(self, item: QTreeWidgetItem) -> None:
        version = item.data(0, Qt.ItemDataRole.UserRole)
        if version is not None:
            self.controller.use(version)
