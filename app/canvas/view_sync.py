"""ViewSync: keep the zoom and the center of several canvases equal."""

from __future__ import annotations

from PySide6.QtCore import QObject

from app.canvas.canvas import ImageCanvas


class ViewSync(QObject):
    """Whenever one canvas zooms or scrolls, the others follow."""

    def __init__(self, canvases: list[ImageCanvas] | None = None, parent: QObject | None = None):
        """Link ``canvases`` (more can be added with :meth:`add`)."""
        super().__init__(parent)
        self.canvases: list[ImageCanvas] = []
        self._busy = False
        for canvas in canvases or []:
            self.add(canvas)

    def add(self, canvas: ImageCanvas) -> None:
        """Link one more canvas; it takes the others' view."""
        self.canvases.append(canvas)
        canvas.viewChanged.connect(lambda c=canvas: self.follow(c))
        if len(self.canvases) > 1:
            self.follow(self.canvases[0])

    def follow(self, source: ImageCanvas) -> None:
        """Make every other canvas show what ``source`` shows."""
        if self._busy:
            return
        self._busy = True
        try:
            for canvas in self.canvases:
                if canvas is not source:
                    canvas.match(source)
        finally:
            self._busy = False
