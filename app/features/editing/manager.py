"""EditingManager: the editable masks of the open images, shown and saved.

One :class:`EditSession` per image file, kept while browsing (undo history included).
The current image's session is shown on the viewer canvas by a :class:`MaskLayerItem`
(instead of the prediction overlay) while annotating. Unsaved masks are written to the
project when switching images, every 30 s and on close; in between, every finished edit
goes to the image's stroke journal (:mod:`app.features.editing.journaling`), which is
replayed over the saved mask when the image is opened again after a crash.

Masks are in the open project's classes (``projects.classes``, the
:class:`~app.state.project_classes.ProjectClasses` state), whatever model is loaded: a
prediction starts a mask only when its classes are the project's or are mapped onto them
by name. A labelme JSON file beside an image without a saved mask becomes its mask when
the image is opened (:func:`app.features.editing.labelme_import.import_beside`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoGroup

from app.canvas.canvas import ImageCanvas
from app.canvas.layers import Z_EDIT
from app.features.editing.labelme_import import BesideImports, offer_labels
from app.features.editing.mask_classes import MaskClasses
from app.features.editing.mask_layer import MaskLayerItem
from app.features.editing.session import EditSession
from app.features.editing.tool_controller import ToolController
from app.services.projects import ProjectManager, Restored
from app.state.display import VARIANTS, ViewerState
from app.state.document import ImageDocument
from app.state.notifications import NotificationCenter

EMPTY, EMPTY_VOID, REFERENCE_MASK = "empty", "empty-void", "reference"
START_CHOICES: dict[str, str] = {
    **{v: f"FCN-{v} prediction" for v in VARIANTS},
    EMPTY: "Empty (background)", EMPTY_VOID: "Rough labels (unpainted = void)",
    REFERENCE_MASK: "Reference mask",
}
"""Where a new mask can start from (a mask file is the other choice)."""


def _key(doc: ImageDocument) -> Path | int:
    return doc.path.resolve() if doc.path is not None else id(doc)


class EditingManager(QObject):
    """Sessions by image, the annotate mode, the canvas tools and saving.

    Attributes:
        ask_add_labels: ``ask_add_labels(labels, file)``: labels a labelme file has and the
            project has not: add them now (True), never (False), or later (None; the
            default offers them in the Project dock, without a modal question).

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
        self._said_rough: set[str] = set()  # the rough-labels fallbacks explained
        self.undo_group = QUndoGroup(self)
        self.layer = MaskLayerItem()
        canvas.add_layer("mask", self.layer, Z_EDIT)
        self.layer.hide()
        self.tools = ToolController(canvas, lambda: self.session if self.annotating else None,
                                    self)
        self.tools.message.connect(lambda level, text: notifications.notify(text, level))
        self.classes = projects.classes
        self.mask = MaskClasses(state, projects, notifications)
        self._dirty = False
        self._waiting: ImageDocument | None = None
        self.declined_labels: set[str] = set()
        self.beside = BesideImports(self)
        self.ask_add_labels: Callable[[list[str], Path], bool | None] = \
            lambda labels, file: offer_labels(self, labels, file)
        state.documentChanged.connect(self._on_document)
        state.modelChanged.connect(self._on_model)
        self.classes.classesChanged.connect(self._on_classes)
        state.resultChanged.connect(self._on_result)
        state.overlayChanged.connect(self._style_layer)
        projects.timer.timeout.connect(self._autosave)
        projects.timer.start()
        projects.projectChanged.connect(self._on_project)
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
        with self.mask.opening():
            self.mask.ensure_project(doc)
            self._on_classes()
        if not self._class_names:
            self.notifications.notify("Load a model or make a project (File > New Project…) "
                                      "first: its classes are the mask's", "warning")
            return None
        whole = False
        if choice in VARIANTS:
            out = self.state.output(choice)
            if out is None:
                self.notifications.notify(
                    f"No FCN-{choice} prediction of {doc.title} yet: run the segmentation "
                    "(Ctrl+R) or start from an empty mask", "warning")
                return None
            labels = self.mask.in_project(out.labels)
            if labels is None:
                return None
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
        problem = self.mask.check(labels, doc)
        if problem:
            self.notifications.notify(f"Mask not used: {problem}", "error")
            return None
        session = self.sessions.get(_key(doc))
        if session is None:
            session = self._new_session(doc, labels, source, whole=whole, unsaved=whole)
            if whole:  # the start itself is unsaved work: journal it now
                session.journal.begin()
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

    def _new_session(self, doc: ImageDocument, labels: np.ndarray, source: str, *,
                     whole: bool = False, prior: np.ndarray | None = None,
                     unsaved: bool = False) -> EditSession:
        path = doc.path
        opener = None
        if path is not None:
            def opener(replay: bool) -> object:
                return self.projects.open_journal(path, self._class_names, replay=replay)
        session = EditSession(path, labels, len(self._class_names), source, whole=whole,
                              prior=prior, unsaved=unsaved, journal_opener=opener,
                              notify=self.notifications.notify, parent=self)
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
        why = self._why_not_from_prediction() if self.start_choice in VARIANTS else ""
        if why:
            # A new image starts as rough labels, where every pixel not painted is void
            # and ignored by training.
            if why not in self._said_rough:
                self._said_rough.add(why)
                self.notifications.notify(
                    f"{why}: new masks start as rough labels (paint a few strokes of each "
                    "class; unpainted pixels are void and ignored by training)")
            self.start(EMPTY_VOID)
            return
        if self.start_choice in VARIANTS and self.state.output(self.start_choice) is None:
            self._waiting = doc
            return
        self.start()

    def _why_not_from_prediction(self) -> str:
        """Why the model's predictions should not start a new mask ('' when they may): its
        classes are not the mask's (and not mapped), or it is a new model whose new classes'
        score layers are still zero (it has not been trained: its prediction would label
        every pixel with the kept classes, and training on that would teach exactly that)."""
        names = self.state.class_names()
        if not names:
            return "No model is loaded"
        probe = np.zeros((1, 1), np.uint8)
        if self.mask.classes.to_project(probe, names) is None:
            return ("The model's classes are not this project's, so its predictions cannot "
                    "start a mask")
        from core.training.new_model import untrained_classes

        untrained = untrained_classes(self.state.model_info)
        if untrained:
            return ("The model is new and not trained yet, so its predictions know nothing "
                    "of " + ", ".join(untrained[:5]))
        return ""

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
        self.layer.set_colors(st.mask_colors(), st.hidden_classes)
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
        if session is None and doc is not None and doc.path is not None:
            with self.mask.opening():
                if self._class_names:  # (a model known: not while the first one loads)
                    self.mask.find_project(doc)  # its project, if it has one
                    self._on_classes()
                if self._class_names:
                    session = self._restore(doc)
            if session is None and self._class_names:
                self.beside.schedule(doc)
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
        """The session of ``doc`` from the project: its saved mask, then the strokes of
        its journal that were not saved (a crash) as one undoable, unsaved edit."""
        found: Restored | None = self.projects.restore(doc.path)
        if found is None:
            return None
        for labels in (found.saved, found.start, found.mask):
            problem = self.mask.check(labels, doc) if labels is not None else ""
            if problem:
                self.notifications.notify(f"The saved mask of {doc.title} does not fit: "
                                          f"{problem}", "error")
                return None
        if found.saved is not None:
            session = self._new_session(doc, found.saved, "the project", whole=found.whole,
                                        prior=found.prior)
        else:
            session = self._new_session(doc, found.start, "the stroke journal")
        session.journal.attach(found.journal)
        edit = None
        if not np.array_equal(found.mask, session.labels):
            edit = session.image.replace(found.mask, label=f"recovered {found.strokes} "
                                         f"stroke{'s' if found.strokes != 1 else ''}")
        if edit is not None:
            session.push(edit, journaled=True)
            self.notifications.notify(
                f"Recovered {found.strokes} stroke{'s' if found.strokes != 1 else ''} of "
                f"{doc.title} not saved before the app closed (saved at the next autosave; "
                "Ctrl+Z takes them back)", "warning")
        elif found.saved is not None:
            self.notifications.notify(f"Loaded the saved mask of {doc.title} from the project")
        return session

    @property
    def _class_names(self) -> list[str]:
        return self.mask.names

    def _on_model(self, _info: Any) -> None:
        """Another model: without a project its classes are the mask's; with one, nothing
        changes (masks stay in the project's classes)."""
        self._on_classes()

    def _on_classes(self) -> None:
        """The classes of the masks changed (a project opened, a class edit, a model
        without a project): masks held in another numbering are let go of (the project
        manager saved them before), the current image's mask is loaded again."""
        old = list(self.mask.names)
        changed = self.mask.update()
        if changed:
            self.beside.tried.clear()  # (a label added since may import now)
        if changed and self.sessions:
            if not self.classes.is_open:
                self.mask.names = old  # (saved in the classes they were made in)
                self.save_all()  # masks of other classes cannot stay open under this model
                self.mask.update()
            for key in [k for k, s in self.sessions.items() if not s.dirty]:
                self._drop(key)
        names = self.mask.names
        self.tools.set_num_classes(len(names))
        self._style_layer()
        if (changed and not self.mask.loading and self.session is None
                and self.state.document is not None and names):
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

    def _autosave(self) -> None:
        """The timer's save: every unsaved mask but one with a stroke in progress."""
        busy = self.session if self.tools.busy else None
        for session in self.dirty_sessions():
            if session is not busy:
                self.save(session)
        self._update_dirty()

    def _on_project(self, project: Any) -> None:
        """Another project folder: journals of the old one follow the sessions to it."""
        if project is None:
            return  # (no project to move them to: they stay where they are)
        folder = Path(project.folder).resolve()
        for session in self.sessions.values():
            journal = session.journal.journal
            if journal is None or journal.path.parent.parent.resolve() == folder:
                continue
            session.journal.detach()
            if session.dirty:
                session.journal.begin()

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
