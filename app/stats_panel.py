"""Per-variant statistics table: the four metrics against the reference, confidence, entropy."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.models_ui.model_set import (
    ModelSet,
    PaneSource,
    disagreement_view,
    legend,
    mixed,
    pane_sources,
    pane_stats,
)
from app.state import VARIANTS, ViewerState
from app.stats import METRIC_NAMES

ROWS: tuple[tuple[str, str, bool], ...] = (
    *((key, name, True) for key, name in METRIC_NAMES),
    ("mean_confidence", "Mean confidence", True),
    ("mean_entropy", "Mean entropy", False),
    ("classes_present", "Classes present", False),
)
"""Row key, label, and whether higher is better (for the bold best value)."""


class StatsPanel(QWidget):
    """A table with one column per variant and a note about the reference mask."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        """Subscribe to ``state``."""
        super().__init__(parent)
        self.state = state
        self.model_set: ModelSet | None = None
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
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.table)
        layout.addWidget(self.note)
        layout.addStretch(1)
        for signal in (state.documentChanged, state.modelChanged, state.resultChanged,
                       state.referenceChanged):
            signal.connect(self.refresh)
        self.refresh()

    def set_model_set(self, model_set: ModelSet | None) -> None:
        """Take each variant column's model from ``model_set`` (None: the current model)."""
        self.model_set = model_set
        if model_set is not None:
            model_set.changed.connect(self.refresh)
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
        if not per_variant:
            self.note.setText("No prediction yet." if doc is not None else "")
            return
        bold = QFont(self.font())
        bold.setBold(True)
        for r, (key, _label, higher_better) in enumerate(ROWS):
            values: dict[str, float] = {}
            for variant, s in per_variant.items():
                if key in dict(METRIC_NAMES):
                    if s.metrics is None:
                        continue
                    values[variant] = float(s.metrics[key])
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
        elif doc.reference is None:
            notes.append("No reference mask: the four metrics need one (File > Load Reference "
                         "Mask…).")
        else:
            rp = doc.reference_path
            name = f"{rp.parent.name}/{rp.name}" if rp else "the reference mask"
            notes.append(f"Metrics against {name} (void pixels ignored).")
        self.note.setText(" ".join(notes))
