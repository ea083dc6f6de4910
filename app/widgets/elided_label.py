"""Small widgets: a one-line label that elides its text instead of widening its parent."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    """A one-line plain-text label shown elided to its width; the whole text is its tooltip.

    ``text()`` and ``setText()`` work on the whole text; ``setText(text, *shorter)`` also
    gives shorter forms to show, in order, before eliding the last of them. Its width never
    pushes the layout (horizontal size policy Ignored), so long model names do not squeeze
    the docks, and it is always one line high, so side-by-side canvases keep equal sizes.
    """

    def __init__(self, text: str = "", mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight,
                 bold: bool = False, parent: QWidget | None = None) -> None:
        """Show ``text`` elided with ``mode``; ``bold`` sets a bold font."""
        super().__init__(parent)
        self._full = ""
        self._shorter: tuple[str, ...] = ()
        self._mode = mode
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        if bold:
            font = self.font()
            font.setBold(True)
            self.setFont(font)
        self.setText(text)

    def text(self) -> str:
        """The whole text (not the elided one shown)."""
        return self._full

    def setText(self, text: str, *shorter: str) -> None:
        """Set the whole text (and shorter forms); the longest that fits is shown, else elided."""
        self._full = str(text)
        self._shorter = tuple(str(s) for s in shorter)
        self.setToolTip(self._full)
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Elide again for the new width."""
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        metrics, width = self.fontMetrics(), max(0, self.width())
        forms = (self._full, *self._shorter)
        shown = next((f for f in forms if metrics.horizontalAdvance(f) <= width), None)
        if shown is None:
            mode = self._mode if not self._shorter else Qt.TextElideMode.ElideRight
            shown = metrics.elidedText(forms[-1], mode, width)
        QLabel.setText(self, shown)
