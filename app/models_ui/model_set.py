"""The compare view's model set: which checkpoint each of the 32s, 16s and 8s panes shows.

By default every pane shows the current model's own output of its variant. A model set
gives a pane another checkpoint (e.g. the paper's three nets: fcn32s, fcn16s and fcn8s
imports); the pane then shows *that* model's output of the pane's variant. Predictions are
stored in the document under each model's id, so outputs are cached per (image, model id,
variant).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from app import overlays
from app.document import ImageDocument
from app.models_ui.checkpoints import CheckpointSummary, HeaderError, summarize
from app.render import ImageBuffer, boolean_image
from app.state import BACKGROUND_NAMES, VARIANTS, ViewerState

Color = tuple[int, int, int]


@dataclass(frozen=True)
class PaneSource:
    """The model one variant pane shows.

    Attributes:
        variant: the pane's variant ("32s", "16s", "8s"); the model's output of it is shown.
        model_id: the id the model's predictions are stored under (None: no model).
        name: the model's name ('' without a model).
        class_names: its classes.
        colors: its class colors.
        hidden: classes left transparent in the overlay.
        from_set: a checkpoint of the model set rather than the current model.
    """

    variant: str
    model_id: str | None
    name: str
    class_names: tuple[str, ...]
    colors: tuple[Color, ...]
    hidden: frozenset[int]
    from_set: bool = False

    @property
    def title(self) -> str:
        """E.g. "FCN-16s · fcn16s-heavy-pascal (16s output)"."""
        base = f"FCN-{self.variant}"
        return f"{base} · {self.name} ({self.variant} output)" if self.name else base

    @property
    def short_title(self) -> str:
        """The title without "(16s output)", for narrow panes."""
        return f"FCN-{self.variant} · {self.name}" if self.name else f"FCN-{self.variant}"

    @property
    def num_classes(self) -> int:
        """Number of classes of the pane's model."""
        return len(self.class_names)


class ModelSet(QObject):
    """A checkpoint per variant pane, or None for the current model.

    Signals:
        changed(): the members changed.
    """

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        """Start with the current model for every pane."""
        super().__init__(parent)
        self.members: dict[str, CheckpointSummary | None] = dict.fromkeys(VARIANTS)

    @property
    def active(self) -> bool:
        """Whether any pane uses a checkpoint of its own."""
        return any(m is not None for m in self.members.values())

    def member(self, variant: str) -> CheckpointSummary | None:
        """The checkpoint of a variant's pane (None: the current model)."""
        return self.members.get(variant)

    def set_members(self, members: Mapping[str, CheckpointSummary | None]) -> None:
        """Set the panes' checkpoints (variants left out use the current model)."""
        unknown = set(members) - set(VARIANTS)
        if unknown:
            raise ValueError(f"unknown variants {sorted(unknown)}; expected {VARIANTS}")
        new = {v: members.get(v) for v in VARIANTS}
        if new != self.members:
            self.members = new
            self.changed.emit()

    def clear(self) -> None:
        """Use the current model for every pane."""
        self.set_members({})

    def checkpoints(self) -> list[CheckpointSummary]:
        """The distinct checkpoints of the set (by model id), in pane order."""
        seen: dict[str, CheckpointSummary] = {}
        for m in self.members.values():
            if m is not None and m.model_id not in seen:
                seen[m.model_id] = m
        return list(seen.values())

    def reload(self) -> list[str]:
        """Re-read the members' headers (a file was replaced); return problems found."""
        problems, new = [], {}
        for variant, m in self.members.items():
            if m is None:
                new[variant] = None
                continue
            try:
                new[variant] = summarize(m.path)
            except HeaderError as exc:
                problems.append(str(exc))
                new[variant] = None
        self.set_members(new)
        return problems


def _hidden_for(names: tuple[str, ...], state: ViewerState) -> frozenset[int]:
    if list(names) == state.class_names():
        return state.hidden_classes
    background = len(names) > 1 and names[0].lower() in BACKGROUND_NAMES
    return frozenset({0}) if background else frozenset()


def current_source(state: ViewerState, variant: str) -> PaneSource:
    """The current model as the source of a variant pane."""
    info = state.model_info
    names = tuple(state.class_names())
    name = (info.name or "current model") if info is not None else ""
    return PaneSource(variant, state.model_id, name, names, tuple(state.colors()),
                      state.hidden_classes)


def pane_sources(state: ViewerState, model_set: ModelSet | None = None) -> dict[str, PaneSource]:
    """The source of every variant pane: the model set's checkpoint, else the current model."""
    out: dict[str, PaneSource] = {}
    for variant in VARIANTS:
        m = model_set.member(variant) if model_set is not None else None
        if m is None:
            out[variant] = current_source(state, variant)
        else:
            out[variant] = PaneSource(variant, m.model_id, m.name, m.class_names, m.colors,
                                      _hidden_for(m.class_names, state), True)
    return out


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


def legend(sources: Mapping[str, PaneSource]) -> str:
    """One line naming each pane's model: "32s: fcn32s · 16s: fcn16s · 8s: fcn8s"."""
    return " · ".join(f"{v}: {s.name or 'no model'}" for v, s in sources.items())


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
) -> tuple[ImageBuffer | None, str]:
    """The disagreement pane's marks and caption: between the panes' models when they differ."""
    if not mixed(sources):
        num_classes = len(state.colors())
        stats = overlays.statistics(doc, state.model_id, num_classes) if num_classes else None
        if stats is None:
            return None, "no prediction yet"
        marks = overlays.disagreement_overlay(doc, state.model_id)
        return marks, f"variants differ on {stats.disagreement:.1%} of the pixels"
    differ = set_disagreement(doc, sources)
    if differ is None:
        waiting = [v for v, s in sources.items() if doc.output(s.model_id, v) is None]
        return None, "waiting for the " + ", ".join(waiting) + " pane" + "s" * (len(waiting) > 1)
    key = ("set-disagreement-marks", tuple((s.model_id, v) for v, s in sources.items()))
    marks = doc.cached(key, lambda: boolean_image(differ, overlays.DISAGREE_COLOR))
    return marks, f"models differ on {float(differ.mean()):.1%} of the pixels"
