"""Canvas layers: QGraphicsItems that paint a QImage built on a numpy array.

Layers are stacked by z value on an :class:`~app.canvas.canvas.ImageCanvas`: the image at 0,
overlays above it. An editable mask layer can subclass :class:`ArrayImageItem` and repaint
only a dirty rectangle with :meth:`ArrayImageItem.update_region`.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from app.common.render import ImageBuffer

Z_IMAGE = 0.0
Z_OVERLAY = 10.0
Z_EDIT = 20.0
Z_MARKS = 30.0

SMOOTH_BELOW = 1.0
"""Zoom under which images are filtered smoothly; at or above it pixels are drawn as squares."""


class ArrayImageItem(QGraphicsItem):
    """Paints an :class:`ImageBuffer` at scene (0, 0), one scene unit per image pixel."""

    def __init__(self, name: str = "", parent: QGraphicsItem | None = None) -> None:
        """An empty layer called ``name``."""
        super().__init__(parent)
        self.name = name
        self._buffer: ImageBuffer | None = None
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    @property
    def buffer(self) -> ImageBuffer | None:
        """The shown buffer (keeps the numpy array alive)."""
        return self._buffer

    def set_buffer(self, buffer: ImageBuffer | None) -> None:
        """Show ``buffer`` (None clears the layer)."""
        if buffer is self._buffer:
            return
        old = self.boundingRect()
        new_size = buffer.size if buffer is not None else (0, 0)
        if (old.width(), old.height()) != new_size:
            self.prepareGeometryChange()
        self._buffer = buffer
        self.update()

    def clear(self) -> None:
        """Show nothing."""
        self.set_buffer(None)

    def update_region(self, rect: QRectF) -> None:
        """Repaint only ``rect`` (image pixels) after the array changed in place."""
        self.update(rect)

    def boundingRect(self) -> QRectF:
        """The image's rectangle."""
        if self._buffer is None:
            return QRectF()
        w, h = self._buffer.size
        return QRectF(0, 0, w, h)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionGraphicsItem,
        widget: QWidget | None = None,
    ) -> None:
        """Draw the exposed part, smooth when zoomed out, nearest-neighbour when zoomed in."""
        if self._buffer is None:
            return
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, lod < SMOOTH_BELOW)
        exposed = option.exposedRect.intersected(self.boundingRect()).toAlignedRect()
        if exposed.isEmpty():
            return
        painter.drawImage(exposed, self._buffer.image, exposed)
