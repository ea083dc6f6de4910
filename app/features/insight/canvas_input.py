"""What the insight feature hears from the viewer canvas: clicks (a press and a release at
the same place, so panning still works) and hovering, coalesced to one update per event-loop
turn."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QMouseEvent

from app.canvas.canvas import ImageCanvas

CLICK_SLOP = 4
"""A release this close (in screen pixels) to its press is a click, not a drag."""


class CanvasInput(QObject):
    """Clicks and the latest hovered pixel of ``canvas`` (image pixels).

    Clicks count only while the left button pans (not while the editor paints with it).

    Signals:
        clicked(int, int): an image pixel ``(x, y)`` was clicked.
        hovered(int, int): the pixel under the cursor, at most once per event-loop turn
            ((-1, -1): none).
    """

    clicked = Signal(int, int)
    hovered = Signal(int, int)

    def __init__(self, canvas: ImageCanvas, parent: QObject | None = None) -> None:
        """Listen to ``canvas``."""
        super().__init__(parent)
        self.canvas = canvas
        self.last_hover: tuple[int, int] | None = None
        self._press: QPoint | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._emit_hover)
        canvas.viewport().installEventFilter(self)
        canvas.hovered.connect(self._on_hover)

    def _on_hover(self, x: int, y: int) -> None:
        self.last_hover = (x, y) if x >= 0 and y >= 0 else None
        self._timer.start()

    def _emit_hover(self) -> None:
        x, y = self.last_hover if self.last_hover is not None else (-1, -1)
        self.hovered.emit(x, y)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """Notice left clicks on the viewport; never consume the event."""
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress and isinstance(event, QMouseEvent):
            left = event.button() == Qt.MouseButton.LeftButton
            self._press = event.position().toPoint() if left and self.canvas.left_pans else None
        elif kind == QEvent.Type.MouseButtonRelease and isinstance(event, QMouseEvent):
            press, self._press = self._press, None
            if press is not None and event.button() == Qt.MouseButton.LeftButton:
                pos = event.position().toPoint()
                if (pos - press).manhattanLength() <= CLICK_SLOP:
                    scene = self.canvas.mapToScene(pos)
                    x, y = int(scene.x() // 1), int(scene.y() // 1)
                    w, h = self.canvas.image_size
                    if 0 <= x < w and 0 <= y < h:
                        self.clicked.emit(x, y)
        return False
