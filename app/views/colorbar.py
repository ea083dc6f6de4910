"""A vertical colorbar: the colormap with ticks and a title."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.common.colormaps import argb_table
from core.outputs.colormaps import DEFAULT_COLORMAP


class Colorbar(QWidget):
    """Shows a colormap from ``vmin`` (bottom) to ``vmax`` (top) with five ticks."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """A viridis bar from 0 to 1."""
        super().__init__(parent)
        self.cmap = DEFAULT_COLORMAP
        self.title = ""
        self.vmin, self.vmax = 0.0, 1.0
        self._strip: QImage | None = None
        self._strip_data: np.ndarray | None = None
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setMinimumWidth(84)

    def sizeHint(self) -> QSize:
        """Narrow and tall."""
        return QSize(84, 240)

    def set_map(self, cmap: str, title: str, vmin: float = 0.0, vmax: float = 1.0) -> None:
        """Show ``cmap`` labelled ``title`` for values ``vmin``..``vmax``."""
        if cmap != self.cmap:
            self._strip = None
        self.cmap, self.title, self.vmin, self.vmax = cmap, title, vmin, vmax
        self.setToolTip(title)
        self.update()

    def _strip_image(self) -> QImage:
        if self._strip is None:
            data = np.ascontiguousarray(argb_table(self.cmap)[::-1].reshape(256, 1))
            self._strip_data = data
            self._strip = QImage(data.data, 1, 256, 4, QImage.Format.Format_ARGB32_Premultiplied)
        return self._strip

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the title, the bar and the ticks."""
        p = QPainter(self)
        fm = p.fontMetrics()
        top = fm.height() * 2 + 6
        bar = QRect(6, top, 18, max(10, self.height() - top - fm.height()))
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.drawImage(bar, self._strip_image())
        p.setPen(self.palette().windowText().color())
        p.drawRect(bar.adjusted(0, 0, -1, -1))
        title_rect = QRect(2, 0, self.width() - 4, top - 4)
        flags = Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap
        p.drawText(title_rect, int(flags), self.title)
        for i in range(5):
            frac = i / 4
            y = bar.bottom() - round(frac * (bar.height() - 1))
            value = self.vmin + frac * (self.vmax - self.vmin)
            p.drawLine(bar.right() + 1, y, bar.right() + 5, y)
            p.drawText(bar.right() + 8, y + fm.ascent() // 2 - 1, f"{value:.2f}")
        p.end()
