"""ViewerState: what is shown (document, model, variant, overlay, heatmap); views subscribe."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.common.variants import BACKGROUND_NAMES, REFERENCE
from app.state.document import ImageDocument
from app.state.model import ModelState
from app.state.project_classes import ProjectClasses
from core.variants import VARIANTS

__all__ = ["BACKGROUND_NAMES", "REFERENCE", "VARIANTS", "ViewerState"]

class ViewerState(QObject):
    """The app's display state. Qt-free apart from signals; no widget touches another.

    The model facts are :attr:`models`' (a :class:`ModelState`); ``model_info`` and
    ``model_id`` read them. The open project's classes are :attr:`project_classes`' (a
    :class:`ProjectClasses`, written by the project manager): the corrected mask is in
    their numbering (:meth:`mask_class_names`, :meth:`mask_colors`).

    Signals:
        documentChanged(object): the current document (or None).
        modelChanged(object): the current ModelInfo (or None).
        resultChanged(): the current document got a prediction of the current model.
        predictionChanged(str): the current document got a prediction of that model id (any
            model: the compare panes and statistics columns of a model set filter for theirs).
        partialChanged(str, object): the current document's prediction of that model id
            that is still landing changed: the boxes that landed, or None (see
            ``ImageDocument.partialChanged``).
        classPicked(int): a class was clicked in the legend.
        referenceChanged(): the current document's reference mask changed.
        overlayChanged(): overlay source, visibility, opacity or style changed.
        heatmapChanged(): heatmap class, source, variant or mode changed.
        disagreementChanged(bool): the disagreement view was toggled.
        changesChanged(bool): marking the changes since the previous model version was
            toggled.
        editedMaskChanged(): the current image's corrected mask was started, edited (also by
            undo and redo), shown, hidden or closed. Edits come at stroke rate: views that
            recompute from the whole mask should coalesce them.
    """

    documentChanged = Signal(object)
    modelChanged = Signal(object)
    resultChanged = Signal()
    predictionChanged = Signal(str)
    partialChanged = Signal(str, object)
    classPicked = Signal(int)
    referenceChanged = Signal()
    overlayChanged = Signal()
    heatmapChanged = Signal()
    disagreementChanged = Signal(bool)
    changesChanged = Signal(bool)
    editedMaskChanged = Signal()

    def __init__(self, parent: QObject | None = None, models: ModelState | None = None) -> None:
        """Start with no document; follow ``models`` (default: a model state of its own)."""
        super().__init__(parent)
        self.models = models if models is not None else ModelState(self)
        self.document: ImageDocument | None = None
        self.overlay_source: str = "8s"
        self.overlay_visible: bool = True
        self.overlay_opacity: float = 0.55
        self.overlay_contours: bool = False
        self.hidden_classes: frozenset[int] = frozenset()
        self.heatmap_class: int = 1
        self.heatmap_variant: str = "8s"
        self.heatmap_source: str = "class"  # "class" or "entropy"
        self.heatmap_mode: str = "overlay"  # "overlay" or "alone"
        self.show_disagreement: bool = True
        self.show_changes: bool = False
        self.edited_mask: np.ndarray | None = None
        self.edited_source: str = ""
        self.edited_shown: bool = False
        self.models.changed.connect(self._on_model)
        self.project_classes = ProjectClasses(self.models, self)
        # mapped predictions take the project's colors: the overlays are redrawn
        self.project_classes.mappingChanged.connect(self.overlayChanged)
        self.project_classes.classesChanged.connect(self.overlayChanged)

    # ------------------------------------------------------------------ document and model
    def set_document(self, doc: ImageDocument | None) -> None:
        """Make ``doc`` current and forward its signals."""
        if doc is self.document:
            return
        if self.document is not None:
            self.document.predictionChanged.disconnect(self._on_prediction)
            self.document.partialChanged.disconnect(self.partialChanged)
            self.document.referenceChanged.disconnect(self.referenceChanged)
        self.document = doc
        # the corrected mask belongs to the previous image: its views must not use it until
        # the editor publishes the new image's (after this signal)
        self.edited_mask, self.edited_source, self.edited_shown = None, "", False
        if doc is not None:
            doc.predictionChanged.connect(self._on_prediction)
            doc.partialChanged.connect(self.partialChanged)
            doc.referenceChanged.connect(self.referenceChanged)
        self.documentChanged.emit(doc)

    @property
    def model_info(self) -> Any | None:
        """The current model's metadata (the model state's)."""
        return self.models.info

    @property
    def model_id(self) -> str | None:
        """The id the current model's predictions are stored under (the model state's)."""
        return self.models.model_id

    def set_model(self, info: Any | None, model_id: str | None) -> None:
        """Set the current model's metadata and the id its predictions are stored under."""
        self.models.set_info(info, model_id)

    def _on_model(self, _loaded: object) -> None:
        info = self.models.info
        names = list(info.class_names) if info is not None else []
        n = len(names)
        if n and not 0 <= self.heatmap_class < n:
            self.heatmap_class = 1 if n > 1 else 0
        background = n > 1 and names[0].lower() in BACKGROUND_NAMES
        self.hidden_classes = frozenset({0}) if background else frozenset()
        self.modelChanged.emit(info)
        self.resultChanged.emit()

    def _on_prediction(self, model_id: str) -> None:
        if model_id == self.model_id:
            self.resultChanged.emit()
        self.predictionChanged.emit(model_id)

    def pick_class(self, cls: int) -> None:
        """A class was clicked (the legend): the heatmap shows it; the editor may paint it."""
        self.set_heatmap(cls=cls)
        self.classPicked.emit(int(cls))

    def prediction(self) -> Any | None:
        """The current document's prediction by the current model, or None."""
        doc = self.document
        return None if doc is None else doc.prediction(self.model_id)

    def output(self, variant: str) -> Any | None:
        """One variant's output for the current document and model, or None."""
        pred = self.prediction()
        return None if pred is None else pred.outputs.get(variant)

    def partial(self) -> Any | None:
        """The current document's prediction by the current model still landing (or
        stopped part way), or None."""
        doc = self.document
        return None if doc is None else doc.partial(self.model_id)

    def class_names(self) -> list[str]:
        """The current model's class names (empty without a model)."""
        return self.models.class_names()

    def colors(self) -> list[tuple[int, int, int]]:
        """The current model's class colors (empty without a model); with its classes
        mapped onto the project's by name, each class has its project class's color."""
        return self.project_classes.model_colors(self.models.class_names(),
                                                 self.models.colors())

    def mask_class_names(self) -> list[str]:
        """The classes of the corrected mask: the project's (none open: the model's)."""
        return self.project_classes.mask_names()

    def mask_colors(self) -> list[tuple[int, int, int]]:
        """The colors of :meth:`mask_class_names`."""
        return self.project_classes.mask_colors()

    # ------------------------------------------------------------------ display settings
    def set_overlay(
        self, source: str | None = None, visible: bool | None = None,
        opacity: float | None = None, contours: bool | None = None,
    ) -> None:
        """Change the overlay's source (a variant or REFERENCE), visibility, opacity, or
        whether the masks are drawn as region boundaries only (``contours``)."""
        if contours is not None:
            self.overlay_contours = bool(contours)
        if source is not None:
            self.overlay_source = source
        if visible is not None:
            self.overlay_visible = visible
        if opacity is not None:
            self.overlay_opacity = min(1.0, max(0.0, float(opacity)))
        self.overlayChanged.emit()

    @property
    def mask_opacity(self) -> float:
        """The opacity masks are drawn with: the slider's, at least 0.9 for contours (thin
        lines blended at half strength are hard to see)."""
        return max(self.overlay_opacity, 0.9) if self.overlay_contours else self.overlay_opacity

    def set_class_hidden(self, cls: int, hidden: bool) -> None:
        """Hide (or show) one class in the mask overlays."""
        classes = set(self.hidden_classes)
        if hidden:
            classes.add(int(cls))
        else:
            classes.discard(int(cls))
        self.hidden_classes = frozenset(classes)
        self.overlayChanged.emit()

    def set_heatmap(
        self,
        cls: int | None = None,
        variant: str | None = None,
        source: str | None = None,
        mode: str | None = None,
    ) -> None:
        """Change the heatmap's class, variant, source (class/entropy) or mode (overlay/alone)."""
        if cls is not None:
            self.heatmap_class = int(cls)
            if source is None:
                source = "class"
        if variant is not None:
            self.heatmap_variant = variant
        if source is not None:
            self.heatmap_source = source
        if mode is not None:
            self.heatmap_mode = mode
        self.heatmapChanged.emit()

    def set_show_disagreement(self, on: bool) -> None:
        """Toggle marking the pixels where the variants disagree."""
        self.show_disagreement = bool(on)
        self.disagreementChanged.emit(self.show_disagreement)

    def set_show_changes(self, on: bool) -> None:
        """Toggle marking the pixels whose class changed since the previous model version
        (the current model's parent, e.g. before a fine-tune)."""
        self.show_changes = bool(on)
        self.changesChanged.emit(self.show_changes)

    def parent_id(self) -> str | None:
        """The id of the current model's parent version (None: it has none)."""
        parent = getattr(self.model_info, "parent", None)
        return str(parent) if parent else None

    # ------------------------------------------------------------------ the corrected mask
    def set_edited_mask(self, labels: np.ndarray | None, source: str = "",
                        shown: bool = False) -> None:
        """The current image's mask being corrected (None: none), where it started from
        (e.g. "FCN-8s prediction") and whether it replaces the overlay (annotate mode)."""
        self.edited_mask = labels
        self.edited_source = source if labels is not None else ""
        self.edited_shown = bool(shown) and labels is not None
        self.editedMaskChanged.emit()

    def edited_mask_touched(self, *_args: object) -> None:
        """The corrected mask's pixels changed (a stroke, a fill, an undo)."""
        if self.edited_mask is not None:
            self.editedMaskChanged.emit()
