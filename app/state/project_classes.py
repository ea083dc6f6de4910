"""ProjectClasses: the one owner of the open project's class list (names and colors).

The :class:`~app.services.projects.ProjectManager` writes it (a project opened, created or
closed, a class edit, an undo); the editor's mask, class picker and legend while
annotating, the statistics against the user's mask and the projects feature read it and
subscribe to :attr:`ProjectClasses.classesChanged`. Masks are always in the project's
numbering. A model with other classes is not an error: its predictions can be mapped by
name (:meth:`ProjectClasses.set_map_by_name`): a model label ``k`` becomes the project
class of the same name (case, underscores and spacing ignored), unmatched ones void.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.state.model import ModelState

Color = tuple[int, int, int]
VOID = 255
VOID_COLOR: Color = (224, 224, 192)
_CACHE = 6


class ProjectClasses(QObject):
    """The open project's classes, and how the model's labels map onto them.

    Attributes:
        folder: The open project's folder (None: no project).
        names: Its class names, label 0 first (empty without a project).
        colors: Its class colors.
        numbering: Changes whenever a label may mean another class than before (another
            project, or a class edit that renumbers or adds): masks held in memory in the
            old numbering must be let go of.
        map_by_name: Show and use the model's predictions in the project's numbering.

    Signals:
        classesChanged(): the classes changed (names, colors, another project or none).
        mappingChanged(): map-by-name was turned on or off.
    """

    classesChanged = Signal()
    mappingChanged = Signal()

    def __init__(self, models: ModelState | None = None, parent: QObject | None = None) -> None:
        """No project yet; ``models`` gives the classes of masks made without a project."""
        super().__init__(parent)
        self.models = models
        self.folder: Path | None = None
        self.names: list[str] = []
        self.colors: list[Color] = []
        self.numbering = 0
        self.map_by_name = False
        self._mapped: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    # ------------------------------------------------------------------ writer
    def set_project(self, folder: Path | None, names: list[str], colors: list[Color], *,
                    renumbered: bool = True) -> None:
        """Record the open project's classes (``folder`` None: no project).

        Args:
            renumbered: Labels may now mean other classes (another project, or a class
                edit that moves, merges, deletes or adds); False for a rename or recolor.
        """
        names, colors = list(names), [tuple(int(v) for v in c) for c in colors]
        same_project = folder == self.folder
        if same_project and names == self.names and colors == self.colors:
            return
        if renumbered or not same_project or len(names) != len(self.names):
            self.numbering += 1
        if not same_project:
            self.map_by_name = False
        self.folder = Path(folder) if folder is not None else None
        self.names, self.colors = names, colors  # type: ignore[assignment]
        self._mapped.clear()
        self.classesChanged.emit()

    def set_map_by_name(self, on: bool) -> None:
        """Map the model's predictions onto the project's classes by name (or not)."""
        on = bool(on)
        if on != self.map_by_name:
            self.map_by_name = on
            self.mappingChanged.emit()

    # ------------------------------------------------------------------ readers
    @property
    def is_open(self) -> bool:
        """Whether a project is open."""
        return self.folder is not None

    def _model_names(self) -> list[str]:
        return self.models.class_names() if self.models is not None else []

    def mask_names(self) -> list[str]:
        """The classes masks are made in: the project's, else (none open) the model's."""
        return list(self.names) if self.is_open else self._model_names()

    def mask_colors(self) -> list[Color]:
        """The colors of :meth:`mask_names`."""
        if self.is_open:
            return list(self.colors)
        return self.models.colors() if self.models is not None else []

    def model_differs(self, names: list[str] | None = None) -> bool:
        """Whether a project is open and the model's classes (or ``names``) are not its."""
        names = self._model_names() if names is None else list(names)
        return self.is_open and bool(names) and names != self.names

    def lut_from(self, names: list[str]) -> np.ndarray | None:
        """A 256-entry table from a model's labels (``names``) to the mask's labels:
        identity when the classes are the mask's, by name when mapping is on (a project
        is open), else None."""
        if list(names) == self.mask_names():
            return np.arange(256, dtype=np.uint8)
        if not self.is_open or not self.map_by_name:
            return None
        from core.annotation.classes import map_by_name

        return map_by_name(names, self.names)

    def to_project(self, labels: np.ndarray, names: list[str]) -> np.ndarray | None:
        """A model's ``labels`` (of classes ``names``) in the mask's numbering; None when
        the classes differ and are not mapped. The same array comes back for the same
        input (a few are kept), so views may key caches on its id."""
        if list(names) == self.mask_names():
            return labels
        lut = self.lut_from(names)
        if lut is None:
            return None
        key = (id(labels), tuple(names), self.numbering)
        hit = self._mapped.get(key)
        if hit is not None and hit[0] is labels:
            return hit[1]
        mapped = lut[labels]
        self._mapped[key] = (labels, mapped)
        while len(self._mapped) > _CACHE:
            self._mapped.popitem(last=False)
        return mapped

    def model_colors(self, names: list[str], colors: list[Color]) -> list[Color]:
        """Colors for a model's labels: with mapping on, each label gets its project
        class's color (unmatched: the void color); else the model's own ``colors``."""
        lut = self.lut_from(names) if self.map_by_name and self.model_differs(names) else None
        if lut is None:
            return list(colors)
        return [self.colors[int(k)] if int(k) != VOID else VOID_COLOR
                for k in lut[: len(names)]]

    def describe_mapping(self, names: list[str]) -> str:
        """E.g. "3 of 5 model classes map onto the project's; unmatched: horse, sheep"."""
        from core.annotation.classes import map_by_name

        lut = map_by_name(names, self.names)
        unmatched = [n for k, n in enumerate(names) if lut[k] == VOID]
        text = f"{len(names) - len(unmatched)} of {len(names)} model classes map by name"
        return text + (f"; unmatched (void): {', '.join(unmatched[:8])}"
                       + (" …" if len(unmatched) > 8 else "") if unmatched else "")
