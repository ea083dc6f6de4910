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
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from app.common.checkpoints import CheckpointSummary, summarize
from app.common.variants import BACKGROUND_NAMES
from core.errors import CheckpointError
from core.variants import VARIANTS

if TYPE_CHECKING:
    from app.state.display import ViewerState

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
            except CheckpointError as exc:
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


def legend(sources: Mapping[str, PaneSource]) -> str:
    """One line naming each pane's model: "32s: fcn32s · 16s: fcn16s · 8s: fcn8s"."""
    return " · ".join(f"{v}: {s.name or 'no model'}" for v, s in sources.items())
