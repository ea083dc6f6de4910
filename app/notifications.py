"""Non-modal notifications: a log of messages shown in the status bar and a dock panel."""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

LEVELS: tuple[str, ...] = ("info", "warning", "error")


@dataclass(frozen=True)
class Notification:
    """One message: its level ("info", "warning", "error"), text and time."""

    level: str
    text: str
    when: float


class NotificationCenter(QObject):
    """Collects messages; never blocks (no modal dialog), so the app goes on.

    Signals:
        posted(object): a new :class:`Notification`.
    """

    posted = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        """Start empty."""
        super().__init__(parent)
        self.messages: list[Notification] = []

    def notify(self, text: str, level: str = "info") -> Notification:
        """Post a message."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
        note = Notification(level, text, time.time())
        self.messages.append(note)
        del self.messages[:-500]
        self.posted.emit(note)
        return note

    def last(self, level: str | None = None) -> Notification | None:
        """The latest message (of ``level`` when given)."""
        for note in reversed(self.messages):
            if level is None or note.level == level:
                return note
        return None


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
