"""Texture mosaics with exact labels, and simulated scribbles: real pixels, known answers.

A mosaic tiles an image with irregular regions (a random Voronoi partition with wavy
borders), each filled from one texture photograph: the label of every pixel is the texture
it came from. Real photographs (scikit-image ships ``brick``, ``grass``, ``gravel``...) give
realistic images whose ground truth is exact, for tests and benchmarks of training on the
user's own classes. :func:`scribbles` imitates a user's rough labels: a few strokes inside
each class, every other pixel void.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from core.data.palette import VOID

__all__ = ["mosaic", "scribbles"]


def _as_rgb(texture: np.ndarray) -> np.ndarray:
    t = np.asarray(texture)
    if t.dtype != np.uint8:
        raise ValueError(f"textures must be uint8, not {t.dtype}")
    if t.ndim == 2:
        t = np.repeat(t[:, :, None], 3, axis=2)
    if t.ndim != 3 or t.shape[2] not in (3, 4):
        raise ValueError(f"a texture must be H x W or H x W x 3, not {t.shape}")
    return np.ascontiguousarray(t[:, :, :3])


def mosaic(
    textures: Sequence[np.ndarray],
    size: tuple[int, int],
    seed: int,
    *,
    regions: int = 12,
    part: tuple[float, float] = (0.0, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """An ``H x W x 3`` mosaic of ``textures`` and its ``H x W`` uint8 label mask.

    Args:
        textures: One image per class (gray or RGB uint8), at least ``size`` large within
            ``part``; class ``k`` is ``textures[k]``.
        size: ``(H, W)`` of the mosaic.
        seed: Seeds the partition and the crops.
        regions: Voronoi cells; each gets a random class (every class appears when
            ``regions >= len(textures)``).
        part: The horizontal fraction of each texture crops are taken from, e.g.
            ``(0, 0.5)`` for training mosaics and ``(0.5, 1)`` for held-out ones, so that
            held-out pixels were never seen.

    Raises:
        ValueError: A texture that is too small, or bad arguments.
    """
    h, w = size
    rng = np.random.default_rng(seed)
    tex = [_as_rgb(t) for t in textures]
    if not tex or regions < 1 or h < 1 or w < 1:
        raise ValueError("a mosaic needs textures, regions and a size")
    labels_of = np.concatenate([rng.permutation(len(tex)),
                                rng.integers(0, len(tex), max(0, regions - len(tex)))])
    labels_of = labels_of[:regions]
    centers = rng.uniform((0, 0), (h, w), (regions, 2))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # wavy borders: displace the coordinates with smooth random noise before the Voronoi test
    amp = 0.04 * max(h, w)
    fy, fx = rng.uniform(2, 5, 2) * 2 * np.pi / max(h, w)
    py, px = rng.uniform(0, 2 * np.pi, 2)
    wy = yy + amp * np.sin(xx * fx + py)
    wx = xx + amp * np.sin(yy * fy + px)
    dist = (wy[None] - centers[:, 0, None, None]) ** 2 + (wx[None] - centers[:, 1, None, None]) ** 2
    cell = np.argmin(dist, axis=0)
    mask = labels_of[cell].astype(np.uint8)
    rgb = np.zeros((h, w, 3), np.uint8)
    for k, t in enumerate(tex):
        th, tw = t.shape[:2]
        x_lo, x_hi = int(part[0] * tw), int(part[1] * tw)
        if th < h or x_hi - x_lo < w:
            raise ValueError(f"texture {k} ({th}x{tw}, part {part}) is smaller than {h}x{w}")
        y0 = int(rng.integers(0, th - h + 1))
        x0 = int(rng.integers(x_lo, x_hi - w + 1))
        where = mask == k
        rgb[where] = t[y0:y0 + h, x0:x0 + w][where]
    return rgb, mask


def scribbles(mask: np.ndarray, fraction: float, seed: int, *, width: int = 5,
              margin: int = 4, objects: int = 8) -> np.ndarray:
    """Rough labels drawn on ``mask``: strokes inside each class covering about ``fraction``
    of its pixels; every other pixel is void (255).

    As a user does, strokes go on several objects of each class (its ``objects`` largest
    connected parts, in turn) and stay at least ``margin`` pixels inside them (not on their
    borders). Each stroke is a random walk of a round brush of ``width`` pixels. A class too
    thin for the margin keeps at least one dot.
    """
    rng = np.random.default_rng(seed)
    out = np.full(mask.shape, VOID, np.uint8)
    for c in np.unique(mask):
        if c == VOID:
            continue
        region = (mask == c).astype(np.uint8)
        inner = cv2.erode(region, np.ones((2 * margin + 1,) * 2, np.uint8))
        if not inner.any():
            inner = region
        n, comp, stats, _ = cv2.connectedComponentsWithStats(inner, connectivity=8)
        parts = sorted(range(1, n), key=lambda k: -stats[k, cv2.CC_STAT_AREA])[:objects]
        pixels = [np.nonzero(comp == k) for k in parts]
        target = max(1, int(fraction * region.sum()))
        drawn = np.zeros_like(region)
        for stroke in range(200):
            if int(drawn.sum()) >= target:
                break
            ys, xs = pixels[stroke % len(pixels)]
            _stroke(drawn, inner, xs, ys, rng, width, target)
        out[(drawn > 0) & (region > 0)] = c
    return out


def _stroke(drawn: np.ndarray, inner: np.ndarray, xs: np.ndarray, ys: np.ndarray,
            rng: np.random.Generator, width: int, target: int) -> None:
    """One random-walk stroke from a random pixel of a part, staying inside ``inner``."""
    h, w = inner.shape
    k = int(rng.integers(len(ys)))
    p = np.array([xs[k], ys[k]], np.float64)
    cv2.circle(drawn, (int(xs[k]), int(ys[k])), max(1, width // 2), 1, -1)
    heading = rng.uniform(0, 2 * np.pi)
    for _step in range(40):
        heading += rng.normal(0, 0.4)
        q = p + 6 * np.array([np.cos(heading), np.sin(heading)])
        qi = np.round(q).astype(int)
        if not (0 <= qi[0] < w and 0 <= qi[1] < h) or not inner[qi[1], qi[0]]:
            return
        cv2.line(drawn, tuple(np.round(p).astype(int)), tuple(qi), 1, width)
        p = q
        if int(drawn.sum()) >= target:
            return
