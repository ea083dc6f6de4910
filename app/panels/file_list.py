"""The file list dock: the navigator's images; a click opens one."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QWidget

from app.state.navigator import Navigator

MASK_MARK = "  ◆"


class FileList(QListWidget):
    """Lists the navigator's entries; entries with a reference mask are marked with ◆."""

    def __init__(self, navigator: Navigator, parent: QWidget | None = None) -> None:
        """Subscribe to ``navigator``."""
        super().__init__(parent)
        self.navigator = navigator
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformItemSizes(True)
        navigator.listingChanged.connect(self.reload)
        navigator.currentChanged.connect(self._select)
        self.currentRowChanged.connect(self._on_row)
        self._updating = False

    def reload(self) -> None:
        """Rebuild the list from the navigator."""
        self._updating = True
        try:
            self.clear()
            for entry in self.navigator.entries:
                item = QListWidgetItem(entry.name + (MASK_MARK if entry.mask else ""))
                tip = str(entry.image)
                if entry.mask:
                    tip += f"\nreference mask: {entry.mask}"
                item.setToolTip(tip)
                item.setData(Qt.ItemDataRole.UserRole, str(entry.image))
                self.addItem(item)
        finally:
            self._updating = False

    def _select(self, index: int) -> None:
        self._updating = True
        try:
            self.setCurrentRow(index)
        finally:
            self._updating = False

    def _on_row(self, row: int) -> None:
        if not self._updating and row >= 0 and row != self.navigator.index:
            self.navigator.go(row)
