"""Per-variant statistics table: the four metrics against the reference, confidence, entropy.

The metrics are measured against the reference mask or, once the image has a mask being
corrected, against that mask (a choice above the table); they follow the corrections live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.canvas.panes import disagreement_view, mixed, pane_stats
from app.common.stats import METRIC_NAMES
from app.state.display import VARIANTS, ViewerState
from app.state.model_set import ModelSet, PaneSource, legend, pane_sources

if TYPE_CHECKING:  # torch: imported when the first live score is made
    from core.metrics import MaskScores

ROWS: tuple[tuple[str, str, bool], ...] = (
    *((key, name, True) for key, name in METRIC_NAMES),
    ("mean_confidence", "Mean confidence", True),
    ("mean_entropy", "Mean entropy", False),
    ("classes_present", "Classes present", False),
)
"""Row key, label, and whether higher is better (for the bold best value)."""

AGAINST_REFERENCE, AGAINST_EDITED = "reference", "edited"
EDIT_RESCORE_MS = 150
"""How long after the last edit the metrics against the corrected mask are brought up to date."""


class StatsPanel(QWidget):
    """A table with one column per variant and a note about the reference mask."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        """Subscribe to ``state``."""
        super().__init__(parent)
        self.state = state
        self.model_set: ModelSet = state.models.model_set
        self.table = QTableWidget(len(ROWS), len(VARIANTS), self)
        self.table.setHorizontalHeaderLabels(list(VARIANTS))
        self.table.setVerticalHeaderLabels([label for _, label, _ in ROWS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.row_height = row_height = self.fontMetrics().height() + 6
        self.table.verticalHeader().setDefaultSectionSize(row_height)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._fit_height(row_height)
        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        self.against = AGAINST_REFERENCE
        self.against_box = QComboBox(self)
        self.against_box.setToolTip("The mask the four metrics are measured against")
        self.against_box.activated.connect(self._on_against)
        self.against_row = QWidget(self)
        row = QHBoxLayout(self.against_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Measure against:", self.against_row))
        row.addWidget(self.against_box, 1)
        self.against_row.hide()
        self._live: MaskScores | None = None
        self._live_key: tuple = ()
        self._rescore = QTimer(self)
        self._rescore.setSingleShot(True)
        self._rescore.setInterval(EDIT_RESCORE_MS)
        self._rescore.timeout.connect(self.refresh)
        state.editedMaskChanged.connect(self._rescore.start)  # edits come at mouse rate
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.against_row)
        layout.addWidget(self.table)
        layout.addWidget(self.note)
        layout.addStretch(1)
        for signal in (state.documentChanged, state.modelChanged, state.resultChanged,
                       state.referenceChanged, self.model_set.changed):
            signal.connect(self.refresh)
        state.predictionChanged.connect(self._on_prediction)
        self.refresh()

    def _on_prediction(self, model_id: str) -> None:
        """A prediction of the current image arrived: recount if a column shows that model."""
        if model_id != self.state.model_id and model_id in {
                s.model_id for s in pane_sources(self.state, self.model_set).values()}:
            self.refresh()

    def column_label(self, variant: str) -> str:
        """A variant column's header text."""
        return self.table.horizontalHeaderItem(VARIANTS.index(variant)).text()

    def _fit_height(self, header_height: int) -> None:
        height = header_height + self.row_height * len(ROWS) + 8
        self.table.setMinimumHeight(height)
        self.table.setMaximumHeight(height)

    def _label_columns(self, sources: dict[str, PaneSource]) -> None:
        several = mixed(sources)
        for i, (variant, src) in enumerate(sources.items()):
            text = f"{variant}\n{src.name}" if several else variant
            item = self.table.horizontalHeaderItem(i)
            if item is None or item.text() != text:
                item = QTableWidgetItem(text)
                item.setToolTip(src.title)
                self.table.setHorizontalHeaderItem(i, item)
        self._fit_height(self.fontMetrics().height() * (2 if several else 1) + 6)

    def value(self, row_key: str, variant: str) -> str:
        """The text shown in a cell ('' when empty)."""
        item = self.table.item([k for k, _, _ in ROWS].index(row_key), VARIANTS.index(variant))
        return item.text() if item is not None else ""

    def refresh(self, *_args: object) -> None:
        """Recompute from the current document and model."""
        self.table.clearContents()
        st, doc = self.state, self.state.document
        sources = pane_sources(st, self.model_set)
        self._label_columns(sources)
        per_variant, problem = {}, ""
        for variant, src in sources.items():
            s, pane_problem = pane_stats(doc, src) if doc is not None else (None, "")
            if s is not None:
                per_variant[variant] = s
            problem = problem or pane_problem
        against = self._choose_against()
        if against != AGAINST_EDITED:
            self._live, self._live_key = None, ()  # its copies of the mask and predictions
        if not per_variant:
            self.note.setText("No prediction yet." if doc is not None else "")
            return
        live: dict[str, Any] = {}
        if against == AGAINST_EDITED:
            live, live_problem = self._edited_metrics(sources)
            problem = live_problem
        bold = QFont(self.font())
        bold.setBold(True)
        for r, (key, _label, higher_better) in enumerate(ROWS):
            values: dict[str, float] = {}
            for variant, s in per_variant.items():
                if key in dict(METRIC_NAMES):
                    metrics = live.get(variant) if against == AGAINST_EDITED else s.metrics
                    if metrics is None:
                        continue
                    values[variant] = float(metrics[key])
                else:
                    values[variant] = float(getattr(s, key))
            if not values:
                continue
            best = max(values.values()) if higher_better else min(values.values())
            for variant, v in values.items():
                text = f"{int(v)}" if key == "classes_present" else f"{v:.3f}"
                item = QTableWidgetItem(text)
                if len(values) > 1 and v == best and key != "classes_present":
                    item.setFont(bold)
                self.table.setItem(r, VARIANTS.index(variant), item)
        caption = disagreement_view(doc, st, sources)[1]
        notes = [f"{caption[:1].upper()}{caption[1:]}."]
        if mixed(sources):
            notes.insert(0, f"Each column is its own model's output: {legend(sources)}.")
        if problem:
            notes.append(problem)
        elif against == AGAINST_EDITED:
            notes.append(f"Metrics against your corrected mask (started from "
                         f"{st.edited_source or 'a mask'}; void pixels ignored); they follow "
                         "your edits.")
            if st.edited_source.startswith("FCN-"):
                notes.append(f"Uncorrected pixels are that prediction's, which favours "
                             f"{st.edited_source.split()[0]}.")
        elif doc.reference is None:
            notes.append("No reference mask: the four metrics need one (File > Load Reference "
                         "Mask…).")
        else:
            rp = doc.reference_path
            name = f"{rp.parent.name}/{rp.name}" if rp else "the reference mask"
            notes.append(f"Metrics against {name} (void pixels ignored).")
        self.note.setText(" ".join(notes))

    # ------------------------------------------------------------------ the corrected mask
    def _choose_against(self) -> str:
        """Fill the "Measure against" choice; the mask the metrics use now."""
        st, doc = self.state, self.state.document
        edited = st.edited_mask is not None and doc is not None
        has_reference = doc is not None and doc.reference is not None
        self.against_row.setVisible(edited)
        if not edited:
            return AGAINST_REFERENCE
        items = ([(AGAINST_REFERENCE, "Reference mask")] if has_reference else []) + [
            (AGAINST_EDITED, "Your corrected mask")]
        if [self.against_box.itemData(i) for i in range(self.against_box.count())] != [
                k for k, _ in items]:
            self.against_box.clear()
            for key, text in items:
                self.against_box.addItem(text, key)
        against = self.against if has_reference else AGAINST_EDITED
        self.against_box.setCurrentIndex(self.against_box.findData(against))
        return against

    def _on_against(self, index: int) -> None:
        self.set_against(str(self.against_box.itemData(index)))

    def set_against(self, against: str) -> None:
        """Measure against the reference mask or the corrected mask (when there are both)."""
        self.against = against
        self.refresh()

    def _edited_metrics(self, sources: dict[str, PaneSource]) -> tuple[dict[str, Any], str]:
        """Each column's metrics against the corrected mask, updated by the changed pixels."""
        st, doc = self.state, self.state.document
        truth = st.edited_mask
        names = st.mask_class_names()  # the project's classes (the mask's numbering)
        assert doc is not None and truth is not None
        preds: dict[str, np.ndarray] = {}
        problem = ""
        for variant, src in sources.items():
            out = doc.output(src.model_id, variant)
            if out is None:
                continue
            labels = st.project_classes.to_project(out.labels, list(src.class_names)) \
                if list(src.class_names) != names else out.labels
            if labels is None or labels.shape != truth.shape:
                problem = (f"The {variant} column's model ({src.name}) has other classes than "
                           "your mask: no metrics for it (map them by name in the Project "
                           "dock).")
                continue
            preds[variant] = labels
        key = (id(truth), truth.shape, len(names),
               tuple((v, id(p)) for v, p in preds.items()))
        try:
            if self._live is None or key != self._live_key:
                from core.metrics import MaskScores

                self._live, self._live_key = MaskScores(truth, preds, len(names)), key
            else:
                self._live.update(truth)
        except ValueError as exc:
            self._live, self._live_key = None, ()
            return {}, f"Your mask does not fit the model: {exc}"
        return self._live.metrics(), problem
