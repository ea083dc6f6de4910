"""PendingLayer: hatching over the parts of the image whose prediction is still the preview.

While a large image is segmented, the overlay shows the preview (the model on a downscaled
copy) where no tile has landed yet; this layer hatches those parts, drawn in screen pixels
so the hatching looks the same at every zoom, and shrinks as tiles land.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

Z_PENDING = 16.0
"""Over the marks (15), under the mask being edited (20)."""
HATCH = QColor(255, 255, 255, 90)
EDGE = QColor(255, 255, 255, 160)

Box = tuple[int, int, int, int]


class PendingLayer(QGraphicsItem):
    """Hatches ``(top, left, bottom, right)`` boxes of image pixels."""

    def __init__(self) -> None:
        """Nothing pending."""
        super().__init__()
        self._boxes: list[QRectF] = []
        self._bounds = QRectF()

    @property
    def boxes(self) -> list[Box]:
        """The hatched boxes."""
        return [(int(r.top()), int(r.left()), int(r.bottom()), int(r.right()))
                for r in self._boxes]

    def set_boxes(self, boxes: Sequence[Box]) -> None:
        """Hatch ``boxes`` (none: hide)."""
        rects = [QRectF(left, top, right - left, bottom - top)
                 for top, left, bottom, right in boxes if bottom > top and right > left]
        old = self._bounds
        bounds = QRectF()
        for r in rects:
            bounds = bounds.united(r)
        if bounds != old:
            self.prepareGeometryChange()
        self._boxes, self._bounds = rects, bounds
        self.setVisible(bool(rects))
        self.update(old.united(bounds))

    def boundingRect(self) -> QRectF:
        """The boxes' union."""
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        """Hatch the exposed part of each box in screen pixels, and outline it."""
        exposed = option.exposedRect
        world = painter.worldTransform()
        painter.save()
        painter.resetTransform()
        brush = QBrush(HATCH, Qt.BrushStyle.BDiagPattern)
        pen = QPen(EDGE, 1, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        for r in self._boxes:
            part = r.intersected(exposed)
            if part.isEmpty():
                continue
            painter.fillRect(world.mapRect(part), brush)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(world.mapRect(r).adjusted(0.5, 0.5, -0.5, -0.5))
        painter.restore()
