"""From an uncertainty map to what to correct next: ranked regions and an image score.

:func:`rank_regions` smooths the map (a long one-pixel band along every object boundary
should not outrank a blob where the model does not know the class), keeps the most
uncertain pixels, and returns their connected regions by uncertainty mass, most first: the
"correct next" list. :func:`image_score` is one number per image (the mean uncertainty: the
expected share of pixels to fix) and :func:`rank_images` orders images by it for "next
image to correct", as MONAI Label's active learning reduces a dropout map to a score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from core.annotation.labels import BBox, Region

__all__ = ["UncertainRegion", "image_score", "rank_images", "rank_regions"]


@dataclass(frozen=True)
class UncertainRegion:
    """One region to look at.

    Attributes:
        region: Its pixels (bbox and footprint).
        mass: The sum of the (unsmoothed) uncertainty over its pixels: the ranking key.
        mean: Its mean uncertainty.
        area: Pixels.
        center: ``(x, y)``: the pixel of the region farthest from its border (where to
            click).
        label: The most frequent predicted class in it (-1 without labels).
    """

    region: Region
    mass: float
    mean: float
    area: int
    center: tuple[int, int]
    label: int


def rank_regions(uncertainty: np.ndarray, labels: np.ndarray | None = None, *,
                 top_fraction: float = 0.1, min_value: float = 0.05, smooth: float = 3.0,
                 min_area: int = 16, limit: int = 20) -> list[UncertainRegion]:
    """The most uncertain regions of an image, ranked by uncertainty mass.

    Args:
        uncertainty: ``(H, W)`` map in [0, 1].
        labels: The prediction, to name each region's class.
        top_fraction: Keep the pixels above this quantile of the smoothed map.
        min_value: ... and above this value (a confident image has no region).
        smooth: Gaussian sigma in pixels applied before thresholding (0: none).
        min_area: Smaller regions are dropped.
        limit: At most this many regions.
    """
    u = np.nan_to_num(np.asarray(uncertainty, np.float32))
    if u.ndim != 2:
        raise ValueError(f"an uncertainty map is H x W, not {u.shape}")
    if not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], not {top_fraction}")
    s = cv2.GaussianBlur(u, (0, 0), smooth) if smooth > 0 else u
    threshold = max(float(np.quantile(s, 1 - top_fraction)), float(min_value))
    keep = (s >= threshold).astype(np.uint8)
    if threshold <= 0 or not keep.any():
        return []
    n, comp, stats, _ = cv2.connectedComponentsWithStats(keep, connectivity=8)
    masses = np.bincount(comp.ravel(), weights=u.ravel(), minlength=n)
    order = [k for k in np.argsort(-masses[1:]) + 1 if stats[k, cv2.CC_STAT_AREA] >= min_area]
    out: list[UncertainRegion] = []
    for k in order[:limit]:
        x, y, w, h, area = (int(v) for v in stats[k])
        box = BBox(x, y, x + w, y + h)
        mask = comp[box.slices] == k
        dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
        cy, cx = np.unravel_index(int(np.argmax(dist)), dist.shape)
        label = -1
        if labels is not None:
            counts = np.bincount(np.asarray(labels)[box.slices][mask].astype(np.int64).ravel())
            label = int(np.argmax(counts))
        out.append(UncertainRegion(Region(box, mask), float(masses[k]),
                                   float(masses[k] / area), area, (x + int(cx), y + int(cy)),
                                   label))
    return out


def image_score(uncertainty: np.ndarray) -> float:
    """One number per image for "next image to correct": its mean uncertainty."""
    u = np.asarray(uncertainty, np.float64)
    return float(np.nan_to_num(u).mean()) if u.size else 0.0


def rank_images(scores: Mapping[str, float]) -> list[str]:
    """Image ids, most uncertain first (ties by id, so the order is stable)."""
    return sorted(scores, key=lambda k: (-float(scores[k]), k))
