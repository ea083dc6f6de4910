"""Display buffers derived from a document, memoized on it (overlays, marks, statistics)."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np

from app.common.render import (
    ImageBuffer,
    boolean_image,
    label_image,
    probability_image,
    scalar_image,
)
from app.common.stats import ImageStats, image_stats
from app.state.document import ImageDocument
from core.outputs.colormaps import DEFAULT_COLORMAP, ENTROPY_COLORMAP

Color = tuple[int, int, int]
DISAGREE_COLOR: Color = (255, 48, 48)
CHANGE_COLOR: Color = (0, 210, 255)


def label_overlay(
    doc: ImageDocument,
    model_id: str | None,
    variant: str,
    colors: Sequence[Color],
    hidden: AbstractSet[int] = frozenset(),
    contours: bool = False,
) -> ImageBuffer | None:
    """The predicted mask of ``variant`` in class colors (``hidden`` classes clear), or None;
    ``contours``: only its region boundaries."""
    out = doc.output(model_id, variant)
    if out is None:
        return None
    key = ("overlay", model_id, variant, tuple(sorted(hidden)), contours)
    return doc.cached(key, lambda: label_image(out.labels, colors, hidden, contours))


def reference_overlay(
    doc: ImageDocument, colors: Sequence[Color], hidden: AbstractSet[int] = frozenset(),
    contours: bool = False,
) -> ImageBuffer | None:
    """The reference mask in class colors (void and ``hidden`` clear), or None without one;
    ``contours``: only its region boundaries."""
    if doc.reference is None or not colors:
        return None
    ref = doc.reference
    key = ("reference", len(colors), tuple(sorted(hidden)), contours)
    return doc.cached(key, lambda: label_image(ref, colors, hidden, contours))


def disagreement_overlay(doc: ImageDocument, model_id: str | None) -> ImageBuffer | None:
    """Red where the variants' labels differ, or None without a prediction."""
    pred = doc.prediction(model_id)
    if pred is None:
        return None
    return doc.cached(
        ("disagreement", model_id), lambda: boolean_image(pred.disagreement(), DISAGREE_COLOR)
    )


def changed_pixels(doc: ImageDocument, model_id: str | None, parent_id: str | None,
                   variant: str) -> np.ndarray | None:
    """Where ``variant``'s class differs between the model and its parent version, or None
    unless both predictions of ``doc`` are at hand (memoized)."""
    new, old = doc.output(model_id, variant), doc.output(parent_id, variant)
    if new is None or old is None or new.labels.shape != old.labels.shape:
        return None
    return doc.cached(("changed", model_id, parent_id, variant),
                      lambda: new.labels != old.labels)


def change_overlay(doc: ImageDocument, model_id: str | None, parent_id: str | None,
                   variant: str) -> ImageBuffer | None:
    """Cyan where ``variant``'s class changed since the parent version, or None."""
    changed = changed_pixels(doc, model_id, parent_id, variant)
    if changed is None:
        return None
    return doc.cached(("change-marks", model_id, parent_id, variant),
                      lambda: boolean_image(changed, CHANGE_COLOR))


def heatmap(
    doc: ImageDocument, model_id: str | None, variant: str, source: str, cls: int
) -> ImageBuffer | None:
    """A class's probability (``source`` "class") or the entropy map, colormapped (computed
    from the prediction's fused scores when asked, memoized)."""
    out = doc.output(model_id, variant)
    if out is None:
        return None
    if source == "entropy":
        return doc.cached(
            ("entropy", model_id, variant),
            lambda: scalar_image(out.entropy(), ENTROPY_COLORMAP),
        )
    if not 0 <= cls < out.num_classes:
        return None
    # the normalizer once per variant: then a class switch computes that class's scores only
    norm = doc.cached(("normalizer", model_id, variant), lambda: out.log_normalizer())
    return probability_image(out.probability(cls, log_normalizer=norm), DEFAULT_COLORMAP)


def thumbnail_source(doc: ImageDocument, model_id: str | None, variant: str, size: int) -> Any:
    """Probabilities and entropy at every ``step``-th pixel, about ``size`` pixels on the long
    side (computed at that zoom from the fused scores)."""
    out = doc.output(model_id, variant)
    if out is None:
        return None
    step = max(1, max(out.labels.shape) // size)

    def compute() -> tuple[np.ndarray, np.ndarray]:
        return out.probabilities(step=step), out.entropy(step=step)

    return doc.cached(("thumbs", model_id, variant, size), compute)


def statistics(doc: ImageDocument, model_id: str | None, num_classes: int) -> ImageStats | None:
    """Per-variant statistics (and metrics against the reference), or None.

    The worker computes them with the prediction; they are recomputed here only when the
    reference mask changes.
    """
    pred = doc.prediction(model_id)
    if pred is None:
        return None
    return doc.cached(("stats", model_id), lambda: image_stats(pred, doc.reference, num_classes))
