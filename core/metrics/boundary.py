"""Boundary F-score (Csurka, Larlus & Perronnin, BMVC 2013): how well predicted boundaries
follow the true ones, which region metrics such as mean IU barely see.

For each class, its boundary pixels in the truth and in the prediction are compared within a
distance ``tolerance``: precision is the share of predicted boundary pixels near a true one,
recall the share of true boundary pixels near a predicted one, F their harmonic mean. The
score of an image is the mean F over the classes present in its truth or prediction; void
pixels of the truth (and boundary pixels on them) are left out.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

__all__ = ["boundary_f_score", "class_boundary"]


def class_boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image border does not count)."""
    m = np.asarray(mask, bool)
    inner = m.copy()
    inner[1:] &= m[:-1]
    inner[:-1] &= m[1:]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def _near(boundary: np.ndarray, tolerance: float) -> np.ndarray:
    """Pixels within ``tolerance`` of a boundary pixel."""
    if not boundary.any():
        return np.zeros(boundary.shape, bool)
    dist = cv2.distanceTransform((~boundary).astype(np.uint8), cv2.DIST_L2, 5)
    return dist <= tolerance


def boundary_f_score(truth: np.ndarray, pred: np.ndarray, num_classes: int, *,
                     tolerance: float = 2.0, ignore_index: int = 255) -> dict[str, Any]:
    """The boundary F-score of one image.

    Args:
        truth: ``H x W`` labels (``ignore_index`` = void).
        pred: ``H x W`` predicted labels.
        num_classes: Number of classes.
        tolerance: Distance in pixels within which a boundary pixel counts as matched.
        ignore_index: Void label of the truth.

    Returns:
        ``{"mean_bf", "per_class_bf"}``: the mean over classes present in either map, and
        per class F (None for absent classes).

    Raises:
        ValueError: The shapes differ.
    """
    t, p = np.asarray(truth), np.asarray(pred)
    if t.shape != p.shape:
        raise ValueError(f"Truth and prediction shapes differ: {t.shape} vs {p.shape}")
    valid = t != ignore_index
    per_class: list[float | None] = []
    for c in range(num_classes):
        tc, pc = (t == c) & valid, (p == c) & valid
        if not tc.any() and not pc.any():
            per_class.append(None)
            continue
        bt, bp = class_boundary(tc), class_boundary(pc)
        if not bt.any() and not bp.any():
            per_class.append(1.0)  # the class fills the valid image in both
            continue
        precision = float((bp & _near(bt, tolerance)).sum() / bp.sum()) if bp.any() else 0.0
        recall = float((bt & _near(bp, tolerance)).sum() / bt.sum()) if bt.any() else 0.0
        f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        per_class.append(f)
    present = [f for f in per_class if f is not None]
    return {"mean_bf": float(np.mean(present)) if present else 0.0, "per_class_bf": per_class}
