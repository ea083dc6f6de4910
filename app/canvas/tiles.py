"""Tiles of a layer: the level-of-detail grid, tile sources and the cache they share.

A layer's pixels come from a :class:`TileSource` (the image, a label mask, a heatmap...) in
tiles of :data:`TILE` x :data:`TILE` pixels at power-of-two levels: a tile of level ``L``
covers ``TILE * 2**L`` image pixels on a side, sampled every ``2**L`` pixels, so a view
zoomed out to ``z`` draws level ``floor(log2(1 / z))`` (between 1x and 2x the pixels it
shows) and never more than about a screenful of tiles, whatever the image's size. Tiles
are built lazily from numpy arrays when first drawn and kept in one :class:`TileCache`
shared by every canvas (least recently used dropped first, bounded by bytes): only tiles
that were visible are ever built.

A source that changes in place (a brush stroke, a prediction's tiles landing) reports the
changed rectangle with :meth:`TileSource.changed`: the cached tiles it touches are marked
stale (drawn until rebuilt, so nothing flickers) or, where the source can, updated in place.
"""

from __future__ import annotations

import itertools
import math
import os
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtGui import QImage

__all__ = ["TILE", "Tile", "TileCache", "TileSource", "level_for", "tile_cache"]

TILE = 512
"""Tile side, in pixels of its level."""
CACHE_ENV = "FCN_STUDIO_TILE_CACHE_MB"
DEFAULT_CACHE_MB = 256
"""The shared tile cache's budget (about 256 tiles of 512 x 512 ARGB)."""

