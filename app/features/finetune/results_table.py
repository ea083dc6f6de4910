"""BeforeAfterTable: the paper's four metrics per variant, before → after a fine-tune."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from app.state.display import VARIANTS

METRICS: tuple[tuple[str, str], ...] = (
    ("pixel_acc", "Pixel acc."), ("mean_acc", "Mean acc."), ("mean_iu", "Mean IU"),
    ("fw_iu", "f.w. IU"),
)
BETTER, WORSE = QColor(20, 130, 40), QColor(200, 40, 30)


class BeforeAfterTable(QTableWidget):
    """Rows: variants on the corrected images (and on held-out images); cells 'a→b'."""

    def __init__(self, parent: object = None) -> None:
        """Empty, with the metric columns."""
        super().__init__(0, 2 + len(METRICS), parent)
        self.setHorizontalHeaderLabels(["Images", "", *(t for _, t in METRICS)])
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)

    def show_scores(self, sets: list[tuple[str, dict, dict]]) -> None:
        """Fill from ``(name, before, after)`` triples (``{variant: {metric: value}}``)."""
        rows = [(name, v, before[v], after[v]) for name, before, after in sets
                for v in VARIANTS if v in before and v in after]
        self.setRowCount(len(rows))
        for r, (name, variant, b, a) in enumerate(rows):
            first = r == 0 or rows[r - 1][0] != name
            self.setItem(r, 0, QTableWidgetItem(name if first else ""))
            self.setItem(r, 1, QTableWidgetItem(variant))
            for c, (key, _title) in enumerate(METRICS, start=2):
                item = QTableWidgetItem(f"{b[key]:.3f}→{a[key]:.3f}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                delta = a[key] - b[key]
                if abs(delta) >= 5e-4:
                    item.setForeground(BETTER if delta > 0 else WORSE)
                item.setToolTip(f"{b[key]:.4f} before, {a[key]:.4f} after ({delta:+.4f})")
                self.setItem(r, c, item)

    def value(self, row: int, key: str) -> tuple[float, float]:
        """``(before, after)`` shown in a row for a metric key (for tests)."""
        col = 2 + [k for k, _ in METRICS].index(key)
        before, after = self.item(row, col).text().split("→")
        return float(before), float(after)
