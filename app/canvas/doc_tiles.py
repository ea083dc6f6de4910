"""The tile sources the views draw for a document, memoized on it (the tiled twins of
:mod:`app.canvas.overlays`): the image, a mask overlay, the marks and a heatmap, of a final
prediction or of one still landing (its preview where tiles have not landed yet).

Nothing here touches every pixel: each source computes the tiles the canvases ask for.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np

from app.canvas.heat_source import HeatmapSource
from app.canvas.overlays import CHANGE_COLOR, DISAGREE_COLOR, changed_pixels
from app.canvas.sources import LabelSource, MarksSource, RGBSource
from app.common.colormaps import argb_table
from app.common.render import color_lut
from app.state.document import ImageDocument
from app.state.partial import PartialResult
from core.outputs.colormaps import DEFAULT_COLORMAP, ENTROPY_COLORMAP

Color = tuple[int, int, int]


def image(doc: ImageDocument) -> RGBSource:
    """The image (one source per document, shared by every canvas)."""
    return doc.image_tiles(RGBSource)


def _lut(colors: Sequence[Color], hidden: AbstractSet[int], contours: bool) -> np.ndarray:
    return color_lut(colors, {*hidden, 255} if contours else hidden)


def _style(colors: Sequence[Color], hidden: AbstractSet[int], contours: bool) -> tuple:
    return tuple(map(tuple, colors)), tuple(sorted(hidden)), contours


def labels(doc: ImageDocument, model_id: str | None, variant: str, colors: Sequence[Color],
           hidden: AbstractSet[int] = frozenset(), contours: bool = False,
           landing: bool = True) -> LabelSource | None:
    """``variant``'s predicted mask in class colors (``hidden`` classes clear; ``contours``:
    region boundaries only): of the prediction, else (``landing``) of the one landing, else
    None."""
    if not model_id or not colors:
        return None
    out = doc.output(model_id, variant)
    lut = _lut(colors, hidden, contours)
    style = _style(colors, hidden, contours)
    if out is not None:
        return doc.cached(("overlay-tiles", model_id, variant, style),
                          lambda: LabelSource(out.labels, lut, contours))
    part = doc.partial(model_id) if landing else None
    if part is None:
        return None
    return doc.cached(("partial", "overlay-tiles", model_id, variant, style),
                      lambda: LabelSource(None, lut, contours, part, variant))


def reference(doc: ImageDocument, colors: Sequence[Color],
              hidden: AbstractSet[int] = frozenset(), contours: bool = False
              ) -> LabelSource | None:
    """The reference mask in class colors (void and ``hidden`` clear), or None."""
    if doc.reference is None or not colors:
        return None
    ref = doc.reference
    lut = _lut(colors, {*hidden, 255}, contours)
    return doc.cached(("reference-tiles", _style(colors, hidden, contours)),
                      lambda: LabelSource(ref, lut, contours))


def disagreement(doc: ImageDocument, model_id: str | None) -> MarksSource | None:
    """Red where the variants' labels differ (where tiles landed, while landing), or None."""
    if not model_id:
        return None
    size = (doc.width, doc.height)
    pred = doc.prediction(model_id)
    if pred is not None:
        return doc.cached(("disagreement-tiles", model_id), lambda: MarksSource(
            size, lambda y0, y1, x0, x1, s: _differ(pred, y0, y1, x0, x1, s), DISAGREE_COLOR))
    part = doc.partial(model_id)
    if part is None:
        return None
    return doc.cached(("partial", "disagreement-tiles", model_id), lambda: MarksSource(
        size, lambda y0, y1, x0, x1, s: _landed_differ(part, y0, y1, x0, x1, s),
        DISAGREE_COLOR))


def _differ(pred: Any, y0: int, y1: int, x0: int, x1: int, s: int) -> np.ndarray | None:
    outs = list(pred.outputs.values())
    if len(outs) < 2:
        return None
    first = outs[0].labels[y0:y1:s, x0:x1:s]
    differ = np.zeros(first.shape, bool)
    for other in outs[1:]:
        differ |= other.labels[y0:y1:s, x0:x1:s] != first
    return differ


def _landed_differ(part: PartialResult, y0: int, y1: int, x0: int, x1: int, s: int
                   ) -> np.ndarray | None:
    if part.prediction is None:
        return None
    final = part.coverage(y0, y1, x0, x1, s)
    if final is False:
        return None
    differ = _differ(part.prediction, y0, y1, x0, x1, s)
    return differ if final is True or differ is None else differ & final


def changes(doc: ImageDocument, model_id: str | None, parent_id: str | None, variant: str
            ) -> MarksSource | None:
    """Cyan where ``variant``'s class changed since the parent version, or None unless
    both predictions are at hand."""
    new, old = doc.output(model_id, variant), doc.output(parent_id, variant)
    if new is None or old is None or new.labels.shape != old.labels.shape:
        return None
    size = (doc.width, doc.height)

    def marks(y0: int, y1: int, x0: int, x1: int, s: int) -> np.ndarray:
        return new.labels[y0:y1:s, x0:x1:s] != old.labels[y0:y1:s, x0:x1:s]

    return doc.cached(("change-tiles", model_id, parent_id, variant),
                      lambda: MarksSource(size, marks, CHANGE_COLOR))


def change_share(doc: ImageDocument, model_id: str | None, parent_id: str | None,
                 variant: str) -> float | None:
    """The share of pixels whose class changed since the parent version (memoized), or
    None unless both predictions are at hand."""
    changed = changed_pixels(doc, model_id, parent_id, variant)
    return None if changed is None else float(changed.mean())


def heatmap(doc: ImageDocument, model_id: str | None, variant: str, source: str, cls: int
            ) -> HeatmapSource | None:
    """A class's probability (``source`` "class") or the entropy, colormapped, of the
    prediction or of the one landing; None without either (or for a class it lacks)."""
    if not model_id:
        return None
    entropy = source == "entropy"
    table = argb_table(ENTROPY_COLORMAP if entropy else DEFAULT_COLORMAP)
    target = None if entropy else int(cls)
    size = (doc.width, doc.height)
    out = doc.output(model_id, variant)
    if out is not None:
        if target is not None and not 0 <= target < out.num_classes:
            return None
        return doc.cached(("heatmap-tiles", model_id, variant, target),
                          lambda: HeatmapSource(out, target, table, size))
    part = doc.partial(model_id)
    if part is None:
        return None
    some = part.prediction or part.preview
    n = next(iter(some.outputs.values())).num_classes if some is not None else 0
    if target is not None and not 0 <= target < n:
        return None
    return doc.cached(("partial", "heatmap-tiles", model_id, variant, target),
                      lambda: HeatmapSource(None, target, table, size, part, variant))
