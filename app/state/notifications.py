"""Non-modal notifications: the log of messages (shown by app.panels.messages)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

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
