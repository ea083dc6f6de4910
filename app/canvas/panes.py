"""What the model-set panes draw: per-pane statistics, the disagreement between the panes'
models (marks and caption), all memoized on the document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from app.canvas import doc_tiles, overlays
from app.canvas.sources import MarksSource
from app.state.display import ViewerState
from app.state.document import ImageDocument
from app.state.model_set import PaneSource


def mixed(sources: Mapping[str, PaneSource]) -> bool:
    """Whether the panes show more than one model."""
    return len({s.model_id for s in sources.values()}) > 1


def set_disagreement(doc: ImageDocument, sources: Mapping[str, PaneSource]) -> np.ndarray | None:
    """Pixels where the panes' labels differ (each its model's variant), or None until all exist.

    Memoized on the document by the panes' (model id, variant) pairs.
    """
    outs = [doc.output(s.model_id, v) for v, s in sources.items()]
    if any(o is None for o in outs):
        return None
    key = ("set-disagreement", tuple((s.model_id, v) for v, s in sources.items()))

    def compute() -> np.ndarray:
        differ = np.zeros(outs[0].labels.shape, dtype=bool)
        for other in outs[1:]:
            differ |= other.labels != outs[0].labels
        return differ

    return doc.cached(key, compute)


def pane_stats(doc: ImageDocument, source: PaneSource) -> tuple[Any | None, str]:
    """A pane's statistics (its model's, of its variant) and any problem with the reference."""
    if source.model_id is None or not source.num_classes:
        return None, ""
    stats = overlays.statistics(doc, source.model_id, source.num_classes)
    if stats is None:
        return None, ""
    return stats.variants.get(source.variant), stats.problem


def disagreement_view(
    doc: ImageDocument, state: ViewerState, sources: Mapping[str, PaneSource]
) -> tuple[MarksSource | None, str]:
    """The disagreement pane's marks (tiles) and caption: between the panes' models when
    they differ."""
    if not mixed(sources):
        num_classes = len(state.colors())
        stats = overlays.statistics(doc, state.model_id, num_classes) if num_classes else None
        if stats is None:
            return None, "no prediction yet"
        marks = doc_tiles.disagreement(doc, state.model_id)
        return marks, f"variants differ on {stats.disagreement:.1%} of the pixels"
    differ = set_disagreement(doc, sources)
    if differ is None:
        waiting = [v for v, s in sources.items() if doc.output(s.model_id, v) is None]
        return None, "waiting for the " + ", ".join(waiting) + " pane" + "s" * (len(waiting) > 1)
    key = ("set-disagreement-tiles", tuple((s.model_id, v) for v, s in sources.items()))
    marks = doc.cached(key, lambda: MarksSource(
        (doc.width, doc.height), lambda y0, y1, x0, x1, s: differ[y0:y1:s, x0:x1:s],
        overlays.DISAGREE_COLOR))
    return marks, f"models differ on {float(differ.mean()):.1%} of the pixels"
