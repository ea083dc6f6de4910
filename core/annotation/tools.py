"""Painting tools as pure functions: each returns a :class:`~core.annotation.labels.Region`.

Point coordinates are ``(x, y)`` in pixel units with pixel ``[row i, column j]`` centred at
``(j, i)`` (a Qt scene position ``p`` on an unscaled image maps to ``p - 0.5``). Brush and
polygon footprints are computed inside their own bounding box only, so their cost does not
depend on the image size.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import cv2
import numpy as np

from core.annotation.labels import BBox, Region
from core.errors import ArgumentError

__all__ = [
    "brush_stroke",
    "disk",
    "eyedropper",
    "flood_fill",
    "lasso",
    "polygon_fill",
]

_EPS = 1e-6  # pixels at distance exactly ``radius`` are painted despite rounding
_FIXED_SHIFT = 8  # sub-pixel bits for cv2.fillPoly


def _points(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    try:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ArgumentError(f"points must be (x, y) numbers: {exc}") from exc
    if not np.isfinite(pts).all():
        raise ArgumentError("points must be finite")
    return pts


def _finite(value: object, what: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (ValueError, TypeError, OverflowError) as exc:
        raise ArgumentError(f"{what} must be a number, not {value!r}") from exc
    if not math.isfinite(v):
        raise ArgumentError(f"{what} must be finite, not {value!r}")
    return v


def _interval(coef: float, k: np.ndarray, lo: float, hi: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``lo <= coef * x + k <= hi`` for x, per row; empty rows get lo > hi."""
    if coef > 0:
        return (lo - k) / coef, (hi - k) / coef
    if coef < 0:
        return (hi - k) / coef, (lo - k) / coef
    inside = (k >= lo) & (k <= hi)
    return np.where(inside, -np.inf, np.inf), np.where(inside, np.inf, -np.inf)


