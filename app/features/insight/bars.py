"""BreakdownChart: every class's logit at a pixel split by stream, as bars, for 16s and 8s."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.features.insight.render import STREAM_COLORS
from app.features.insight.results import PixelResult

ROW = 18
NAME_WIDTH = 78
PANELS = ("16s", "8s")
STREAM_NAMES = {"score_fr": "score_fr (fc7)", "score_pool4": "score_pool4",
                "score_pool3": "score_pool3"}


class BreakdownChart(QWidget):
    """Rows of classes; per variant a panel with one bar per stream term from zero and a
    diamond at the output (the sum of the bars). Both panels share one scale."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """Empty until :meth:`set_breakdown`."""
        super().__init__(parent)
        self.pixel: PixelResult | None = None
        self.names: list[str] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._update_height()

    def set_breakdown(self, pixel: PixelResult | None, names: Sequence[str]) -> None:
        """Show ``pixel``'s breakdown (None: nothing) with the class ``names``."""
        self.pixel, self.names = pixel, list(names)
        self._update_height()
        self.update()

    def _classes(self) -> int:
        if self.pixel is None:
            return 0
        return len(next(iter(self.pixel.totals.values())))

    def _update_height(self) -> None:
        self.setFixedHeight((self._classes() + 2) * ROW + 8 if self.pixel is not None else 0)

    def sizeHint(self) -> QSize:
        """Wide enough for the names and two panels."""
        return QSize(NAME_WIDTH + 2 * 140, self.height())

    def limit(self) -> float:
        """The largest magnitude of any term or output shown (the panels' half width)."""
        p = self.pixel
        if p is None:
            return 1.0
        values = [abs(float(v)) for var in PANELS if var in p.terms
                  for arr in (*p.terms[var].values(), p.totals[var]) for v in arr]
        return max(values, default=1.0) or 1.0

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the header, the rows and the legend."""
        p = self.pixel
        if p is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1))
        painter.setFont(font)
        panels = [v for v in PANELS if v in p.terms]
        width = (self.width() - NAME_WIDTH - 8) / max(1, len(panels))
        limit = self.limit()
        n = self._classes()
        for k, variant in enumerate(panels):
            left = NAME_WIDTH + k * width + 4
            zero = left + width / 2
            painter.setPen(self.palette().text().color())
            painter.drawText(QRectF(left, 0, width, ROW), Qt.AlignmentFlag.AlignCenter,
                             f"FCN-{variant}  (±{limit:.3g})")
            painter.setPen(QPen(QColor(128, 128, 128), 1))
            painter.drawLine(QPointF(zero, ROW), QPointF(zero, ROW * (n + 1)))
            streams = list(p.terms[variant])
            for c in range(n):
                top = ROW * (c + 1)
                thick = (ROW - 4) / len(streams)
                for s, stream in enumerate(streams):
                    value = float(p.terms[variant][stream][c])
                    length = value / limit * (width / 2 - 4)
                    rect = QRectF(min(zero, zero + length), top + 2 + s * thick,
                                  abs(length), max(1.0, thick - 1))
                    painter.fillRect(rect, QColor(*STREAM_COLORS[stream]))
                total = float(p.totals[variant][c])
                x = zero + total / limit * (width / 2 - 4)
                y = top + ROW / 2
                diamond = QPolygonF([QPointF(x, y - 5), QPointF(x + 4, y), QPointF(x, y + 5),
                                     QPointF(x - 4, y)])
                painter.setPen(QPen(QColor(255, 255, 255), 1))
                painter.setBrush(QColor(0, 0, 0))
                painter.drawPolygon(diamond)
        for c in range(n):
            name = self.names[c] if c < len(self.names) else f"#{c}"
            bold = any(p.labels.get(v) == c for v in panels)
            f = QFont(font)
            f.setBold(bold)
            painter.setFont(f)
            painter.setPen(self.palette().text().color())
            painter.drawText(QRectF(2, ROW * (c + 1), NAME_WIDTH - 4, ROW),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             name)
        painter.setFont(font)
        x = 4.0
        y = ROW * (n + 1) + 4
        for stream, label in STREAM_NAMES.items():
            painter.fillRect(QRectF(x, y + 4, 10, 10), QColor(*STREAM_COLORS[stream]))
            painter.setPen(self.palette().text().color())
            painter.drawText(QPointF(x + 13, y + 13), label)
            x += 17 + painter.fontMetrics().horizontalAdvance(label)
        painter.setPen(QPen(QColor(255, 255, 255), 1))
        painter.setBrush(QColor(0, 0, 0))
        painter.drawPolygon(QPolygonF([QPointF(x + 4, y + 4), QPointF(x + 8, y + 9),
                                       QPointF(x + 4, y + 14), QPointF(x, y + 9)]))
        painter.setPen(self.palette().text().color())
        painter.drawText(QPointF(x + 12, y + 13), "output = Σ")
        painter.end()
