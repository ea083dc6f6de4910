"""Scene items drawn while editing: the brush footprint cursor and the polygon/lasso path."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QStyleOptionGraphicsItem, QWidget

Z_CURSOR = 40.0


def brush_radius(size: int) -> float:
    """The core brush radius of a brush ``size`` pixels wide."""
    return max(0.0, (int(size) - 1) / 2.0)


@lru_cache(maxsize=32)
def footprint_path(size: int) -> QPainterPath:
    """The outline of the pixels a brush of ``size`` paints, centred on pixel (0, 0).

    Built from the core's own footprint (one rectangle per row, then merged), so the cursor
    shows exactly the pixels a click paints.
    """
    from core.annotation import disk

    mask: np.ndarray = disk(brush_radius(size))
    c = mask.shape[0] // 2
    path = QPainterPath()
    for row in range(mask.shape[0]):
        cols = np.flatnonzero(mask[row])
        if cols.size:
            path.addRect(QRectF(cols[0] - c, row - c, cols[-1] - cols[0] + 1, 1))
    return path.simplified()


def _pens() -> tuple[QPen, QPen]:
    dark = QPen(QColor(0, 0, 0, 220), 1.0)
    dark.setCosmetic(True)
    light = QPen(QColor(255, 255, 255, 240), 1.0, Qt.PenStyle.DashLine)
    light.setCosmetic(True)
    return dark, light


class BrushCursorItem(QGraphicsItem):
    """Outlines the brush footprint at the hovered pixel (cosmetic pens: visible at any zoom)."""

    def __init__(self) -> None:
        """Hidden until :meth:`move_to`."""
        super().__init__()
        self.setZValue(Z_CURSOR)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._size = 1
        self._path = footprint_path(1)
        self._pens = _pens()
        self.hide()

    @property
    def size(self) -> int:
        """The brush size shown."""
        return self._size

    def set_size(self, size: int) -> None:
        """Show a brush ``size`` pixels wide."""
        size = max(1, int(size))
        if size != self._size:
            self.prepareGeometryChange()
            self._size = size
            self._path = footprint_path(size)

    def move_to(self, x: int, y: int) -> None:
        """Centre the footprint on pixel ``(x, y)``."""
        self.setPos(QPointF(x, y))
        self.show()

    def footprint(self) -> QPainterPath:
        """The outline drawn, in item coordinates (pixel (0, 0) is the hovered one)."""
        return self._path

    def boundingRect(self) -> QRectF:
        """The footprint's box with a margin for the pen."""
        return self._path.boundingRect().adjusted(-1, -1, 1, 1)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        """Draw the outline twice: dark, then dashed light, so it shows on any color."""
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for pen in self._pens:
            painter.setPen(pen)
            painter.drawPath(self._path)


class PathPreviewItem(QGraphicsPathItem):
    """The polygon or lasso being drawn (vertices at pixel centres)."""

    def __init__(self) -> None:
        """Empty and hidden."""
        super().__init__()
        self.setZValue(Z_CURSOR)
        pen = QPen(QColor(255, 230, 0), 1.5)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setBrush(QColor(255, 230, 0, 50))
        self.hide()

    def show_points(self, points: Sequence[tuple[float, float]], extra: tuple | None = None
                    ) -> None:
        """Show the path through ``points`` (pixel coordinates), plus a rubber-band point."""
        pts = [*points, *([extra] if extra is not None else [])]
        path = QPainterPath()
        if pts:
            path.moveTo(pts[0][0] + 0.5, pts[0][1] + 0.5)
            for x, y in pts[1:]:
                path.lineTo(x + 0.5, y + 0.5)
            if len(pts) > 2:
                path.closeSubpath()
        self.setPath(path)
        self.setVisible(bool(pts))
