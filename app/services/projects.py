"""The annotation project behind the editor: where masks are saved, loaded and exported.

A project is a folder in PASCAL VOC layout (:class:`core.annotation.project.Project`) with
its own classes: made by the user (File > New Project…, Open Project…, Project Folder…) or,
by default, ``fcn-studio-project`` next to the first image that gets a mask (with the
model's classes). The manager writes the open project's classes into the
:class:`~app.state.project_classes.ProjectClasses` state that views subscribe to; masks are
always saved in the project's numbering, whatever model is loaded. Before another project
opens or a class edit renumbers the masks, every unsaved mask is saved (or nothing
happens). Every write is atomic (a failed write leaves the previous
file intact); a failed save leaves the image's edits unsaved (the title keeps its ``*``)
with an error message. Reopening an image loads its saved mask again, with the
corrections that belong to it (the core's save manifest), and replays the image's stroke
journal over it: the strokes not saved before a crash (:meth:`ProjectManager.restore`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.services.settings import Settings
from app.state.notifications import NotificationCenter
from app.state.project_classes import ProjectClasses

AUTOSAVE_MS = 30_000
"""Unsaved masks are written every 30 s (and when switching images and on close)."""
SETTINGS_KEY = "project/folder"
SAVE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError)


def _save_errors() -> tuple[type[BaseException], ...]:
    from core.errors import FCNStudioError

    return (FCNStudioError, *SAVE_ERRORS)


@dataclass(frozen=True, eq=False)
class Restored:
    """What the project holds for an image: its saved mask and the journaled strokes.

    Attributes:
        saved: The saved mask, or None (nothing saved yet; the journal holds the start).
        prior: Corrected pixels recorded with the saved mask, or None.
        whole: The whole saved mask is the user's.
        mask: The mask to edit: ``saved`` with the journal's strokes replayed over it.
        start: With no saved mask, where the journaled session started; else None.
        strokes: Journaled changes replayed (the start record not counted).
        journal: The image's journal, in step with ``mask``; None when unavailable.
    """

    saved: np.ndarray | None
    prior: np.ndarray | None
    whole: bool
    mask: np.ndarray
    start: np.ndarray | None
    strokes: int
    journal: Any | None


class ProjectManager(QObject):
    """Opens or creates the project, maps image files to ids, saves and loads masks.

    Attributes:
        classes: The open project's classes (the state object views subscribe to).

    Signals:
        projectChanged(object): the open :class:`Project` (or None).
        saved(str): the image file whose mask was written.
        saveFailed(str, str): the image file whose mask could not be written, and why.
        classesEdited(object): a class edit or its undo was applied
            (a :class:`core.annotation.renumber.EditResult`; see
            :mod:`app.services.class_edits`).
        labelsOffered(object): labels the project lacks were found (a labelme import): an
            offer to add them (a :class:`app.services.class_edits.LabelOffer`).
    """

    projectChanged = Signal(object)
    saved = Signal(str)
    saveFailed = Signal(str, str)
    classesEdited = Signal(object)
    labelsOffered = Signal(object)

    def __init__(
        self, settings: Settings, notifications: NotificationCenter,
        parent: QObject | None = None, classes: ProjectClasses | None = None,
    ) -> None:
        """No project yet; the autosave timer is created stopped."""
        super().__init__(parent)
        self.settings = settings
        self.notifications = notifications
        self.classes = classes if classes is not None else ProjectClasses(parent=self)
        self.project: Any | None = None
        self._ids: dict[Path, str] = {}
        self.timer = QTimer(self)
        self.timer.setObjectName("autosave")
        self.timer.setInterval(AUTOSAVE_MS)
        self._savers: list[Callable[[], bool]] = []

    # ------------------------------------------------------------------ unsaved work
    def add_saver(self, save: Callable[[], bool]) -> None:
        """Register what writes unsaved masks (the editor): called by :meth:`save_pending`."""
        self._savers.append(save)

    def save_pending(self) -> bool:
        """Write every unsaved mask now (e.g. before training on them); True when all were."""
        return all([save() for save in self._savers])

    # ------------------------------------------------------------------ opening
    @property
    def folder(self) -> Path | None:
        """The project folder, or None."""
        return self.project.folder if self.project is not None else None

    def open_folder(self, folder: str | os.PathLike[str], class_names: list[str]) -> bool:
        """Open the project in ``folder``, creating one (with ``class_names``) if there is none.

        Returns:
            Whether a project is open now (errors are notified).
        """
        from core.annotation.project import PROJECT_FILE, Project

        folder = Path(folder)
        if not self._may_switch(folder):
            return False
        try:
            if (folder / PROJECT_FILE).is_file():
                project = Project.open(folder)
            else:
                if not class_names:
                    self.notifications.notify("Load a model or make a project with its own "
                                              "classes (File > New Project…) first",
                                              "warning")
                    return False
                project = Project.create(folder, class_names)
        except _save_errors() as exc:
            self.notifications.notify(f"Project not opened: {exc}", "error")
            return False
        self._set(project)
        self.notifications.notify(f"Project folder: {folder}")
        return True

    def _may_switch(self, folder: Path | None) -> bool:
        """Save every unsaved mask before another project opens; False when one failed."""
        if self.project is None or (folder is not None and
                                    Path(folder).resolve() == self.project.folder.resolve()):
            return True
        if self.save_pending():
            return True
        self.notifications.notify("Another project was not opened: some masks of this one "
                                  "could not be saved (see above)", "error")
        return False

    def _set(self, project: Any | None) -> None:
        self.project = project
        self._ids = {}
        if project is not None:
            for image_id in project.ids():
                self._ids[project.image_path(image_id)] = image_id
            self.settings.set(SETTINGS_KEY, str(project.folder))
            self.classes.set_project(project.folder, project.class_names, project.colors)
            recovered = getattr(project, "recovered", None)
            if recovered is not None:
                self.notifications.notify(
                    f"A class edit of {project.folder.name} was cut off before it was done "
                    f"(the app closed); it was finished now: {recovered.edit.summary()}",
                    "warning")
        else:
            self.classes.set_project(None, [], [])
        self.projectChanged.emit(project)

    def close(self) -> None:
        """Forget the project (nothing is written)."""
        self._set(None)

    def create_project(self, folder: str | os.PathLike[str], classes: Any,
                       images: list[Path], *, copy_images: bool = False) -> bool:
        """Create a project with its own ``classes`` (ProjectClass objects) and images, and
        open it; False (with a message) when it cannot be made."""
        from core.annotation.project import Project

        if not self._may_switch(None):
            return False
        try:
            project = Project.create(folder, classes, images, copy_images=copy_images)
        except _save_errors() as exc:
            self.notifications.notify(f"Project not created: {exc}", "error")
            return False
        self._set(project)
        self.notifications.notify(
            f"Created the project {project.folder} with {len(project)} image(s) and the "
            f"classes {', '.join(project.class_names)}")
        return True

    def claim_folders(self, paths: list[Path]) -> list[Path]:
        """Open the projects among ``paths`` (folders holding a project.json); each is
        replaced by its image files (others are returned as they are)."""
        from core.annotation.project import PROJECT_FILE

        out: list[Path] = []
        for path in paths:
            if path.is_dir() and (path / PROJECT_FILE).is_file() and \
                    self.open_folder(path, []):
                project = self.project
                missing = set(project.missing_images())
                out += [project.image_path(i) for i in project.ids() if i not in missing]
            else:
                out.append(path)
        return out

    def reload(self) -> bool:
        """Open the project again from disk (e.g. after a class edit failed midway: the
        core finishes it); when it cannot be opened it is closed, with a message."""
        from core.annotation.project import Project

        if self.project is None:
            return False
        try:
            project = Project.open(self.project.folder)
        except _save_errors() as exc:
            self.notifications.notify(f"Project closed: {exc}", "error")
            self._set(None)
            return False
        self._set(project)
        return True

    def announce_classes(self, result: Any) -> None:
        """A class edit (or its undo) was applied to the open project: its classes are
        announced, with whether labels now mean other classes (masks in memory go)."""
        project, edit = self.project, result.edit
        renumbered = edit.renumbers or len(edit.before) != len(edit.after)
        self.classes.set_project(project.folder, project.class_names, project.colors,
                                 renumbered=renumbered)
        self.classesEdited.emit(result)

    def contains(self, image: Path) -> bool:
        """Whether ``image`` is in the open project."""
        return self.project is not None and image.resolve() in self._ids

    def find_for(self, image: Path) -> Any | None:
        """The project holding ``image``: the open one, else the last used or the default one.

        An existing project is opened only when none is open yet (one project at a time).
        """
        if self.project is not None:
            return self.project if self.contains(image) else None
        from core.annotation.project import PROJECT_FILE, Project

        last = self.settings.value(SETTINGS_KEY)
        candidates = [Path(last)] if last else []
        here = image.resolve().parent
        candidates += [here, here.parent] if here.name == "JPEGImages" else [here]
        candidates.append(Project.default_folder([image]))
        for folder in candidates:
            if not (folder / PROJECT_FILE).is_file():
                continue
            try:
                project = Project.open(folder)
            except _save_errors():
                continue
            if image.resolve() in {project.image_path(i) for i in project.ids()}:
                self._set(project)
                return project
        return None

    def ensure(self, image: Path, class_names: list[str]) -> Any:
        """The project to save ``image``'s mask in: the open one, else the one holding
        the image, else the default one (created with ``class_names``, the model's).

        Masks are in the project's classes, whatever the model's are.

        Raises:
            DatasetError: No project could be opened or created.
        """
        from core.errors import DatasetError

        if self.project is None and self.find_for(image) is None:
            from core.annotation.project import Project

            if not self.open_folder(Project.default_folder([image]), class_names):
                raise DatasetError("no project folder could be opened or created")
        return self.project

    def image_id(self, image: Path, add: bool = True) -> str | None:
        """The project id of an image file (added to the project when ``add``)."""
        key = image.resolve()
        if key not in self._ids and add and self.project is not None:
            for image_id in self.project.add_images([key]):
                self._ids[key] = image_id
        return self._ids.get(key)

    # ------------------------------------------------------------------ masks
    def load(self, image: Path) -> tuple[np.ndarray, np.ndarray | None, bool] | None:
        """``(mask, corrected pixels or None, whole mask is the user's)`` saved for ``image``.

        The corrections are those saved with the mask (``Project.load_pair``); when they
        are unknown or were restored after a save cut off, a message says so.
        """
        found = self._saved(image)
        if found is None or found[2] is None:
            return None
        saved = found[2]
        return saved.mask, saved.corrections, saved.whole

    def _saved(self, image: Path) -> tuple[Any, str, Any | None] | None:
        """``(project, image id, SavedMask or None)``; None when not in a project or the
        saved files are unreadable (notified)."""
        project = self.find_for(image)
        if project is None:
            return None
        image_id = self.image_id(image, add=False)
        if image_id is None:
            return None
        try:
            saved = project.load_pair(image_id)
        except _save_errors() as exc:
            self.notifications.notify(f"Saved mask of {image.name} not loaded: {exc}", "error")
            return None
        if saved is not None and saved.note:
            self.notifications.notify(f"Corrections of {image.name}: {saved.note}",
                                      "warning" if saved.status == "unknown" else "info")
        return project, image_id, saved

    def restore(self, image: Path) -> Restored | None:
        """The saved mask of ``image`` with its stroke journal replayed over it.

        None when the image is not in a project, or has neither a saved mask nor
        journaled strokes. A journal that cannot be read or replayed is said in a message
        and the saved mask is used alone.
        """
        found = self._saved(image)
        if found is None:
            return None
        project, image_id, saved = found
        base = saved.mask if saved is not None else None
        journal, mask, strokes, start = None, base, 0, None
        try:
            journal = project.journal(image_id)
            mask, strokes = journal.replay(base)
            start = journal.start
        except _save_errors() as exc:
            journal, mask, strokes = None, base, 0
            self.notifications.notify(
                f"Stroke journal of {image.name} not replayed: {exc}", "warning")
        if journal is not None and journal.discarded:
            self.notifications.notify(f"Stroke journal of {image.name}: {journal.discarded}",
                                      "info")
        if mask is None:
            return None
        if saved is None:
            if start is None:  # (replay guarantees it; a journal that lost it is unusable)
                return None
            strokes -= 1  # the first record is where the session started
        return Restored(base, saved.corrections if saved else None,
                        bool(saved and saved.whole), mask, start, strokes, journal)

    def open_journal(self, image: Path, class_names: list[str], *,
                     replay: bool = True) -> Any:
        """The stroke journal of ``image`` (added to the project, created if needed).

        Args:
            image: The image file.
            class_names: The model's classes (a new project gets them).
            replay: Replay it over the saved mask (ready to append after its records);
                else it is only opened (``clear_after_save`` begins it).

        Raises:
            FCNStudioError: No project can hold the image, or the journal is unusable.
        """
        project = self.ensure(image, class_names)
        image_id = self.image_id(image)
        journal = project.journal(image_id)
        if replay:
            journal.replay(project.load_mask(image_id))
        return journal

    def save(self, session: Any, class_names: list[str]) -> bool:
        """Write a session's mask and corrected pixels atomically; True when saved.

        On failure the session stays dirty, its ``save_error`` says why and an error is
        notified; the previous file is left intact. On success ``session.mark_saved()``
        also clears the image's stroke journal (``clear_after_save``).
        """
        if session.path is None:
            return False
        try:
            project = self.ensure(session.path, class_names)
            image_id = self.image_id(session.path)
            project.save_mask(image_id, session.labels, session.corrections())
        except _save_errors() as exc:
            session.save_error = str(exc) or type(exc).__name__
            self.notifications.notify(
                f"Mask of {session.path.name} NOT saved (your edits are kept): "
                f"{session.save_error}", "error")
            self.saveFailed.emit(str(session.path), session.save_error)
            return False
        session.mark_saved()
        self.saved.emit(str(session.path))
        return True
