"""LazyView: a widget that redraws only when visible, deferring updates while hidden."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget


class LazyView(QWidget):
    """Calls :meth:`refresh` once per event-loop turn after :meth:`invalidate`, when shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """Start dirty."""
        super().__init__(parent)
        self._dirty = True
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._flush)

    def invalidate(self, *_args: object) -> None:
        """Mark the view stale; it is refreshed soon if visible, else when shown."""
        self._dirty = True
        if self.isVisible():
            self._timer.start()

    def refresh_now(self) -> None:
        """Refresh immediately (used by tests and exports)."""
        self._dirty = False
        self._timer.stop()
        self.refresh()

    def refresh(self) -> None:
        """Redraw from the state (subclasses)."""

    def _flush(self) -> None:
        if self._dirty and self.isVisible():
            self.refresh_now()

    def showEvent(self, event: object) -> None:
        """Catch up on changes made while hidden."""
        super().showEvent(event)
        if self._dirty:
            self._timer.start()
