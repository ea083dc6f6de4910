"""The Messages dock: every notification, newest last, errors in red."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from app.state.notifications import Notification, NotificationCenter

_COLORS = {"warning": QColor(200, 130, 0), "error": QColor(210, 40, 30)}
_PREFIX = {"info": "", "warning": "Warning: ", "error": "Error: "}


class NotificationPanel(QListWidget):
    """The message log: newest last, errors in red."""

    def __init__(self, center: NotificationCenter, parent: QWidget | None = None) -> None:
        """Show ``center``'s messages."""
        super().__init__(parent)
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        self.setTextElideMode(Qt.TextElideMode.ElideNone)
        for note in center.messages:
            self.add(note)
        center.posted.connect(self.add)

    def add(self, note: Notification) -> None:
        """Append one message."""
        stamp = time.strftime("%H:%M:%S", time.localtime(note.when))
        item = QListWidgetItem(f"{stamp}  {_PREFIX[note.level]}{note.text}")
        if note.level in _COLORS:
            item.setForeground(_COLORS[note.level])
        item.setToolTip(note.text)
        self.addItem(item)
        self.scrollToBottom()
