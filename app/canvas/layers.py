"""Canvas layers: QGraphicsItems that draw a tile source at the level of detail of the zoom.

Layers are stacked by z value on an :class:`~app.canvas.canvas.ImageCanvas`: the image at 0,
overlays above it. An :class:`ArrayImageItem` draws a :class:`~app.canvas.tiles.TileSource`
(or, as before, an :class:`~app.common.render.ImageBuffer`) in tiles of the level that
matches the zoom, only those that are exposed. A paint builds missing tiles for at most
:data:`PAINT_BUDGET`; the others are drawn from a coarser (or the previous source's) cached
tile meanwhile and built by the :class:`TileBuilder` between frames, so a frame never waits
for more than a few tiles. :meth:`ArrayImageItem.update_region` repaints a dirty rectangle
after the arrays changed in place (a brush stroke): only the tiles it touches change.
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QObject, QRectF, QTimer
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from app.canvas.sources import BufferSource
from app.canvas.tiles import Rect, Tile, TileSource, level_for
from app.common.render import ImageBuffer

Z_IMAGE = 0.0
Z_OVERLAY = 10.0
Z_MARKS = 15.0
"""Disagreement and change marks: over the prediction, under the mask being edited (they
describe predictions and must not hide what the user paints)."""
Z_EDIT = 20.0

SMOOTH_BELOW = 1.0
"""Zoom under which images are filtered smoothly; at or above it pixels are drawn as squares."""
PAINT_BUDGET = 0.006
"""Seconds a layer's paint may spend building tiles; the rest are built between frames."""
TURN_BUDGET = 0.010
"""Seconds the tile builder spends per event-loop turn."""