def _capsule_rows(a: np.ndarray, b: np.ndarray, r: float, ys: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """For rows ``ys``, the x interval within distance ``r`` of segment ``ab``."""
    lo = np.full(ys.shape, np.inf)
    hi = np.full(ys.shape, -np.inf)
    for c in (a, b) if (a != b).any() else (a,):
        dy = ys - c[1]
        h2 = r * r - dy * dy
        ok = h2 >= 0
        h = np.sqrt(np.where(ok, h2, 0.0))
        lo = np.where(ok, np.minimum(lo, c[0] - h), lo)
        hi = np.where(ok, np.maximum(hi, c[0] + h), hi)
    d = b - a
    length2 = float(d @ d)
    if length2 > 0:
        length = math.sqrt(length2)
        rel_y = ys - a[1]
        # 0 <= (x - ax) dx + (y - ay) dy <= |d|^2
        l1, h1 = _interval(float(d[0]), rel_y * d[1] - a[0] * d[0], 0.0, length2)
        # |(x - ax) dy - (y - ay) dx| <= r |d|
        l2, h2_ = _interval(float(d[1]), -rel_y * d[0] - a[0] * d[1], -r * length, r * length)
        blo, bhi = np.maximum(l1, l2), np.minimum(h1, h2_)
        ok = blo <= bhi
        lo = np.where(ok, np.minimum(lo, blo), lo)
        hi = np.where(ok, np.maximum(hi, bhi), hi)
    return lo, hi


def brush_stroke(points: Sequence[Sequence[float]] | np.ndarray, radius: float,
                 shape: tuple[int, int]) -> Region:
    """Footprint of a round brush of ``radius`` dragged along the polyline ``points``.

    A pixel is painted when its centre lies within ``radius`` of the polyline, so the
    footprint is the union of capsules around each segment: fast mouse moves leave no gaps
    and the ends are round. A single point gives a disk. The work is proportional to the
    stroke's bounding box, never to the image.

    Args:
        points: ``(x, y)`` points, at least one.
        radius: Brush radius in pixels (0 paints the pixels the polyline passes through
            the centre of; a brush of size ``s`` is radius ``(s - 1) / 2``).
        shape: ``(height, width)`` of the image (the footprint is clipped to it).
    """
    pts = _points(points)
    if len(pts) == 0:
        return Region.empty()
    radius = _finite(radius, "brush radius")
    if radius < 0:
        raise ArgumentError(f"brush radius must be >= 0, not {radius}")
    h, w = int(shape[0]), int(shape[1])
    r = float(radius) + _EPS
    x0 = max(0, math.ceil(pts[:, 0].min() - r))
    y0 = max(0, math.ceil(pts[:, 1].min() - r))
    x1 = min(w, math.floor(pts[:, 0].max() + r) + 1)
    y1 = min(h, math.floor(pts[:, 1].max() + r) + 1)
    bbox = BBox(x0, y0, max(x0, x1), max(y0, y1))
    if bbox.empty:
        return Region.empty()
    mask = np.zeros((bbox.height, bbox.width), bool)
    flat = mask.reshape(-1)
    segments = list(itertools.pairwise(pts)) if len(pts) > 1 else [(pts[0], pts[0])]
    for a, b in segments:
        sy0 = max(y0, math.ceil(min(a[1], b[1]) - r))
        sy1 = min(y1, math.floor(max(a[1], b[1]) + r) + 1)
        if sy1 <= sy0:
            continue
        ys = np.arange(sy0, sy1, dtype=np.float64)
        lo, hi = _capsule_rows(a, b, r, ys)
        c0 = np.ceil(np.clip(lo, x0, x1)).astype(np.int64)
        c1 = np.floor(np.clip(hi, x0 - 1, x1 - 1)).astype(np.int64)
        ok = (lo <= hi) & (c1 >= c0)
        if not ok.any():
            continue
        rows = ys[ok].astype(np.int64) - y0
        c0, c1 = c0[ok] - x0, c1[ok] - x0
        lengths = c1 - c0 + 1
        starts = rows * bbox.width + c0
        # flat indices of every painted pixel: O(painted), not O(bbox)
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        flat[offsets + np.arange(int(lengths.sum()))] = True
    return Region(bbox, mask)


def disk(radius: float) -> np.ndarray:
    """The brush footprint of ``radius`` as a square boolean array (e.g. for the cursor)."""
    c = math.floor(radius + _EPS)
    return brush_stroke([(c, c)], radius, (2 * c + 1, 2 * c + 1)).mask


def polygon_fill(points: Sequence[Sequence[float]] | np.ndarray, shape: tuple[int, int]
                 ) -> Region:
    """Footprint of a filled polygon (edges included), rasterized within its bounding box.

    Uses ``cv2.fillPoly`` with sub-pixel vertices, so the result is the same wherever the
    polygon lies (translation by whole pixels moves it exactly). Fewer than three points
    give an empty region.
    """
    pts = _points(points)
    if len(pts) < 3:
        return Region.empty()
    h, w = int(shape[0]), int(shape[1])
    full = BBox(math.floor(pts[:, 0].min()) - 1, math.floor(pts[:, 1].min()) - 1,
                math.ceil(pts[:, 0].max()) + 2, math.ceil(pts[:, 1].max()) + 2)
    bbox = full.intersect(BBox(0, 0, w, h))
    if bbox.empty:
        return Region.empty()
    canvas = np.zeros((bbox.height, bbox.width), np.uint8)
    local = np.round((pts - (bbox.x0, bbox.y0)) * (1 << _FIXED_SHIFT)).astype(np.int32)
    cv2.fillPoly(canvas, [local.reshape(-1, 1, 2)], 1, lineType=cv2.LINE_8, shift=_FIXED_SHIFT)
    return Region(bbox, canvas.astype(bool))


def lasso(points: Sequence[Sequence[float]] | np.ndarray, shape: tuple[int, int]) -> Region:
    """Footprint of a freehand lasso: the closed path through ``points``, filled."""
    return polygon_fill(points, shape)


def flood_fill(mask: np.ndarray, seed_xy: tuple[int, int], connectivity: int = 4, *,
               contiguous: bool = True) -> Region:
    """The contiguous region of pixels with the seed's label (4- or 8-connected), or with
    ``contiguous=False`` every pixel of that label in the image.

    Raises:
        ValueError: The seed is outside the image or connectivity is not 4 or 8.
    """
    if connectivity not in (4, 8):
        raise ArgumentError(f"connectivity must be 4 or 8, not {connectivity}")
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    h, w = mask.shape
    x, y = round(_finite(seed_xy[0], "x")), round(_finite(seed_xy[1], "y"))
    if not (0 <= x < w and 0 <= y < h):
        raise ArgumentError(f"seed {(x, y)} is outside the {w}x{h} image")
    if not contiguous:
        same = mask == mask[y, x]
        rows, cols = np.flatnonzero(same.any(axis=1)), np.flatnonzero(same.any(axis=0))
        bbox = BBox(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        return Region(bbox, same[bbox.slices])
    ff = np.zeros((h + 2, w + 2), np.uint8)
    flags = connectivity | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
    _, _, _, (rx, ry, rw, rh) = cv2.floodFill(mask, ff, (x, y), 0, 0, 0, flags)
    bbox = BBox(rx, ry, rx + rw, ry + rh)
    return Region(bbox, ff[1 + ry : 1 + ry + rh, 1 + rx : 1 + rx + rw].astype(bool))


def eyedropper(mask: np.ndarray, xy: tuple[float, float]) -> int:
    """The label under point ``xy`` (rounded to the nearest pixel centre).

    Raises:
        ValueError: The point is outside the image.
    """
    try:
        px, py = xy
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"a point is (x, y), not {xy!r}") from exc
    x, y = round(_finite(px, "x")), round(_finite(py, "y"))
    h, w = np.shape(mask)[:2]
    if not (0 <= x < w and 0 <= y < h):
        raise ArgumentError(f"point {(x, y)} is outside the {w}x{h} image")
    return int(mask[y, x])
