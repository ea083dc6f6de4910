"""The file list dock: the navigator's images; a click opens one.

Beside each name it shows ◆ when the image has a reference mask and, when a feature gives
it a marks source (:meth:`FileList.set_marks`), what that feature knows of the image: an
icon (e.g. its annotation state) and short tags (e.g. "held out"). A feature may also give
the actions of an image's context menu (:meth:`FileList.set_context_actions`). The panel
imports no feature: both are plain callables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QContextMenuEvent, QIcon
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QMenu, QWidget

from app.state.navigator import Navigator

MASK_MARK = "  ◆"


@dataclass(frozen=True)
class FileMarks:
    """What the list shows of an image besides its name.

    Attributes:
        icon: Shown before the name (None: none).
        tags: Short words after the name, e.g. ``("✓", "held out")``.
        tip: Lines added to the item's tooltip.
    """

    icon: QIcon | None = None
    tags: tuple[str, ...] = ()
    tip: str = ""


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
        self._marks: Callable[[Path], FileMarks | None] | None = None
        self._actions: Callable[[Path], list[QAction]] | None = None

    def set_marks(self, source: Callable[[Path], FileMarks | None] | None,
                  legend: str = "") -> None:
        """Show ``source(image)``'s marks beside each image (None: none); ``legend`` (what
        the marks mean) becomes the list's tooltip."""
        self._marks = source
        self.setToolTip(legend)
        self.refresh_marks()

    def set_context_actions(self, source: Callable[[Path], list[QAction]] | None) -> None:
        """The actions of an image's context menu: ``source(image)`` when it opens."""
        self._actions = source

    def reload(self) -> None:
        """Rebuild the list from the navigator."""
        self._updating = True
        try:
            self.clear()
            for entry in self.navigator.entries:
                item = QListWidgetItem()
                item.setData(Qt.ItemDataRole.UserRole, str(entry.image))
                self._show(item, entry)
                self.addItem(item)
        finally:
            self._updating = False

    def refresh_marks(self) -> None:
        """Show every image's marks again (the marks source's facts changed)."""
        entries = self.navigator.entries
        for row in range(min(self.count(), len(entries))):
            self._show(self.item(row), entries[row])

    def item_marks(self, row: int) -> FileMarks | None:
        """The marks shown on ``row`` (for tests and the context menu)."""
        entries = self.navigator.entries
        if self._marks is None or not 0 <= row < len(entries):
            return None
        return self._marks(entries[row].image)

    def _show(self, item: QListWidgetItem, entry: object) -> None:
        marks = self._marks(entry.image) if self._marks is not None else None
        text = entry.name + (MASK_MARK if entry.mask else "")
        tip = str(entry.image)
        if entry.mask:
            tip += f"\nreference mask: {entry.mask}"
        if marks is not None:
            text += "".join(f"  {tag}" for tag in marks.tags)
            tip += f"\n{marks.tip}" if marks.tip else ""
        item.setText(text)
        item.setToolTip(tip)
        item.setIcon(marks.icon if marks is not None and marks.icon is not None else QIcon())

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        """The image's actions (from :meth:`set_context_actions`), if any."""
        item = self.itemAt(event.pos())
        if item is None or self._actions is None:
            return
        actions = self._actions(Path(item.data(Qt.ItemDataRole.UserRole)))
        if actions:
            menu = QMenu(self)
            menu.addActions(actions)
            menu.exec(event.globalPos())

    def _select(self, index: int) -> None:
        self._updating = True
        try:
            self.setCurrentRow(index)
        finally:
            self._updating = False

    def _on_row(self, row: int) -> None:
        if not self._updating and row >= 0 and row != self.navigator.index:
            self.navigator.go(row)
