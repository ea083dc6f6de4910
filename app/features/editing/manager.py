"""EditingManager: the editable masks of the open images, shown and saved.

One :class:`EditSession` per image file, kept while browsing (undo history included).
The current image's session is shown on the viewer canvas by a :class:`MaskLayerItem`
(instead of the prediction overlay) while annotating. Unsaved masks are written to the
project when switching images, every 30 s and on close.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoGroup

from app.canvas.canvas import ImageCanvas
from app.canvas.layers import Z_EDIT
from app.features.editing.mask_layer import MaskLayerItem
from app.features.editing.session import EditSession
from app.features.editing.tool_controller import ToolController
from app.services.projects import ProjectManager
from app.state.display import VARIANTS, ViewerState
from app.state.document import ImageDocument
from app.state.notifications import NotificationCenter

EMPTY, EMPTY_VOID, REFERENCE_MASK = "empty", "empty-void", "reference"
START_CHOICES: dict[str, str] = {
    **{v: f"FCN-{v} prediction" for v in VARIANTS},
    EMPTY: "Empty (background)", EMPTY_VOID: "Empty (void)", REFERENCE_MASK: "Reference mask",
}
"""Where a new mask can start from (a mask file is the other choice)."""


def _key(doc: ImageDocument) -> Path | int:
    return doc.path.resolve() if doc.path is not None else id(doc)


class EditingManager(QObject):
    """Sessions by image, the annotate mode, the canvas tools and saving.

    Signals:
        sessionChanged(object): the current image's session (or None).
        annotatingChanged(bool): annotate mode turned on or off.
        dirtyChanged(bool): whether any image has unsaved edits.
        stateChanged(): some session became dirty or clean (for status labels).
    """

    sessionChanged = Signal(object)
    annotatingChanged = Signal(bool)
    dirtyChanged = Signal(bool)
    stateChanged = Signal()

    def __init__(
        self,
        state: ViewerState,
        canvas: ImageCanvas,
        projects: ProjectManager,
        notifications: NotificationCenter,
        parent: QObject | None = None,
    ) -> None:
        """Add the mask layer and the tools to ``canvas``; follow ``state``."""
        super().__init__(parent)
        self.state = state
        self.canvas = canvas
        self.projects = projects
        self.notifications = notifications
        self.sessions: dict[Path | int, EditSession] = {}
        self.session: EditSession | None = None
        self.annotating = False
        self.start_choice = "8s"
        self.undo_group = QUndoGroup(self)
        self.layer = MaskLayerItem()
        canvas.add_layer("mask", self.layer, Z_EDIT)
        self.layer.hide()
        self.tools = ToolController(canvas, lambda: self.session if self.annotating else None,
                                    self)
        self.tools.message.connect(lambda level, text: notifications.notify(text, level))
        self._class_names: list[str] = []
        self._dirty = False
        self._waiting: ImageDocument | None = None
        state.documentChanged.connect(self._on_document)
        state.modelChanged.connect(self._on_model)
        state.resultChanged.connect(self._on_result)
        state.overlayChanged.connect(self._style_layer)
        projects.timer.timeout.connect(self.save_all)
        projects.timer.start()
        self._on_model(state.model_info)

    # ------------------------------------------------------------------ annotate mode
    def set_annotating(self, on: bool) -> None:
        """Turn annotate mode on (tools own the left button, the mask replaces the overlay)."""
        on = bool(on)
        if on == self.annotating:
            return
        self.annotating = on
        self.tools.set_enabled(on)
        if on and self.session is None:
            self._auto_start(self.state.document)
        self._show_session()
        self.annotatingChanged.emit(on)

    # ------------------------------------------------------------------ starting masks
    def start(self, choice: str | None = None) -> EditSession | None:
        """Start (or restart, undoably) the current image's mask from a prediction variant,
        ``"empty"``, ``"empty-void"`` or ``"reference"``; None (with a message) if impossible."""
        choice = choice or self.start_choice
        doc = self.state.document
        if doc is None:
            self.notifications.notify("Open an image before editing its mask", "warning")
            return None
        if not self._class_names:
            self.notifications.notify("Load a model first: its classes are the mask's", "warning")
            return None
        whole = False
        if choice in VARIANTS:
            out = self.state.output(choice)
            if out is None:
                self.notifications.notify(
                    f"No FCN-{choice} prediction of {doc.title} yet: run the segmentation "
                    "(Ctrl+R) or start from an empty mask", "warning")
                return None
            labels = out.labels
        elif choice in (EMPTY, EMPTY_VOID):
            labels = np.full((doc.height, doc.width), 255 if choice == EMPTY_VOID else 0,
                             np.uint8)
        elif choice == REFERENCE_MASK:
            if doc.reference is None:
                self.notifications.notify(f"{doc.title} has no reference mask", "warning")
                return None
            labels, whole = doc.reference, True
        else:
            raise ValueError(f"unknown start {choice!r}")
        return self.start_from(labels, START_CHOICES[choice], whole=whole)

    def start_from(self, labels: np.ndarray, source: str, *, whole: bool = False,
                   doc: ImageDocument | None = None) -> EditSession | None:
        """Start ``doc``'s (default: the current image's) mask from ``labels``.

        ``whole``: the mask is entirely the user's (a loaded file, an import); it is then
        unsaved until written. Labels outside the model's classes are refused.
        """
        doc = doc or self.state.document
        if doc is None:
            return None
        labels = np.asarray(labels)
        problem = self._check_labels(labels, doc)
        if problem:
            self.notifications.notify(f"Mask not used: {problem}", "error")
            return None
        session = self.sessions.get(_key(doc))
        if session is None:
            session = self._new_session(doc, labels, source, whole=whole, unsaved=whole)
        else:
            self.tools.cancel_pending()
            session.restart(labels, source, whole=whole)
        if doc is self.state.document:
            self.set_annotating(True)
            self._show_session()
        self.notifications.notify(f"Editing the mask of {doc.title}, from {source}")
        return session

    def start_from_file(self, path: str | Path) -> EditSession | None:
        """Start the current image's mask from a mask file (palette or gray PNG)."""
        from core.data.imageio import read_mask
        from core.errors import FCNStudioError

        try:
            labels = read_mask(path)
        except (FCNStudioError, OSError, ValueError) as exc:
            self.notifications.notify(f"Mask not loaded: {exc}", "error")
            return None
        return self.start_from(labels, f"file {Path(path).name}", whole=True)

    def _check_labels(self, labels: np.ndarray, doc: ImageDocument) -> str:
        if labels.shape != (doc.height, doc.width):
            return (f"it is {labels.shape[1] if labels.ndim > 1 else '?'}x{labels.shape[0]}, "
                    f"the image {doc.width}x{doc.height}")
        n = len(self._class_names)
        bad = np.unique(labels[(labels >= n) & (labels != 255)])
        if bad.size:
            return f"labels {bad[:10].tolist()} are not classes of the model (0..{n - 1}, 255)"
        return ""

    def _new_session(self, doc: ImageDocument, labels: np.ndarray, source: str, *,
                     whole: bool = False, prior: np.ndarray | None = None,
                     unsaved: bool = False) -> EditSession:
        session = EditSession(doc.path, labels, len(self._class_names), source, whole=whole,
                              prior=prior, unsaved=unsaved, parent=self)
        session.dirtyChanged.connect(self._update_dirty)
        self.undo_group.addStack(session.stack)
        self.sessions[_key(doc)] = session
        if doc is self.state.document:
            self._activate(session)
        self._update_dirty()
        return session

    def _auto_start(self, doc: ImageDocument | None) -> None:
        """Annotating and no mask yet: start from the chosen source (or when it arrives)."""
        self._waiting = None
        if doc is None or not self._class_names:
            return
        if self.start_choice in VARIANTS and self.state.output(self.start_choice) is None:
            self._waiting = doc
            return
        self.start()

    # ------------------------------------------------------------------ showing
    def _activate(self, session: EditSession | None) -> None:
        if self.session is not None and self.session is not session:
            self.session.image.on_change.clear()
        self.tools.cancel_pending()
        self.session = session
        if session is not None:
            session.image.on_change[:] = [self.layer.recolor, self.state.edited_mask_touched]
            self.undo_group.setActiveStack(session.stack)
        else:
            self.undo_group.setActiveStack(None)
        self._show_session()
        self.sessionChanged.emit(session)

    def _show_session(self) -> None:
        current = self.session
        self.state.set_edited_mask(current.labels if current is not None else None,
                                   current.source if current is not None else "",
                                   self.annotating)
        session = current if self.annotating else None
        self.layer.set_labels(session.labels if session is not None else None)
        self.layer.active = session is not None
        self._style_layer()

    def _style_layer(self) -> None:
        st = self.state
        self.layer.set_colors(st.colors(), st.hidden_classes)
        self.layer.setOpacity(st.overlay_opacity)
        self.layer.setVisible(self.layer.active and st.overlay_visible)
        # the viewer hides its prediction overlay meanwhile (state.edited_shown)

    # ------------------------------------------------------------------ state events
    def _on_document(self, doc: ImageDocument | None) -> None:
        previous = self.session
        if previous is not None and previous.dirty:
            self.save(previous)
        self._waiting = None
        session = self.sessions.get(_key(doc)) if doc is not None else None
        if session is None and doc is not None and doc.path is not None and self._class_names:
            session = self._restore(doc)
        self._activate(session)
        if session is None and self.annotating:
            self._auto_start(doc)
        self._forget_clean_sessions()

    def reload_current(self) -> None:
        """Load the current image's saved mask if it has no session (after an import)."""
        doc = self.state.document
        if doc is not None and _key(doc) not in self.sessions:
            self._on_document(doc)

    def _restore(self, doc: ImageDocument) -> EditSession | None:
        saved = self.projects.load(doc.path)
        if saved is None:
            return None
        mask, prior, whole = saved
        if self._check_labels(mask, doc):
            self.notifications.notify(f"The saved mask of {doc.title} does not fit: "
                                      f"{self._check_labels(mask, doc)}", "error")
            return None
        session = self._new_session(doc, mask, "the project", whole=whole, prior=prior)
        self.notifications.notify(f"Loaded the saved mask of {doc.title} from the project")
        return session

    def _on_model(self, info: Any) -> None:
        names = list(info.class_names) if info is not None else []
        if names != self._class_names and self.sessions:
            self.save_all()  # masks of other classes cannot stay open under this model
            for key in [k for k, s in self.sessions.items() if not s.dirty]:
                self._drop(key)
        self._class_names = names
        self.tools.set_num_classes(len(names))
        self._style_layer()
        if self.session is None and self.state.document is not None and names:
            self._on_document(self.state.document)

    def _on_result(self) -> None:
        doc = self._waiting
        if doc is not None and doc is self.state.document and self.annotating:
            self._auto_start(doc)

    def _forget_clean_sessions(self, keep: int = 8) -> None:
        """Drop saved, unchanged sessions of other images beyond ``keep`` (memory)."""
        others = [k for k, s in self.sessions.items() if s is not self.session and not s.dirty]
        for key in others[: max(0, len(others) - keep)]:
            self._drop(key)

    def _drop(self, key: Path | int) -> None:
        session = self.sessions.pop(key)
        if session is self.session:
            self._activate(None)
        self.undo_group.removeStack(session.stack)
        session.deleteLater()

    # ------------------------------------------------------------------ saving
    @property
    def dirty(self) -> bool:
        """Whether any image has unsaved edits."""
        return any(s.dirty for s in self.sessions.values())

    def dirty_sessions(self) -> list[EditSession]:
        """Sessions with unsaved edits."""
        return [s for s in self.sessions.values() if s.dirty]

    def save(self, session: EditSession) -> bool:
        """Save one session to the project (atomic; on failure it stays dirty)."""
        ok = self.projects.save(session, self._class_names)
        self._update_dirty()
        return ok

    def save_all(self) -> bool:
        """Save every unsaved mask; True when all were saved."""
        ok = all([self.save(s) for s in self.dirty_sessions()])
        self._update_dirty()
        return ok

    def _update_dirty(self, *_args: object) -> None:
        dirty = self.dirty
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirtyChanged.emit(dirty)
        self.stateChanged.emit()
