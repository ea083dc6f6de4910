"""BeforeAfterTable: the paper's four metrics per variant, before → after a fine-tune."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.state.display import VARIANTS

METRICS: tuple[tuple[str, str], ...] = (
    ("pixel_acc", "Pixel acc."), ("mean_acc", "Mean acc."), ("mean_iu", "Mean IU"),
    ("fw_iu", "f.w. IU"),
)
BETTER, WORSE, STALE = QColor(20, 130, 40), QColor(200, 40, 30), QColor(140, 140, 140)
CHANGED = 5e-4
"""Smaller changes are shown uncolored (they round away at three decimals)."""


@dataclass(frozen=True)
class ScoreSet:
    """The scores of one set of images before and after a fine-tune.

    Attributes:
        key: What the set is ("corrected", "held out"), for lookups.
        title: Its row in the table, e.g. "Corrected images (2)".
        before: ``{variant: {metric: value}}`` of the model it started from.
        after: The same for the new version.
        worse_note: Added to the tooltip of the set's red (worse) cells of the variants in
            ``note_variants`` (empty: every variant), e.g. why a drop is expected.
        note_variants: See ``worse_note``.
    """

    key: str
    title: str
    before: dict
    after: dict
    worse_note: str = ""
    note_variants: tuple[str, ...] = ()


def score_text(value: float) -> str:
    """Three decimals without the leading zero (".903"), so three columns fit a dock."""
    text = f"{value:.3f}"
    return text[1:] if text.startswith("0.") else text


class BeforeAfterTable(QTableWidget):
    """Columns: the variants; rows: the four metrics of each set of images, under a row
    naming the set (as in the Statistics dock); cells 'before→after', green when better,
    red when worse.

    The table is exactly as tall as its rows and as wide as its columns (no scrollbar of its
    own ever hides a row: the dock scrolls as a whole when it is smaller).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        """Empty, with the variant columns."""
        super().__init__(0, 1 + len(VARIANTS), parent)
        self.setHorizontalHeaderLabels(["", *(f"FCN-{v}" for v in VARIANTS)])
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        for c in range(1, 1 + len(VARIANTS)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(20)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.sets: list[ScoreSet] = []
        self.stale = False
        self._fit()

    def show_scores(self, sets: list[ScoreSet]) -> None:
        """Fill from the sets (a variant missing from a set's before or after is left out)."""
        self.sets = list(sets)
        self._fill()

    def set_stale(self, stale: bool) -> None:
        """Gray every figure (the scores belong to another model or project) or not."""
        if bool(stale) != self.stale:
            self.stale = bool(stale)
            self._fill()

    def _fill(self) -> None:
        self.clearSpans()
        rows = sum(1 + len(METRICS) for _ in self.sets)
        self.setRowCount(rows)
        bold = self.font()
        bold.setBold(True)
        r = 0
        for score_set in self.sets:
            title = QTableWidgetItem(score_set.title)
            title.setFont(bold)
            self.setItem(r, 0, title)
            self.setSpan(r, 0, 1, self.columnCount())
            r += 1
            for key, name in METRICS:
                self.setItem(r, 0, QTableWidgetItem(name))
                for c, variant in enumerate(VARIANTS, start=1):
                    self.setItem(r, c, self._cell(score_set, variant, key))
                r += 1
        self._fit()

    def _cell(self, score_set: ScoreSet, variant: str, key: str) -> QTableWidgetItem:
        before = score_set.before.get(variant, {}).get(key)
        after = score_set.after.get(variant, {}).get(key)
        if before is None or after is None:
            return QTableWidgetItem("")
        item = QTableWidgetItem(f"{score_text(before)}→{score_text(after)}")
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        delta = after - before
        tip = f"FCN-{variant}, {dict(METRICS)[key]}: {before:.4f} before, {after:.4f} after " \
              f"({delta:+.4f})"
        if self.stale:
            item.setForeground(STALE)
        elif abs(delta) >= CHANGED:
            item.setForeground(BETTER if delta > 0 else WORSE)
        if delta <= -CHANGED and score_set.worse_note and (
                not score_set.note_variants or variant in score_set.note_variants):
            tip += f".\n{score_set.worse_note}"
        item.setToolTip(tip)
        return item

    def _fit(self) -> None:
        """Exactly the rows' height; at least the columns' width (the set titles span the
        row, so the first column is as wide as the metric names)."""
        header = self.horizontalHeader()
        names = max(self.fontMetrics().horizontalAdvance(name) for _, name in METRICS)
        header.resizeSection(0, names + 2 * self.fontMetrics().averageCharWidth() + 4)
        frame = 2 * self.frameWidth()
        height = header.sizeHint().height() + frame
        height += sum(self.rowHeight(r) for r in range(self.rowCount()))
        self.setFixedHeight(height)
        cells = max([self.sizeHintForColumn(c) for c in range(1, self.columnCount())]
                    + [header.sectionSizeHint(c) for c in range(1, self.columnCount())])
        self.setMinimumWidth(header.sectionSize(0) + (self.columnCount() - 1) * cells + frame)

    # ------------------------------------------------------------------ lookups (tests)
    def row_of(self, key: str, metric: str) -> int:
        """The row of a metric in the set ``key``."""
        r = 0
        for score_set in self.sets:
            if score_set.key == key:
                return r + 1 + [k for k, _ in METRICS].index(metric)
            r += 1 + len(METRICS)
        raise KeyError(key)

    def cell(self, key: str, variant: str, metric: str) -> QTableWidgetItem:
        """The cell of a set, variant and metric."""
        return self.item(self.row_of(key, metric), 1 + VARIANTS.index(variant))

    def value(self, key: str, variant: str, metric: str) -> tuple[float, float]:
        """``(before, after)`` as shown."""
        before, after = self.cell(key, variant, metric).text().split("→")
        return float(before), float(after)

    def all_rows_visible(self) -> bool:
        """Whether every row lies wholly inside the viewport (nothing to scroll to)."""
        area = self.viewport().rect()
        return all(area.contains(self.visualRect(self.model().index(r, 1)))
                   for r in range(self.rowCount()))
