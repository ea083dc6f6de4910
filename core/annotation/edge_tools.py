"""Edge-aware painting tools: superpixel brush and fill, magic wand, polygon snap to edges.

Like :mod:`core.annotation.tools`, each returns a :class:`~core.annotation.labels.Region`
(a bounding box and a footprint) that :meth:`LabelImage.paint` applies as one undoable
edit, or, for :func:`snap_polygon`, the polygon's new points for
:func:`~core.annotation.tools.polygon_fill`. Point coordinates are ``(x, y)`` with pixel
``[row i, column j]`` centred at ``(j, i)``.

* :class:`Superpixels`: SLIC superpixels (scikit-image, Achanta et al., TPAMI 2012) of an
  image, computed once per image (about 0.3 s at 512 x 512). :func:`superpixel_brush` paints
  the superpixels a brush stroke touches, :func:`superpixel_fill` the one under a click and,
  with a tolerance, its neighbours of similar colour.
* :func:`magic_wand`: region growing by colour tolerance from a seed (``cv2.floodFill``).
* :func:`snap_polygon`: each vertex moves to a corner near it (Shi-Tomasi response, placed
  by Förstner's least squares) or else to the strongest edge, each side follows the image's
  edges between them (OpenCV's intelligent scissors, a live-wire shortest path), and the
  points on edges are placed between the two pixels across the edge (sub-pixel).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from core.annotation.labels import BBox, Region
from core.annotation.tools import _finite, _points, brush_stroke
from core.errors import ArgumentError

__all__ = [
    "Superpixels",
    "edge_strength",
    "magic_wand",
    "snap_polygon",
    "superpixel_brush",
    "superpixel_fill",
]


def _rgb(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ArgumentError(f"an image is H x W x 3 uint8, not {a.shape} {a.dtype}")
    return np.ascontiguousarray(a)


def _seed(xy: Sequence[float], shape: tuple[int, ...]) -> tuple[int, int]:
    x, y = round(_finite(xy[0], "x")), round(_finite(xy[1], "y"))
    if not (0 <= x < shape[1] and 0 <= y < shape[0]):
        raise ArgumentError(f"point {(x, y)} is outside the {shape[1]}x{shape[0]} image")
    return x, y


def _region(mask: np.ndarray) -> Region:
    """A full-size boolean mask trimmed to its bounding box."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return Region.empty()
    box = BBox(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    return Region(box, np.ascontiguousarray(mask[box.slices]))


class Superpixels:
    """SLIC superpixels of one image, with what the tools need about each.

    Attributes:
        labels: ``(H, W)`` int32 superpixel ids ``0 .. count - 1``.
        count: Number of superpixels.
        boxes: ``(count, 4)`` int: each one's ``x0, y0, x1, y1``.
        colors: ``(count, 3)`` float: each one's mean CIELAB colour.
        neighbours: ``(pairs, 2)`` int: ids of 4-adjacent superpixels (each pair once).
    """

    def __init__(self, image: np.ndarray, *, size: int = 16, compactness: float = 10.0
                 ) -> None:
        """Compute the superpixels of an ``H x W x 3`` uint8 RGB image.

        Args:
            image: The image.
            size: Typical superpixel side in pixels (SLIC's ``n_segments`` = area / size²).
            compactness: SLIC's trade-off of colour against distance (higher: squarer).
        """
        from skimage.segmentation import slic

        rgb = _rgb(image)
        h, w = rgb.shape[:2]
        if size < 2:
            raise ArgumentError(f"superpixel size must be at least 2, not {size}")
        labels = slic(rgb, n_segments=max(1, (h * w) // (size * size)),
                      compactness=float(compactness), start_label=0, channel_axis=-1,
                      enforce_connectivity=True)
        self.labels = np.ascontiguousarray(labels, dtype=np.int32)
        self.count = int(self.labels.max()) + 1
        flat = self.labels.ravel()
        ys, xs = np.divmod(np.arange(flat.size), w)
        boxes = np.empty((self.count, 4), np.int64)
        boxes[:, 0] = np.full(self.count, w)
        boxes[:, 1] = np.full(self.count, h)
        boxes[:, 2:] = -1
        np.minimum.at(boxes[:, 0], flat, xs)
        np.minimum.at(boxes[:, 1], flat, ys)
        np.maximum.at(boxes[:, 2], flat, xs + 1)
        np.maximum.at(boxes[:, 3], flat, ys + 1)
        self.boxes = boxes
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
        lab[:, 0] *= 100 / 255  # OpenCV's 8-bit Lab: L scaled to 0..255, a and b offset 128
        lab[:, 1:] -= 128
        sizes = np.bincount(flat, minlength=self.count)
        self.colors = np.stack([np.bincount(flat, lab[:, c], self.count) for c in range(3)],
                               axis=1) / np.maximum(sizes, 1)[:, None]
        pairs = np.concatenate([
            np.stack([self.labels[:, :-1].ravel(), self.labels[:, 1:].ravel()], 1),
            np.stack([self.labels[:-1].ravel(), self.labels[1:].ravel()], 1)])
        pairs = np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)
        self.neighbours = np.unique(pairs, axis=0)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the image."""
        return self.labels.shape  # type: ignore[return-value]

    def at(self, xy: Sequence[float]) -> int:
        """The superpixel under point ``xy``."""
        x, y = _seed(xy, self.shape)
        return int(self.labels[y, x])

    def region(self, ids: Sequence[int] | np.ndarray) -> Region:
        """The union of superpixels ``ids`` as a footprint."""
        ids = np.unique(np.asarray(ids, np.int64))
        if ids.size == 0:
            return Region.empty()
        b = self.boxes[ids]
        box = BBox(int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()),
                   int(b[:, 3].max()))
        return Region(box, np.isin(self.labels[box.slices], ids))


def superpixel_brush(superpixels: Superpixels, points: Sequence[Sequence[float]],
                     radius: float, *, min_cover: float = 0.0) -> Region:
    """The superpixels a round brush dragged along ``points`` touches.

    Args:
        superpixels: The image's superpixels.
        points: The stroke's ``(x, y)`` points.
        radius: Brush radius (see :func:`~core.annotation.tools.brush_stroke`).
        min_cover: Take a superpixel only when the brush covers more than this fraction
            of it (0: any touch).
    """
    stroke = brush_stroke(points, radius, superpixels.shape)
    if stroke.count == 0:
        return Region.empty()
    touched = superpixels.labels[stroke.bbox.slices][stroke.mask]
    ids, hits = np.unique(touched, return_counts=True)
    if min_cover > 0:
        sizes = np.bincount(superpixels.labels.ravel(), minlength=superpixels.count)
        ids = ids[hits > min_cover * sizes[ids]]
    return superpixels.region(ids)


def superpixel_fill(superpixels: Superpixels, seed_xy: Sequence[float], *,
                    tolerance: float = 0.0) -> Region:
    """The superpixel under ``seed_xy`` and, with ``tolerance`` > 0, every superpixel
    connected to it through neighbours whose mean colour is within ``tolerance`` (CIELAB
    distance, about 2.3 = just noticeable) of the seed's."""
    seed = superpixels.at(seed_xy)
    if tolerance <= 0:
        return superpixels.region([seed])
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    close = np.linalg.norm(superpixels.colors - superpixels.colors[seed], axis=1) <= tolerance
    pairs = superpixels.neighbours[close[superpixels.neighbours].all(axis=1)]
    n = superpixels.count
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    return superpixels.region(np.flatnonzero(component == component[seed]))


def magic_wand(image: np.ndarray, seed_xy: Sequence[float], tolerance: float = 24.0, *,
               connectivity: int = 8, contiguous: bool = True) -> Region:
    """Pixels whose colour is within ``tolerance`` of the seed's on every channel (0-255).

    Args:
        image: ``H x W x 3`` uint8 RGB.
        seed_xy: The clicked point.
        tolerance: Largest per-channel difference from the seed pixel's colour.
        connectivity: 4 or 8: how the region grows.
        contiguous: Only the region connected to the seed (else every such pixel).
    """
    rgb = _rgb(image)
    x, y = _seed(seed_xy, rgb.shape)
    tol = _finite(tolerance, "tolerance")
    if not 0 <= tol <= 255:
        raise ArgumentError(f"tolerance must be in 0..255, not {tolerance}")
    if connectivity not in (4, 8):
        raise ArgumentError(f"connectivity must be 4 or 8, not {connectivity}")
    if not contiguous:
        diff = np.abs(rgb.astype(np.int16) - rgb[y, x].astype(np.int16)).max(axis=2)
        return _region(diff <= tol)
    h, w = rgb.shape[:2]
    ff = np.zeros((h + 2, w + 2), np.uint8)
    flags = connectivity | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
    t = (math.floor(tol),) * 3
    _, _, _, (rx, ry, rw, rh) = cv2.floodFill(rgb.copy(), ff, (x, y), 0, t, t, flags)
    box = BBox(rx, ry, rx + rw, ry + rh)
    return Region(box, ff[1 + ry: 1 + ry + rh, 1 + rx: 1 + rx + rw].astype(bool))


def edge_strength(image: np.ndarray, sigma: float = 1.0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(magnitude, gx, gy)`` of the colour gradient of a Gaussian-smoothed image.

    The magnitude sums the squared Sobel gradients of the three channels; the direction is
    that of the channel with the strongest gradient at each pixel.
    """
    f = cv2.GaussianBlur(_rgb(image).astype(np.float32), (0, 0), sigma) if sigma > 0 else \
        _rgb(image).astype(np.float32)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
    sq = gx * gx + gy * gy
    strongest = np.argmax(sq, axis=2)[..., None]
    return (np.sqrt(sq.sum(axis=2)), np.take_along_axis(gx, strongest, 2)[..., 0],
            np.take_along_axis(gy, strongest, 2)[..., 0])


def _bilinear(m: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return cv2.remap(m, x.astype(np.float32).reshape(-1, 1), y.astype(np.float32).reshape(-1, 1),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).ravel()


def _subpixel(points: np.ndarray, mag: np.ndarray, gx: np.ndarray, gy: np.ndarray
              ) -> np.ndarray:
    """Move integer points along the gradient to the peak of the edge (parabola fit)."""
    if len(points) == 0:
        return points
    xi = np.clip(np.round(points[:, 0]).astype(int), 0, mag.shape[1] - 1)
    yi = np.clip(np.round(points[:, 1]).astype(int), 0, mag.shape[0] - 1)
    dx, dy = gx[yi, xi], gy[yi, xi]
    norm = np.hypot(dx, dy)
    ok = norm > 1e-6
    dx, dy = np.where(ok, dx / np.maximum(norm, 1e-6), 0), np.where(ok, dy / np.maximum(norm,
                                                                                      1e-6), 0)
    m0 = mag[yi, xi]
    mm = _bilinear(mag, xi - dx, yi - dy)
    mp = _bilinear(mag, xi + dx, yi + dy)
    denom = mm - 2 * m0 + mp
    t = np.where(denom < -1e-6, 0.5 * (mm - mp) / np.where(denom < -1e-6, denom, -1), 0.0)
    t = np.clip(t, -0.5, 0.5)
    return np.stack([xi + t * dx, yi + t * dy], axis=1)


def snap_polygon(image: np.ndarray, points: Sequence[Sequence[float]] | np.ndarray, *,
                 radius: float = 6.0, follow_edges: bool = True, max_detour: float = 2.5,
                 min_strength: float = 0.1) -> np.ndarray:
    """A polygon's points snapped to the image's corners and edges.

    Args:
        image: ``H x W x 3`` uint8 RGB.
        points: The polygon's ``(x, y)`` vertices.
        radius: How far a vertex may move to reach a corner or, failing one, an edge.
        follow_edges: Replace each side by the live-wire path along the edges between its
            snapped ends (else only the vertices move).
        max_detour: Keep a straight side when the path is longer than this many times it.
        min_strength: A vertex moves only to a corner or an edge at least this fraction of
            the image's strongest one.

    Returns:
        ``(N, 2)`` float ``(x, y)`` points (at sub-pixel positions on the edges).
    """
    rgb = _rgb(image)
    pts = _points(points)
    if len(pts) < 2:
        return pts
    h, w = rgb.shape[:2]
    mag, gx, gy = edge_strength(rgb)
    corner = _corner_response(rgb)
    floor = max(min_strength * float(mag.max()), 1.0)  # a flat image has no edge
    corner_floor = max(min_strength * float(corner.max()), 1.0)
    r = max(0.0, _finite(radius, "radius"))
    ri = math.floor(r)
    oy, ox = np.mgrid[-ri: ri + 1, -ri: ri + 1]
    inside = oy * oy + ox * ox <= r * r
    oy, ox = oy[inside], ox[inside]
    near = 1 - 0.3 * np.hypot(ox, oy) / max(r, 1)  # prefer nearer edges a little
    snapped = pts.copy()
    at_corner = np.zeros(len(pts), bool)
    for k, (px, py) in enumerate(pts):
        cx = int(np.clip(round(px), 0, w - 1))
        cy = int(np.clip(round(py), 0, h - 1))
        ys, xs = np.clip(cy + oy, 0, h - 1), np.clip(cx + ox, 0, w - 1)
        best = int(np.argmax(corner[ys, xs] * near))
        if corner[ys[best], xs[best]] >= corner_floor:  # a vertex goes to a corner first
            snapped[k] = _corner_subpixel(rgb, xs[best], ys[best], max(3, ri))
            at_corner[k] = True
            continue
        best = int(np.argmax(mag[ys, xs] * near))
        if mag[ys[best], xs[best]] >= floor:
            snapped[k] = (xs[best], ys[best])
    on_edge = ~at_corner & (mag[np.round(snapped[:, 1]).astype(int).clip(0, h - 1),
                                 np.round(snapped[:, 0]).astype(int).clip(0, w - 1)] >= floor)
    snapped[on_edge] = _subpixel(snapped[on_edge], mag, gx, gy)
    if not follow_edges:
        return snapped
    out: list[np.ndarray] = []
    for k in range(len(snapped)):
        a, b = snapped[k], snapped[(k + 1) % len(snapped)]
        path = _live_wire(rgb, a, b, max_detour)[1:-1]
        if len(path):
            strong = mag[path[:, 1].astype(int), path[:, 0].astype(int)] >= floor
            path[strong] = _subpixel(path[strong], mag, gx, gy)
        out.extend([a[None], path])
    return np.concatenate(out)


def _corner_response(rgb: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """The smaller eigenvalue of the colour structure tensor (Shi-Tomasi), square-rooted."""
    f = rgb.astype(np.float32)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = ((gx * gx).sum(2), (gy * gy).sum(2), (gx * gy).sum(2))
    jxx, jyy, jxy = (cv2.GaussianBlur(j, (0, 0), sigma) for j in (jxx, jyy, jxy))
    low = 0.5 * (jxx + jyy) - np.sqrt(0.25 * (jxx - jyy) ** 2 + jxy * jxy)
    return np.sqrt(np.maximum(low, 0))


def _corner_subpixel(rgb: np.ndarray, x: int, y: int, r: int) -> tuple[float, float]:
    """The point nearest, in least squares, to every gradient line in a window (Förstner's
    corner estimate, which ``cv2.cornerSubPix`` uses on gray images), on all channels."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(0, x - r - 1), max(0, y - r - 1), min(w, x + r + 2), min(h, y + r + 2)
    f = rgb[y0:y1, x0:x1].astype(np.float64)
    gx = cv2.Sobel(f, cv2.CV_64F, 1, 0, ksize=3)[1:-1, 1:-1]
    gy = cv2.Sobel(f, cv2.CV_64F, 0, 1, ksize=3)[1:-1, 1:-1]
    ys, xs = np.mgrid[y0 + 1: y1 - 1, x0 + 1: x1 - 1].astype(np.float64)
    a = np.array([[(gx * gx).sum(), (gx * gy).sum()], [(gx * gy).sum(), (gy * gy).sum()]])
    b = np.array([((gx * gx) * xs[..., None] + (gx * gy) * ys[..., None]).sum(),
                  ((gx * gy) * xs[..., None] + (gy * gy) * ys[..., None]).sum()])
    if np.linalg.cond(a) > 1e6:
        return float(x), float(y)
    q = np.linalg.solve(a, b)
    if np.hypot(q[0] - x, q[1] - y) > r:
        return float(x), float(y)
    return float(q[0]), float(q[1])


def _live_wire(rgb: np.ndarray, a: np.ndarray, b: np.ndarray, max_detour: float) -> np.ndarray:
    """Points from ``a`` to ``b`` (both included) along the image's edges (intelligent
    scissors on a crop around the side), or the straight side when the path wanders."""
    straight = np.array([a, b], np.float64)
    length = float(np.hypot(*(b - a)))
    if length < 2:
        return straight
    h, w = rgb.shape[:2]
    margin = int(max(8, 0.25 * length))
    box = BBox(max(0, int(min(a[0], b[0])) - margin), max(0, int(min(a[1], b[1])) - margin),
               min(w, int(max(a[0], b[0])) + margin + 1),
               min(h, int(max(a[1], b[1])) + margin + 1))
    tool = cv2.segmentation.IntelligentScissorsMB()
    tool.setEdgeFeatureCannyParameters(16, 64)
    tool.setGradientMagnitudeMaxLimit(200)
    tool.applyImage(np.ascontiguousarray(rgb[box.slices]))
    tool.buildMap((round(a[0]) - box.x0, round(a[1]) - box.y0))
    path = tool.getContour((round(b[0]) - box.x0, round(b[1]) - box.y0))
    path = path.reshape(-1, 2).astype(np.float64) + np.array([box.x0, box.y0], np.float64)
    if len(path) < 2 or len(path) > max_detour * length + 2:
        return straight
    return np.concatenate([a[None], path[1:-1], b[None]])
