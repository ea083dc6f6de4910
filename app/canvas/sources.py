"""Tile sources over numpy arrays: the RGB image, label masks, boolean marks, a QImage.

Each builds a tile of any level from its arrays (:mod:`app.canvas.tiles`):

* :class:`RGBSource`: the photo. Level 0 tiles are slices; coarser ones are area averages.
  The levels from the *base* up (the first whose whole image fits 2048 pixels: level 3 for
  a 10000-pixel side) are kept as a small pyramid (at most 16 MB), each level built from
  the four tiles under it, so zoomed-out views cost no pass over the full image.
* :class:`LabelSource`: a label mask through a 256-entry ARGB table, sampled every
  ``2**level`` pixels (the labels themselves, never blended); optionally only the
  boundaries between regions, one level pixel wide; optionally a prediction still landing
  (:class:`~app.state.partial.PartialResult`): its preview, dimmed, where tiles have not
  landed. A change (a brush stroke) recolors the cached tiles in place.
* :class:`MarksSource`: a color where a function of the sampled pixels is true
  (disagreement and change marks).
* :class:`BufferSource`: an existing :class:`~app.common.render.ImageBuffer` (drawn as it is).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from app.canvas.tiles import Rect, Tile, TileSource
from app.common.render import ImageBuffer, premultiplied, rgb32_image, wrap_argb
from app.state.partial import PartialResult

__all__ = ["BufferSource", "LabelSource", "MarksSource", "RGBSource", "sampled_contours"]

OVERVIEW_SIDE = 2048
"""The RGB pyramid is kept from the first level whose image fits this many pixels."""
PREVIEW_ALPHA = 150
"""Preview pixels are drawn at this alpha (of 255) under the pending-area hatching."""
DIRECT_SIDE = 4096
"""Buffers up to this size are drawn straight from their QImage at every zoom."""


def _sampled_size(rect: Rect, step: int) -> tuple[int, int]:
    x0, y0, x1, y1 = rect
    return -(-(y1 - y0) // step), -(-(x1 - x0) // step)


def area_downsample(region: np.ndarray, step: int) -> np.ndarray:
    """``region`` (H x W x C uint8) averaged over ``step`` x ``step`` blocks (the last ones
    partial); beyond 4x, from every ``step // 4``-th pixel (a 4x4 average of a subsample)."""
    import cv2  # not at start-up

    h, w = region.shape[:2]
    out_w, out_h = -(-w // step), -(-h // step)
    if step >= 8:
        pre = step // 4
        region = cv2.resize(region, (-(-w // pre), -(-h // pre)),
                            interpolation=cv2.INTER_NEAREST)
    return cv2.resize(region, (out_w, out_h), interpolation=cv2.INTER_AREA)


class RGBSource(TileSource):
    """An ``H x W x 3`` uint8 RGB image (not copied: it must not change)."""

    def __init__(self, rgb: np.ndarray) -> None:
        """Tiles of ``rgb``."""
        h, w = rgb.shape[:2]
        super().__init__((w, h))
        self.rgb = rgb
        side, base = max(w, h), 1
        while side > (OVERVIEW_SIDE << base):
            base += 1
        self.base = base
        self._pyramid: dict[tuple[int, int, int], np.ndarray] = {}

    @property
    def pyramid_bytes(self) -> int:
        """Bytes held by the kept coarse levels."""
        return sum(a.nbytes for a in self._pyramid.values())

    def build(self, level: int, rect: Rect) -> Tile:
        """The tile's pixels as an RGB32 image."""
        buf = rgb32_image(self.pixels(level, rect))
        return Tile(buf.image, buf.array)

    def pixels(self, level: int, rect: Rect) -> np.ndarray:
        """The RGB pixels of ``rect`` at ``level`` (``h x w x 3`` uint8, maybe a view)."""
        x0, y0, x1, y1 = rect
        if level == 0:
            return self.rgb[y0:y1, x0:x1]
        if level < self.base:
            return area_downsample(self.rgb[y0:y1, x0:x1], 1 << level)
        n = self.span(level)
        return self._kept(level, x0 // n, y0 // n)

    def _kept(self, level: int, tx: int, ty: int) -> np.ndarray:
        import cv2

        key = (level, tx, ty)
        arr = self._pyramid.get(key)
        if arr is not None:
            return arr
        rect = self.tile_rect(level, tx, ty)
        x0, y0, x1, y1 = rect
        if level == self.base:
            arr = area_downsample(self.rgb[y0:y1, x0:x1], 1 << level)
        else:  # the (up to) four tiles of the level below, halved
            rows, n = [], self.span(level - 1)
            for cy in (2 * ty, 2 * ty + 1):
                if cy * n < self.size[1]:
                    rows.append(np.concatenate([self._kept(level - 1, cx, cy) for cx in (
                        2 * tx, 2 * tx + 1) if cx * n < self.size[0]], axis=1))
            joined = np.concatenate(rows, axis=0)
            h, w = _sampled_size(rect, 1 << level)
            arr = cv2.resize(joined, (w, h), interpolation=cv2.INTER_AREA)
        self._pyramid[key] = arr
        return arr


def sampled_contours(size: tuple[int, int], y0: int, y1: int, x0: int, x1: int, step: int,
                     sample: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """The labels of rows ``y0..y1-1`` x columns ``x0..x1-1`` every ``step``-th pixel where
    a 4-neighbour (one sample away) has another label, 255 elsewhere: region boundaries one
    sample wide, the same whichever tile computes them (``size``: ``(H, W)``).

    ``sample(rows, cols)`` gives the labels at those image rows and columns.
    """
    h, w = size
    ys, xs = np.arange(y0, y1, step), np.arange(x0, x1, step)
    ey = np.clip(np.r_[ys[0] - step, ys, ys[-1] + step], 0, h - 1)
    ex = np.clip(np.r_[xs[0] - step, xs, xs[-1] + step], 0, w - 1)
    lab = sample(ey, ex)
    core = lab[1:-1, 1:-1]
    edge = ((core != lab[:-2, 1:-1]) | (core != lab[2:, 1:-1])
            | (core != lab[1:-1, :-2]) | (core != lab[1:-1, 2:]))
    return np.where(edge, core, np.uint8(255))


NO_LABEL = 255
"""Where a landing prediction has neither a tile nor a preview: drawn as void (clear)."""


class LabelSource(TileSource):
    """An ``H x W`` uint8 label mask (kept by reference) through a 256-entry ARGB table.

    Args:
        labels: The labels (a prediction's, or a mask edited in place); None with
            ``partial``: the landing prediction's labels of ``variant``.
        lut: 256 premultiplied ARGB values (``uint32``); 0 is transparent.
        contours: Draw only the boundaries between regions (one level pixel wide).
        partial: A prediction still landing: final labels where its tiles landed, the
            preview's (upscaled, at :data:`PREVIEW_ALPHA`) elsewhere.
        variant: The variant shown, with ``partial``.
    """

    def __init__(self, labels: np.ndarray | None, lut: np.ndarray, contours: bool = False,
                 partial: PartialResult | None = None, variant: str = "") -> None:
        """A source over ``labels``."""
        if labels is None and partial is None:
            raise ValueError("LabelSource needs labels or a partial result")
        h, w = labels.shape[:2] if labels is not None else partial.size  # type: ignore[union-attr]
        super().__init__((w, h))
        self.labels = labels
        self.contours = contours
        self.partial = partial
        self.variant = variant
        self.lut = np.asarray(lut, np.uint32)
        self._dim = dimmed(self.lut)

    def set_lut(self, lut: np.ndarray) -> None:
        """New colors: every tile is rebuilt (kept ones are recolored when next drawn)."""
        self.lut = np.asarray(lut, np.uint32)
        self._dim = dimmed(self.lut)
        self.changed(None)

    def _final_labels(self) -> np.ndarray | None:
        if self.partial is None:
            return self.labels
        pred = self.partial.prediction
        out = None if pred is None else pred.outputs.get(self.variant)
        return None if out is None else out.labels

    def _preview_labels(self) -> np.ndarray | None:
        pv = self.partial.preview if self.partial is not None else None
        out = None if pv is None else pv.outputs.get(self.variant)
        return None if out is None else out.labels

    def _sample(self, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray | bool]:
        """Labels at image rows ``ys`` x columns ``xs`` and which of them are final (the
        preview's, or :data:`NO_LABEL`, where no tile landed)."""
        lab = self._final_labels()
        part = self.partial
        if part is None:
            return lab[np.ix_(ys, xs)], True  # type: ignore[index]
        final = part.coverage_at(ys, xs) if lab is not None else False
        if final is True:
            return lab[np.ix_(ys, xs)], True  # type: ignore[index]
        pvl = self._preview_labels()
        if pvl is not None:
            iy, ix = part.preview_at(ys, xs)
            other = pvl[np.ix_(iy, ix)]
        else:
            other = np.full((len(ys), len(xs)), NO_LABEL, np.uint8)
        if final is False:
            return other, False
        return np.where(final, lab[np.ix_(ys, xs)], other), final  # type: ignore[index]

    def build(self, level: int, rect: Rect) -> Tile | None:
        """The tile: sampled labels (or their boundaries) through the table."""
        x0, y0, x1, y1 = rect
        s = 1 << level
        final: np.ndarray | bool = True
        if self.contours:
            lab = sampled_contours((self.size[1], self.size[0]), y0, y1, x0, x1, s,
                                   lambda ys, xs: self._sample(ys, xs)[0])
            if self.partial is not None:
                final = self.partial.coverage(y0, y1, x0, x1, s)
        elif self.partial is None:
            lab = self.labels[y0:y1:s, x0:x1:s]  # type: ignore[index]
        else:
            lab, final = self._sample(np.arange(y0, y1, s), np.arange(x0, x1, s))
        if final is True:
            argb = np.take(self.lut, lab)
        elif final is False:
            argb = np.take(self._dim, lab)
        else:
            argb = np.where(final, np.take(self.lut, lab), np.take(self._dim, lab))
        buf = wrap_argb(argb)
        return Tile(buf.image, buf.array)

    def changed(self, rect: Rect | None = None) -> None:
        """Recolor the cached tiles under ``rect`` in place (a brush stroke); with contours
        or a landing prediction, mark them stale instead."""
        if rect is None or self.contours or self.partial is not None:
            super().changed(rect)
            return
        self._full = None
        labels = self.labels
        assert labels is not None
        rx0, ry0, rx1, ry1 = rect
        for level in range(self.max_level + 1):
            s = 1 << level
            for tx, ty in self.tiles_in(level, rect):
                tile = self.cache.peek(self.key(level, tx, ty))
                if tile is None or tile.stale or tile.array is None:
                    continue
                x0, y0, _, _ = self.tile_rect(level, tx, ty)
                th, tw = tile.array.shape
                i0, i1 = max(0, -(-(ry0 - y0) // s)), min(th, -(-(ry1 - y0) // s))
                j0, j1 = max(0, -(-(rx0 - x0) // s)), min(tw, -(-(rx1 - x0) // s))
                if i1 > i0 and j1 > j0:
                    sub = labels[y0 + i0 * s:y0 + i1 * s:s, x0 + j0 * s:x0 + j1 * s:s]
                    np.take(self.lut, sub, out=tile.array[i0:i1, j0:j1])


def dimmed(lut: np.ndarray) -> np.ndarray:
    """``lut`` at :data:`PREVIEW_ALPHA` of its alpha (premultiplied)."""
    a = (lut >> 24).astype(np.uint64) * PREVIEW_ALPHA // 255
    out = np.zeros(256, np.uint64)
    for shift in (16, 8, 0):
        c = (lut >> shift) & 0xFF
        out |= (c.astype(np.uint64) * PREVIEW_ALPHA // 255) << shift
    return (out | (a << 24)).astype(np.uint32)


class MarksSource(TileSource):
    """``color`` where ``marks(y0, y1, x0, x1, step)`` (a bool array of the sampled pixels)
    is true, transparent elsewhere."""

    def __init__(self, size: tuple[int, int],
                 marks: Callable[[int, int, int, int, int], np.ndarray | None],
                 color: tuple[int, int, int]) -> None:
        """A source of ``size`` ``(W, H)``."""
        super().__init__(size)
        self.marks = marks
        self.table = np.array([0, premultiplied(color)], np.uint32)

    def build(self, level: int, rect: Rect) -> Tile | None:
        """The tile: the color where the marks are."""
        x0, y0, x1, y1 = rect
        mask = self.marks(y0, y1, x0, x1, 1 << level)
        if mask is None:
            return None
        buf = wrap_argb(np.take(self.table, np.asarray(mask).view(np.uint8)))
        return Tile(buf.image, buf.array)


class BufferSource(TileSource):
    """An :class:`ImageBuffer` as it is; up to :data:`DIRECT_SIDE` pixels (and at level 0
    always) drawn straight from its QImage, larger ones zoomed out from smooth-scaled tiles."""

    def __init__(self, buffer: ImageBuffer) -> None:
        """A source over ``buffer``'s image."""
        super().__init__(buffer.size)
        self.buffer = buffer
        self.direct = buffer.image
        if max(self.size) <= DIRECT_SIDE:
            self.max_level = 0

    def build(self, level: int, rect: Rect) -> Tile | None:
        """The tile: the buffer's pixels there, scaled down by ``2**level``."""
        from PySide6.QtCore import QRect, Qt

        x0, y0, x1, y1 = rect
        part = self.buffer.image.copy(QRect(x0, y0, x1 - x0, y1 - y0))
        if level == 0:
            return Tile(part)
        h, w = _sampled_size(rect, 1 << level)
        return Tile(part.scaled(w, h, Qt.AspectRatioMode.IgnoreAspectRatio,
                                Qt.TransformationMode.SmoothTransformation))

    def full_image(self) -> ImageBuffer:
        """The buffer itself."""
        return self.buffer