class ArrayImageItem(QGraphicsItem):
    """Draws a tile source (or an image buffer) at scene (0, 0), one unit per image pixel."""

    def __init__(self, name: str = "", parent: QGraphicsItem | None = None) -> None:
        """An empty layer called ``name``."""
        super().__init__(parent)
        self.name = name
        self._buffer: ImageBuffer | None = None
        self._source: TileSource | None = None
        self._previous: TileSource | None = None
        self._wanted: tuple[int, Rect] | None = None
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    # ------------------------------------------------------------------ content
    @property
    def source(self) -> TileSource | None:
        """The tile source shown."""
        return self._source

    @property
    def buffer(self) -> ImageBuffer | None:
        """The shown image as one buffer: the one given to :meth:`set_buffer`, else the
        source rendered whole at full resolution (memoized; for tests and small images)."""
        if self._buffer is not None:
            return self._buffer
        return self._source.full_image() if self._source is not None else None

    def set_source(self, source: TileSource | None) -> None:
        """Show ``source`` (None clears the layer); until its visible tiles are built, the
        previous source's cached tiles are drawn."""
        if source is self._source:
            return
        old = self._source
        if (old is None) != (source is None) or (
                old is not None and source is not None and old.size != source.size):
            self.prepareGeometryChange()
        self._previous = old if old is not None and source is not None else None
        self._source = source
        self._buffer = source.buffer if isinstance(source, BufferSource) else None
        self.update()

    def set_buffer(self, buffer: ImageBuffer | None) -> None:
        """Show ``buffer`` (None clears the layer)."""
        if buffer is self._buffer and buffer is not None:
            return
        self.set_source(BufferSource(buffer) if buffer is not None else None)

    def clear(self) -> None:
        """Show nothing."""
        self.set_source(None)

    def update_region(self, rect: QRectF) -> None:
        """Repaint only ``rect`` (image pixels) after the arrays changed in place."""
        if self._source is not None:
            r = rect.toAlignedRect()
            self._source.changed((r.left(), r.top(), r.right() + 1, r.bottom() + 1))
        self.update(rect)

    def refresh_all(self) -> None:
        """Repaint everything after the arrays changed in place."""
        if self._source is not None:
            self._source.changed(None)
        self.update()

    def boundingRect(self) -> QRectF:
        """The image's rectangle."""
        if self._source is None:
            return QRectF()
        w, h = self._source.size
        return QRectF(0, 0, w, h)

    # ------------------------------------------------------------------ painting
    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        """Draw the exposed tiles of the zoom's level (smooth when zoomed out)."""
        src = self._source
        if src is None:
            return
        bounds = self.boundingRect()
        exposed = option.exposedRect.intersected(bounds)
        if exposed.isEmpty():
            return
        transform = painter.worldTransform()
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(transform)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, lod < SMOOTH_BELOW)
        level = level_for(lod, src.max_level)
        direct = getattr(src, "direct", None)
        if direct is not None and (level == 0 or src.max_level == 0):
            r = exposed.toAlignedRect()
            painter.drawImage(r, direct, r)
            return
        if widget is not None:  # what the builder should finish: the whole visible part
            inverse, ok = transform.inverted()
            seen = inverse.mapRect(QRectF(widget.rect())).intersected(bounds) if ok else exposed
            self._wanted = (level, _int_rect(seen))
        deadline = time.perf_counter() + PAINT_BUDGET
        missing = False
        for tx, ty in src.tiles_in(level, _int_rect(exposed)):
            tile = src.cached(level, tx, ty)
            if tile is None or tile.stale:
                if time.perf_counter() < deadline:
                    tile = src.tile(level, tx, ty)
                else:
                    missing = True
                    if tile is None:
                        self._fallback(painter, src, level, tx, ty)
                        continue
            self._draw(painter, src, level, tx, ty, tile)
        if missing:
            TileBuilder.instance().request(self)
        elif self._previous is not None and self._wanted is not None and not self._missing():
            self._previous = None

    def _draw(self, painter: QPainter, src: TileSource, level: int, tx: int, ty: int,
              tile: Tile | None, clip: QRectF | None = None) -> None:
        """Draw ``tile`` (of ``src`` at ``level``) where it belongs, within ``clip``."""
        if tile is None or tile.image.isNull():
            return
        s, n = 1 << level, src.span(level)
        x0, y0 = tx * n, ty * n
        target = QRectF(x0, y0, tile.image.width() * s, tile.image.height() * s)
        target = target.intersected(self.boundingRect())
        if clip is not None:
            target = target.intersected(clip)
        if target.isEmpty():
            return
        source = QRectF((target.x() - x0) / s, (target.y() - y0) / s,
                        target.width() / s, target.height() / s)
        painter.drawImage(target, tile.image, source)

    def _fallback(self, painter: QPainter, src: TileSource, level: int, tx: int, ty: int
                  ) -> None:
        """Draw what is cached for a tile not built yet: a coarser tile of the source, the
        previous source's, or the finer tiles (after zooming out)."""
        x0, y0, x1, y1 = src.tile_rect(level, tx, ty)
        clip = QRectF(x0, y0, x1 - x0, y1 - y0)
        candidates: list[tuple[TileSource, int]] = [
            (src, lv) for lv in range(level + 1, src.max_level + 1)]
        prev = self._previous
        if prev is not None and prev.size == src.size:
            candidates += [(prev, lv) for lv in range(level, prev.max_level + 1)]
        for owner, lv in candidates:
            k = lv - level
            tile = owner.cached(lv, tx >> k, ty >> k)
            if tile is not None:
                self._draw(painter, owner, lv, tx >> k, ty >> k, tile, clip)
                return
        if level > 0:
            for cy in (2 * ty, 2 * ty + 1):
                for cx in (2 * tx, 2 * tx + 1):
                    child = src.cached(level - 1, cx, cy)
                    if child is not None:
                        self._draw(painter, src, level - 1, cx, cy, child, clip)

    # ------------------------------------------------------------------ building
    def _missing(self) -> list[tuple[int, int]]:
        """Tiles of the last paint's level and view that are not built (or stale)."""
        src = self._source
        if src is None or self._wanted is None:
            return []
        level, rect = self._wanted
        out = []
        for tx, ty in src.tiles_in(level, rect):
            tile = src.cache.peek(src.key(level, tx, ty))
            if tile is None or tile.stale:
                out.append((tx, ty))
        return out

    @property
    def pending(self) -> bool:
        """Whether visible tiles are still to be built."""
        return bool(self._missing())

    def build_missing(self, budget: float | None = None) -> bool:
        """Build visible tiles (nearest the view's center first) for up to ``budget``
        seconds (None: all) and repaint them; True if some are left."""
        src = self._source
        missing = self._missing()
        if src is None or not missing or self._wanted is None:
            return False
        level, (x0, y0, x1, y1) = self._wanted
        n = src.span(level)
        cx, cy = (x0 + x1) / 2 / n - 0.5, (y0 + y1) / 2 / n - 0.5
        missing.sort(key=lambda t: (t[0] - cx) ** 2 + (t[1] - cy) ** 2)
        deadline = None if budget is None else time.perf_counter() + budget
        done = QRectF()
        for tx, ty in missing:
            if deadline is not None and time.perf_counter() >= deadline:
                break
            src.tile(level, tx, ty)
            a, b, c, d = src.tile_rect(level, tx, ty)
            done = done.united(QRectF(a, b, c - a, d - b))
        if not done.isEmpty():
            self.update(done)
        left = bool(self._missing())
        if not left:
            self._previous = None
        return left

    def settle(self) -> None:
        """Build every visible tile now (tests, benchmarks)."""
        self.build_missing(None)


class TileBuilder(QObject):
    """Builds the tiles layers could not build within a paint, a few per event-loop turn."""

    _instance: TileBuilder | None = None

    def __init__(self) -> None:
        """An idle builder."""
        super().__init__()
        self._items: list[ArrayImageItem] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._turn)

    @classmethod
    def instance(cls) -> TileBuilder:
        """The application's builder."""
        if cls._instance is None:
            cls._instance = TileBuilder()
        return cls._instance

    @property
    def busy(self) -> bool:
        """Whether layers wait for tiles."""
        return bool(self._items)

    def request(self, item: ArrayImageItem) -> None:
        """Build ``item``'s missing visible tiles soon."""
        if item not in self._items:
            self._items.append(item)
        if not self._timer.isActive():
            self._timer.start()

    def _turn(self) -> None:
        deadline = time.perf_counter() + TURN_BUDGET
        items, self._items = self._items, []
        for item in items:
            left = deadline - time.perf_counter()
            try:
                more = left <= 0 or item.build_missing(left)
            except RuntimeError:  # the item was deleted with its scene
                continue
            if more and item not in self._items:
                self._items.append(item)
        if self._items:
            self._timer.start()


def _int_rect(r: QRectF) -> Rect:
    """The image pixels ``(x0, y0, x1, y1)`` a rectangle touches."""
    return (math.floor(r.left()), math.floor(r.top()), math.ceil(r.right()),
            math.ceil(r.bottom()))