Rect = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)``: image pixels, half-open."""


def level_for(zoom: float, max_level: int) -> int:
    """The level drawn at ``zoom`` (screen pixels per image pixel): ``floor(log2(1 / zoom))``
    clipped to ``0..max_level``, whose pixels cover half a screen pixel to one (level 0
    above 50%)."""
    if zoom <= 0 or not math.isfinite(zoom):
        return max_level
    if zoom >= 1.0:
        return 0
    return max(0, min(max_level, math.floor(-math.log2(zoom) + 1e-9)))


def levels_for(size: tuple[int, int]) -> int:
    """The coarsest level of an image of ``size`` ``(W, H)``: one tile covers it."""
    side = max(size)
    return max(0, math.ceil(math.log2(side / TILE))) if side > TILE else 0


@dataclass
class Tile:
    """A built tile: its QImage (on ``array``'s memory when there is one) and whether the
    source changed under it since (drawn until rebuilt)."""

    image: QImage
    array: np.ndarray | None = None
    stale: bool = False

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return int(self.image.sizeInBytes()) if self.array is None else int(self.array.nbytes)


class TileCache:
    """Values by key, least recently used dropped first once over ``max_bytes``.

    Values are :class:`Tile` objects or arrays (anything with ``nbytes``). One value larger
    than the budget is not kept.
    """

    def __init__(self, max_bytes: int) -> None:
        """An empty cache."""
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = self.evictions = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    @property
    def nbytes(self) -> int:
        """Bytes held now (at most :attr:`max_bytes`)."""
        return self._bytes

    def get(self, key: Hashable) -> Any | None:
        """The value (now the most recently used), or None."""
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return value

    def peek(self, key: Hashable) -> Any | None:
        """The value without touching its recency, or None."""
        return self._items.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` under ``key`` (replacing one) and evict down to the budget."""
        self.discard(key)
        size = int(getattr(value, "nbytes", 0))
        if size > self.max_bytes:
            return
        self._items[key] = value
        self._bytes += size
        while self._bytes > self.max_bytes and self._items:
            _, old = self._items.popitem(last=False)
            self._bytes -= int(getattr(old, "nbytes", 0))
            self.evictions += 1

    def discard(self, key: Hashable) -> None:
        """Drop ``key`` if held."""
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= int(getattr(old, "nbytes", 0))

    def keys_of(self, owner: int) -> list[Hashable]:
        """The keys whose first element is ``owner`` (a source's uid)."""
        return [k for k in self._items if isinstance(k, tuple) and k and k[0] == owner]

    def drop_owner(self, owner: int) -> None:
        """Drop every value of one source."""
        for key in self.keys_of(owner):
            self.discard(key)

    def set_budget(self, max_bytes: int) -> None:
        """A new budget; evicts down to it."""
        self.max_bytes = int(max_bytes)
        while self._bytes > self.max_bytes and self._items:
            _, old = self._items.popitem(last=False)
            self._bytes -= int(getattr(old, "nbytes", 0))
            self.evictions += 1

    def clear(self) -> None:
        """Drop everything."""
        self._items.clear()
        self._bytes = 0


def _budget_from_env() -> int:
    try:
        return max(16, int(os.environ.get(CACHE_ENV, DEFAULT_CACHE_MB))) << 20
    except ValueError:
        return DEFAULT_CACHE_MB << 20


_CACHE: TileCache | None = None


def tile_cache() -> TileCache:
    """The tile cache every canvas shares (budget: ``FCN_STUDIO_TILE_CACHE_MB``, 256)."""
    global _CACHE
    if _CACHE is None:
        _CACHE = TileCache(_budget_from_env())
    return _CACHE


_UIDS = itertools.count(1)


class TileSource:
    """What a layer draws, as tiles built on demand (subclasses implement :meth:`build`).

    Attributes:
        size: ``(W, H)`` in image pixels.
        uid: Identifies the source's tiles in the cache (a new one after :meth:`reset`).
        max_level: The coarsest level (one tile covers the image).
    """

    def __init__(self, size: tuple[int, int], cache: TileCache | None = None) -> None:
        """A source of an image of ``size`` ``(W, H)``."""
        self.size = (int(size[0]), int(size[1]))
        self.uid = next(_UIDS)
        self.max_level = levels_for(self.size)
        self.cache = cache if cache is not None else tile_cache()
        self._full: Any | None = None

    # ------------------------------------------------------------------ geometry
    def span(self, level: int) -> int:
        """Image pixels a tile of ``level`` covers on a side."""
        return TILE << level

    def tile_rect(self, level: int, tx: int, ty: int) -> Rect:
        """The image pixels ``(x0, y0, x1, y1)`` tile ``(tx, ty)`` of ``level`` covers."""
        n = self.span(level)
        w, h = self.size
        return tx * n, ty * n, min(w, (tx + 1) * n), min(h, (ty + 1) * n)

    def tiles_in(self, level: int, rect: Rect) -> Iterator[tuple[int, int]]:
        """Tiles ``(tx, ty)`` of ``level`` meeting ``rect`` (clipped to the image), row by
        row."""
        x0, y0, x1, y1 = rect
        w, h = self.size
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 <= x0 or y1 <= y0:
            return
        n = self.span(level)
        for ty in range(y0 // n, (y1 - 1) // n + 1):
            for tx in range(x0 // n, (x1 - 1) // n + 1):
                yield tx, ty

    def key(self, level: int, tx: int, ty: int) -> tuple[int, int, int, int]:
        """The cache key of a tile."""
        return self.uid, level, tx, ty

    # ------------------------------------------------------------------ tiles
    def cached(self, level: int, tx: int, ty: int) -> Tile | None:
        """The tile if it is in the cache (stale or not), without building it."""
        return self.cache.get(self.key(level, tx, ty))

    def tile(self, level: int, tx: int, ty: int) -> Tile:
        """The tile, built (and cached) unless it is cached and current (a null image
        where the source has nothing to draw)."""
        key = self.key(level, tx, ty)
        tile = self.cache.get(key)
        if tile is not None and not tile.stale:
            return tile
        tile = self.build(level, self.tile_rect(level, tx, ty))
        if tile is None:
            tile = Tile(QImage())  # nothing to draw here: kept, so not asked again
        self.cache.put(key, tile)
        return tile

    def build(self, level: int, rect: Rect) -> Tile | None:
        """Render image pixels ``rect`` every ``2**level`` pixels (subclasses)."""
        raise NotImplementedError

    def changed(self, rect: Rect | None = None) -> None:
        """The pixels of ``rect`` (None: all) changed: cached tiles there become stale
        (subclasses that can, update them in place instead)."""
        self._full = None
        if rect is None:
            for key in self.cache.keys_of(self.uid):
                tile = self.cache.peek(key)
                if tile is not None:
                    tile.stale = True
            return
        for level in range(self.max_level + 1):
            for tx, ty in self.tiles_in(level, rect):
                tile = self.cache.peek(self.key(level, tx, ty))
                if tile is not None:
                    tile.stale = True

    def reset(self) -> None:
        """Forget every tile (a new uid: nothing stale is drawn)."""
        self.cache.drop_owner(self.uid)
        self.uid = next(_UIDS)
        self._full = None

    def release(self) -> None:
        """Drop this source's tiles from the cache (it is no longer shown)."""
        self.cache.drop_owner(self.uid)

    # ------------------------------------------------------------------ whole image
    def full_image(self) -> Any:
        """The whole image at full resolution as an ImageBuffer (memoized until a change).

        For tests and small images: it holds 4 bytes per pixel.
        """
        if self._full is None:
            from app.common.render import ImageBuffer

            tile = self.build(0, (0, 0, *self.size))
            self._full = ImageBuffer(tile.image, tile.array) if tile is not None else None
        return self._full
