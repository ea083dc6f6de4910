"""MapTile: a small titled map in the Insight dock that can be clicked, and a grid of them."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.common.render import ImageBuffer

TILE = 112
"""The longest side of a tile's picture, in pixels."""

Painter = Callable[[QPainter, QRectF], None]
"""Draws extra marks over a picture: gets the painter and the picture's rectangle."""


class Picture(QWidget):
    """Paints an image scaled to fit (nearest-neighbour when enlarged), plus extra marks."""

    clicked = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        """Empty."""
        super().__init__(parent)
        self.image: QImage | None = None
        self.extra: Painter | None = None
        self.setMinimumSize(QSize(40, 30))
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def hasHeightForWidth(self) -> bool:
        """The height follows the width (the image's aspect)."""
        return True

    def heightForWidth(self, width: int) -> int:
        """As tall as the image at this width, between 30 and :data:`TILE` pixels."""
        if self.image is None or self.image.isNull() or not self.image.width():
            aspect = 0.75
        else:
            aspect = self.image.height() / self.image.width()
        return max(30, min(TILE, round(width * aspect)))

    def sizeHint(self) -> QSize:
        """A tile's size."""
        return QSize(TILE, self.heightForWidth(TILE))

    def picture_rect(self) -> QRectF:
        """Where the image is drawn (fitted, centred)."""
        if self.image is None or self.image.isNull():
            return QRectF()
        w, h = self.image.width(), self.image.height()
        scale = min(self.width() / w, self.height() / h)
        dw, dh = w * scale, h * scale
        return QRectF((self.width() - dw) / 2, (self.height() - dh) / 2, dw, dh)

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the image and the marks."""
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(40, 40, 44))
        rect = self.picture_rect()
        if not rect.isEmpty() and self.image is not None:
            smooth = rect.width() < self.image.width()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
            painter.drawImage(rect, self.image)
            if self.extra is not None:
                self.extra(painter, rect)
        painter.end()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """Report where the image was clicked, as fractions of its width and height."""
        rect = self.picture_rect()
        pos = event.position()
        if rect.contains(pos):
            self.clicked.emit((pos.x() - rect.x()) / rect.width(),
                              (pos.y() - rect.y()) / rect.height())
        super().mouseReleaseEvent(event)


class MapTile(QFrame):
    """A title, a picture and a caption; clicking the picture selects the tile.

    Signals:
        clicked(str, float, float): the tile's key and where its picture was clicked.
    """

    clicked = Signal(str, float, float)

    def __init__(self, key: str, title: str, parent: QWidget | None = None,
                 tip: str = "") -> None:
        """An empty tile called ``title`` (``tip``: its tooltip)."""
        super().__init__(parent)
        self.key = key
        self.buffer: ImageBuffer | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel(title, self)
        self.title.setWordWrap(True)
        self.setToolTip(tip or title)
        self.picture = Picture(self)
        self.caption = QLabel("", self)
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("color: gray;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(3, 3, 3, 3)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.picture)
        layout.addWidget(self.caption)
        self.picture.clicked.connect(lambda fx, fy: self.clicked.emit(self.key, fx, fy))
        self._selected = False

    def set_image(self, buffer: ImageBuffer | None, caption: str | None = None,
                  extra: Painter | None = None) -> None:
        """Show ``buffer`` (None: empty), a caption and extra marks."""
        self.buffer = buffer
        self.picture.image = buffer.image if buffer is not None else None
        self.picture.extra = extra
        if caption is not None:
            self.caption.setText(caption)
        self.picture.updateGeometry()
        self.picture.update()

    @property
    def selected(self) -> bool:
        """Whether the tile is the one shown on the viewer."""
        return self._selected

    def set_selected(self, on: bool) -> None:
        """Highlight the tile (its map is on the viewer)."""
        self._selected = bool(on)
        self.setStyleSheet("MapTile { border: 2px solid #3daee9; }" if on else "")


class TileGrid(QWidget):
    """Tiles in rows of ``columns``; one selected at a time (or none).

    Signals:
        clicked(str, float, float): a tile's key and where its picture was clicked.
    """

    clicked = Signal(str, float, float)

    def __init__(self, columns: int = 3, parent: QWidget | None = None) -> None:
        """No tiles yet."""
        super().__init__(parent)
        self.columns = columns
        self.tiles: dict[str, MapTile] = {}
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        for column in range(columns):  # equal widths, whatever the titles
            self._layout.setColumnStretch(column, 1)

    def set_tiles(self, entries: list[tuple[str, str]] | list[tuple[str, str, str]]) -> None:
        """Rebuild the grid with ``(key, title[, tooltip])`` tiles (kept when the keys are
        the same)."""
        if [e[0] for e in entries] == list(self.tiles):
            for key, title, *tip in entries:
                self.tiles[key].title.setText(title)
                self.tiles[key].setToolTip(tip[0] if tip else title)
            return
        for tile in self.tiles.values():
            self._layout.removeWidget(tile)
            tile.deleteLater()
        self.tiles = {}
        for n, (key, title, *tip) in enumerate(entries):
            tile = MapTile(key, title, self, tip[0] if tip else "")
            tile.clicked.connect(self.clicked)
            self._layout.addWidget(tile, n // self.columns, n % self.columns)
            self.tiles[key] = tile

    def select(self, key: str | None) -> None:
        """Highlight the tile ``key`` (None: none)."""
        for k, tile in self.tiles.items():
            tile.set_selected(k == key)

    def selected(self) -> str | None:
        """The highlighted tile's key."""
        return next((k for k, t in self.tiles.items() if t.selected), None)


def box_painter(boxes: list[tuple[tuple[float, float, float, float], QColor, bool]],
                size: tuple[int, int]) -> Painter:
    """Marks rectangles ``(x0, y0, x1, y1)`` given in a picture of ``size = (w, h)`` pixels."""
    def paint(painter: QPainter, rect: QRectF) -> None:
        sx, sy = rect.width() / size[0], rect.height() / size[1]
        for (x0, y0, x1, y1), color, dashed in boxes:
            pen = QPen(color, 1.5)
            if dashed:
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(rect.x() + x0 * sx, rect.y() + y0 * sy,
                                    max(1.0, (x1 - x0) * sx), max(1.0, (y1 - y0) * sy)))

    return paint


def point_painter(point: tuple[float, float], size: tuple[int, int]) -> Painter:
    """Marks pixel ``point = (x, y)`` of a picture of ``size = (w, h)`` with a cross."""
    def paint(painter: QPainter, rect: QRectF) -> None:
        sx, sy = rect.width() / size[0], rect.height() / size[1]
        c = QPointF(rect.x() + (point[0] + 0.5) * sx, rect.y() + (point[1] + 0.5) * sy)
        painter.setPen(QPen(QColor(255, 255, 255), 1.5))
        painter.drawLine(c + QPointF(-5, 0), c + QPointF(5, 0))
        painter.drawLine(c + QPointF(0, -5), c + QPointF(0, 5))

    return paint


def set_note(label: QLabel, text: str) -> None:
    """Show ``text`` in ``label``, hiding the label while there is none (no empty gap)."""
    label.setText(text)
    label.setVisible(bool(text))
