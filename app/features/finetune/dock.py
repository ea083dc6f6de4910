"""FineTuneDock: options, Train / Cancel, progress with ETA, loss curve, before/after, versions.

Train uses every annotated image of the project (rough labels and corrected masks) but
the held-out ones; when the model's classes are not the project's, the dock says so and
offers a new model for them instead of Train.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
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
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.features.finetune.controller import FineTuneController, FineTuneOptions, RunResults
from app.features.finetune.loss_curve import LossCurve
from app.features.finetune.results_table import BeforeAfterTable, ScoreSet
from app.features.finetune.starts import PredictionStarts
from app.state.display import VARIANTS
from core.training.defaults import MODE_DEFAULTS

IDLE_TEXT = (
    "Paint a few strokes of each class (Annotate from Rough labels) "
    "or correct some masks, then train on them."
)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def start_bias_note(starts: PredictionStarts, held_out: bool) -> tuple[str, str]:
    """The caption under the table and the tooltip of its red cells when the corrected
    masks started from a prediction (``("", "")`` when they did not)."""
    if not starts.applies:
        return "", ""
    ordered = [v for v in VARIANTS if v in starts.variants]
    named = [f"FCN-{v}" for v in ordered]
    of = f"of {_plural(starts.images, 'image')}"
    if len(named) == 1 and not starts.unknown:
        which = f"the {named[0]} prediction ({starts.count} {of})"
        figures, scored = f"{named[0]} figures", f"{named[0]} was"
    elif named:
        counts = [f"FCN-{v}: {starts.variants[v]}" for v in ordered]
        counts += [f"unknown: {starts.unknown}"] if starts.unknown else []
        which = f"predictions ({', '.join(counts)} {of})"
        figures, scored = f"{' and '.join(named)} figures", "each of them was"
    else:
        which = f"a prediction ({starts.count} {of}; saved earlier, so which variant is not known)"
        figures, scored = "figures of the variant they started from", "that variant was"
    tip = (
        f"The corrected masks started from {which}: before the fine-tune {scored} "
        "scored largely against itself, so a drop here is expected, not a worse model."
    )
    caption = (
        f"Lower (red) {figures} are expected here: the corrected masks started from "
        f"{which} and are that prediction wherever you did not correct them, so "
        f"before the fine-tune {scored} scored largely against itself. "
    )
    caption += (
        "The held-out rows show the change on images it did not train on."
        if held_out
        else "Images with reference masks left open are held out and show the "
        "change without this bias."
    )
    return caption, tip


def eta_text(seconds: float) -> str:
    """'ETA 42 s' or 'ETA 3 min 5 s'."""
    s = max(0, round(seconds))
    return f"ETA {s // 60} min {s % 60} s" if s >= 60 else f"ETA {s} s"


class FineTuneDock(QWidget):
    """The Fine-tune panel; it only calls the controller and shows what it reports.

    The last run's results (loss curve, before/after table, its caption) stay until the
    next run; when the model in use is neither the run's starting model nor its new
    version, or the project folder changes, they are marked as another model's (grayed,
    with a line saying whose they are).

    Signals:
        resultsShown(): the before/after table was filled (the dock's scroll area shows it).
    """

    resultsShown = Signal()

    def __init__(
        self,
        controller: FineTuneController,
        new_model: QAction | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """Build the panel (``new_model``: the action offered when the classes differ)."""
        super().__init__(parent)
        self.controller = controller
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.mismatch = QWidget(self)
        self.mismatch.setObjectName("train-mismatch")
        self.mismatch.setStyleSheet("#train-mismatch { background: #fff4d6; }")
        mismatch_layout = QVBoxLayout(self.mismatch)
        mismatch_layout.setContentsMargins(6, 4, 6, 4)
        self.mismatch_label = QLabel("", self.mismatch)
        self.mismatch_label.setWordWrap(True)
        mismatch_layout.addWidget(self.mismatch_label)
        self.new_model_button = QToolButton(self.mismatch)
        if new_model is not None:
            self.new_model_button.setDefaultAction(new_model)
        short = "New model for the project's classes…"  # (the action's own text is long)
        self.new_model_button.setText(short)
        if new_model is not None:
            new_model.changed.connect(lambda: self.new_model_button.setText(short))
        mismatch_layout.addWidget(self.new_model_button)
        self.mismatch.hide()
        layout.addWidget(self.mismatch)
        form = QFormLayout()
        self.mode_box = QComboBox(self)
        self.mode_box.addItem("Fast (heads only)", "fast")
        self.mode_box.addItem("Full (every layer)", "full")
        self.mode_box.setItemData(
            0, "Backbone frozen, its features cached: seconds on a CPU", Qt.ItemDataRole.ToolTipRole
        )
        self.mode_box.setItemData(
            1, "Every layer is trained: for a GPU", Qt.ItemDataRole.ToolTipRole
        )
        self.iterations = QSpinBox(self)
        self.iterations.setRange(1, 100_000)
        self.lr = QDoubleSpinBox(self)
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-3)
        self.corrected_only = QCheckBox("Loss only on corrected pixels", self)
        self.corrected_only.setToolTip("The pixels you did not change are ignored by the loss")
        self.mix = QCheckBox("Mix in original data", self)
        self.mix.setToolTip(
            "Also train on open images with reference masks (a quarter of "
            "them are held out for the before/after table)"
        )
        self.predict_all = QCheckBox("Then segment every open image", self)
        self.predict_all.setChecked(True)
        self.predict_all.setToolTip(
            "The new version segments the other images too (in "
            "the background), so the next corrections start from "
            "its predictions"
        )
        self.held_label = QLabel("", self)
        self.held_label.setWordWrap(True)
        form.addRow("Mode", self.mode_box)
        form.addRow("Steps", self.iterations)
        form.addRow("Learning rate", self.lr)
        layout.addLayout(form)
        layout.addWidget(self.corrected_only)
        layout.addWidget(self.mix)
        layout.addWidget(self.predict_all)
        layout.addWidget(self.held_label)
        row = QHBoxLayout()
        self.train_button = QPushButton("Train", self)
        self.train_button.setToolTip(
            "Train on every annotated image of the project (rough "
            "labels and corrected masks), the held-out ones "
            "excepted"
        )
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        row.addWidget(self.train_button, 1)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.status = QLabel(IDLE_TEXT, self)
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.curve = LossCurve(self)
        self.curve.setMinimumHeight(110)
        layout.addWidget(self.curve, 3)
        # the before/after table, as tall as its rows, with what the figures mean
        self.results = QWidget(self)
        results_layout = QVBoxLayout(self.results)
        results_layout.setContentsMargins(0, 0, 0, 0)
        self.stale_label = QLabel("", self.results)
        self.stale_label.setWordWrap(True)
        self.stale_label.setStyleSheet("color: #b35900;")
        self.stale_label.hide()
        self.table = BeforeAfterTable(self.results)
        self.caption = QLabel("", self.results)
        self.caption.setWordWrap(True)
        self.caption.hide()
        results_layout.addWidget(self.stale_label)
        results_layout.addWidget(self.table)
        results_layout.addWidget(self.caption)
        self.results.hide()
        layout.addWidget(self.results)
        box = QWidget(self)
        box_layout = QVBoxLayout(box)
        box_layout.setContentsMargins(0, 0, 0, 0)
        self.versions = QTreeWidget(box)
        self.versions.setHeaderLabels(["Versions of the model in use (lineage)"])
        self.versions.setToolTip("Double-click a version to use it")
        self.use_button = QPushButton("Use selected version", box)
        box_layout.addWidget(self.versions)
        box_layout.addWidget(self.use_button)
        box.setMinimumHeight(90)
        layout.addWidget(box, 2)
        self._shown: RunResults | None = None  # whose results the table shows
        self._done_text = ""
        self._set_mode_defaults("fast")

        self.mode_box.activated.connect(
            lambda i: self._set_mode_defaults(self.mode_box.itemData(i))
        )
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
        controller.modelMade.connect(self._on_model_made)
        controller.modelFailed.connect(lambda msg: self.status.setText(msg))
        controller.cancelled.connect(
            lambda: self.status.setText("Cancelled: the model is unchanged.")
        )
        controller.busyChanged.connect(self._on_busy)
        controller.versionsChanged.connect(self.refresh_versions)
        controller.context.models.changed.connect(self._check_stale)
        controller.context.projects.projectChanged.connect(self._check_stale)
        for signal in (
            controller.context.models.changed,
            controller.context.projects.projectChanged,
            controller.context.projects.classes.classesChanged,
            controller.context.projects.saved,
        ):
            signal.connect(self.refresh_state)
        self.refresh_state()

    def refresh_state(self, *_args: object) -> None:
        """Show whether the model can train on the project, and what is held out."""
        mismatch = self.controller.class_mismatch()
        self.mismatch_label.setText(
            f"Cannot train on this project: {mismatch}." if mismatch else ""
        )
        self.mismatch.setVisible(bool(mismatch))
        self.train_button.setEnabled(not self.controller.busy and not mismatch)
        project = self.controller.context.projects.project
        held = project.held_out_ids() if project is not None else []
        self.held_label.setText(
            f"Held out: {_plural(len(held), 'image')} (scored before and after, not "
            "trained on). Right-click an image in Files to hold it out or use it."
            if held
            else "Right-click an image in Files to hold it out: it is scored before and "
            "after each round, never trained on."
        )

    def _set_mode_defaults(self, mode: str) -> None:
        its, lr = MODE_DEFAULTS[mode]
        self.mode_box.setCurrentIndex(self.mode_box.findData(mode))
        self.iterations.setValue(its)
        self.lr.setValue(lr)

    def options(self) -> FineTuneOptions:
        """The options as the dock's widgets show them."""
        return FineTuneOptions(
            mode=self.mode_box.currentData(),
            iterations=self.iterations.value(),
            lr=self.lr.value(),
            corrected_only=self.corrected_only.isChecked(),
            mix_original=self.mix.isChecked(),
            predict_all=self.predict_all.isChecked(),
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
        self.curve.set_stale(False)
        self.table.show_scores([])
        self.table.set_stale(False)
        self.results.hide()
        self._shown, self._done_text = None, ""
        self.progress.setRange(0, 0)
        self.status.setText(f"Starting on {images} annotated image(s)…")

    def _on_model_made(self, path: Any, info: Any) -> None:
        self._done_text = (
            f"New model {info.name} ({path.name}) for the project's {info.num_classes} "
            "classes. Paint a few strokes of each class (Annotate from Rough labels), then "
            "Train."
        )
        self.status.setText(self._done_text)

    def _on_progress(self, p: Any) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setValue(round(1000 * p.iteration / max(1, p.total)))
        self.curve.add(p.iteration, p.loss)
        self.status.setText(
            f"Step {p.iteration}/{p.total} · loss {p.loss:.4f} · {eta_text(p.eta_seconds)}"
        )

    def _on_version(self, outcome: Any) -> None:
        self.curve.set_history(outcome.loss_history)
        self._show_table(outcome)
        self.status.setText(f"Saved {outcome.checkpoint.name}; loading it and segmenting again…")

    def _on_finished(self, outcome: Any) -> None:
        self.progress.setValue(1000)
        held = f", {outcome.held_images} held out" if outcome.held_images else ""
        more = f"; {outcome.predicted} other image(s) segmented" if outcome.predicted else ""
        self._done_text = (
            f"Done in {outcome.seconds:.1f} s: {outcome.iterations} steps on "
            f"{outcome.images} annotated image(s){held}. New version "
            f"{outcome.checkpoint.name}{more}."
        )
        self.status.setText(self._done_text)
        self._show_table(outcome)  # (last: the dock scrolls to it as laid out now)

    def _show_table(self, outcome: Any) -> None:
        starts = self.controller.starts or PredictionStarts()
        held_out = bool(outcome.held_after)
        caption, tip = start_bias_note(starts, held_out)
        favoured = tuple(sorted(starts.variants)) if not starts.unknown else ()
        sets = [
            ScoreSet(
                "corrected",
                f"Annotated images ({outcome.images}), trained on",
                outcome.before,
                outcome.after,
                tip,
                favoured,
            )
        ]
        if held_out:
            sets.append(
                ScoreSet(
                    "held out",
                    f"Held out ({outcome.held_images}), not trained on",
                    outcome.held_before,
                    outcome.held_after,
                )
            )
        self.table.setToolTip(
            f"Before → after training, on the {outcome.images} annotated "
            f"image(s) it trained on (their labelled pixels) and on "
            f"{outcome.held_images} held-out image(s) (your masks or "
            "reference masks)"
        )
        self.table.show_scores(sets)
        self.caption.setText(caption)
        self.caption.setVisible(bool(caption))
        self._shown = self.controller.results
        self.results.show()
        self._check_stale()
        self.resultsShown.emit()

    def _check_stale(self, *_args: object) -> None:
        """Mark the results as another model's (or project's) when they are not this one's."""
        shown = self._shown
        if shown is None:
            return
        ctx = self.controller.context
        current = self.controller.current_id()
        folder = ctx.projects.folder
        other_model = current not in (shown.parent_id, shown.child_id)
        other_project = (folder.resolve() if folder else None) != (
            shown.folder.resolve() if shown.folder else None
        )
        stale = other_model or other_project
        if stale:
            whose = f"{shown.parent_name} → {shown.child_name}"
            why = []
            if other_model:
                why.append(f"the model in use is now {ctx.models.describe()}")
            if other_project:
                why.append("the project folder is now " + (str(folder) if folder else "none"))
            self.stale_label.setText(
                f"These are the results of the last fine-tune "
                f"({whose}), not of the model in use: "
                f"{' and '.join(why)}."
            )
        self.stale_label.setVisible(stale)
        self.table.set_stale(stale)
        self.curve.set_stale(stale)
        self.caption.setEnabled(not stale)
        if not self.controller.busy:
            self.status.setText(IDLE_TEXT if stale else self._done_text or IDLE_TEXT)

    def _on_busy(self, busy: bool) -> None:
        self.train_button.setEnabled(not busy and self.controller.class_mismatch() is None)
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
