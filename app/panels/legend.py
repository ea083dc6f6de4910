"""The class legend: color, name and share of pixels per class; a click picks the heatmap class.

The share column follows what the overlay shows: a variant's prediction, the reference mask,
or, while annotating, the mask being corrected (recounted shortly after each edit). While
annotating the rows are the open project's classes and colors (the mask's), else the model's.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from app.canvas import overlays
from app.state.display import REFERENCE, ViewerState


def swatch(rgb: tuple[int, int, int], size: int = 14) -> QIcon:
    """A square icon of one color."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*rgb))
    return QIcon(pixmap)


EDIT_RECOUNT_MS = 120
"""How long after the last edit the shares of the corrected mask are recounted."""


class LegendView(QTreeWidget):
    """One row per class of the model; the share column follows the overlay's variant."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        """Subscribe to ``state``."""
        super().__init__(parent)
        self.state = state
        self.setColumnCount(2)
        self.setHeaderLabels(["Class", "Pixels"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.header().setStretchLastSection(False)
        self.setToolTip(
            "Click a class to show its probability heatmap; untick it to hide it in the overlay"
        )
        self._filling = False
        self._rows: tuple = ()
        state.modelChanged.connect(self._fill)
        state.project_classes.classesChanged.connect(self._fill)
        for signal in (state.documentChanged, state.resultChanged, state.overlayChanged):
            signal.connect(self.update_shares)
        state.heatmapChanged.connect(self._select_current)
        self._recount = QTimer(self)
        self._recount.setSingleShot(True)
        self._recount.setInterval(EDIT_RECOUNT_MS)
        self._recount.timeout.connect(self.update_shares)
        state.editedMaskChanged.connect(self._recount.start)  # strokes come at mouse rate
        self.itemClicked.connect(self._on_click)
        self.itemChanged.connect(self._on_changed)
        self._fill()

    def rows(self) -> tuple[list[str], list[tuple[int, int, int]]]:
        """The classes listed: the mask's (the project's) while annotating, else the model's."""
        st = self.state
        if st.edited_shown and st.edited_mask is not None:
            return st.mask_class_names(), st.mask_colors()
        return st.class_names(), st.colors()

    def _fill(self, *_args: object) -> None:
        self._filling = True
        try:
            self.clear()
            hidden = self.state.hidden_classes
            names, colors = self.rows()
            self._rows = (names, colors)
            for i, (name, rgb) in enumerate(zip(names, colors, strict=False)):
                item = QTreeWidgetItem([name, ""])
                item.setIcon(0, swatch(rgb))
                item.setData(0, Qt.ItemDataRole.UserRole, i)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    0, Qt.CheckState.Unchecked if i in hidden else Qt.CheckState.Checked
                )
                item.setTextAlignment(
                    1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                )
                self.addTopLevelItem(item)
        finally:
            self._filling = False
        self.update_shares()
        self._select_current()

    def _on_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 0:
            return
        cls = int(item.data(0, Qt.ItemDataRole.UserRole))
        hidden = item.checkState(0) == Qt.CheckState.Unchecked
        if hidden != (cls in self.state.hidden_classes):
            self.state.set_class_hidden(cls, hidden)

    def shares(self) -> list[float] | None:
        """Share of pixels of each class in what the overlay shows: the corrected mask while
        annotating, else the overlay's variant or the reference (void pixels not counted)."""
        st, doc = self.state, self.state.document
        if doc is None:
            return None
        n = len(st.class_names())
        if st.edited_shown and st.edited_mask is not None:
            return _shares(st.edited_mask, len(st.mask_class_names()))
        if st.overlay_source == REFERENCE:
            return None if doc.reference is None else _shares(doc.reference, n)
        stats = overlays.statistics(doc, st.model_id, n)
        if stats is None or st.overlay_source not in stats.variants:
            return None
        return [float(v) for v in stats.variants[st.overlay_source].share]

    def update_shares(self, *_args: object) -> None:
        """Refresh the share column (and the rows, when annotating began or ended)."""
        if self.rows() != self._rows:
            self._fill()
            return
        shares = self.shares()
        self._filling = True
        try:
            self._set_shares(shares)
        finally:
            self._filling = False

    def _set_shares(self, shares: list[float] | None) -> None:
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            share = shares[i] if shares is not None and i < len(shares) else None
            item.setText(1, "" if share is None else f"{share:.1%}")
        st = self.state
        if st.edited_shown and st.edited_mask is not None:
            header = "Your mask"
        elif st.overlay_source == REFERENCE:
            header = "Reference"
        else:
            header = f"Pixels ({st.overlay_source})"
        self.headerItem().setText(1, header)

    def _select_current(self, *_args: object) -> None:
        cls = self.state.heatmap_class
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            item.setSelected(i == cls and self.state.heatmap_source == "class")

    def _on_click(self, item: QTreeWidgetItem, _column: int) -> None:
        self.state.pick_class(int(item.data(0, Qt.ItemDataRole.UserRole)))


def _shares(labels: np.ndarray, num_classes: int) -> list[float]:
    """Each class's share of the labelled (non-void) pixels."""
    from core.metrics import count_labels

    counts = count_labels(labels)  # in chunks: no int64 copy of a 100 MP mask
    valid = counts.sum() - counts[255]
    return list(counts[:num_classes] / max(1, valid))
