"""The annotation project behind the editor: where masks are saved, loaded and exported.

A project is a folder in PASCAL VOC layout (:class:`core.annotation.project.Project`):
chosen by the user (File > Project Folder…) or, by default, ``fcn-studio-project`` next to
the first image that gets a mask. Every write is atomic (a failed write leaves the previous
file intact); a failed save leaves the image's edits unsaved (the title keeps its ``*``)
with an error message. Reopening an image loads its saved mask again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.services.settings import Settings
from app.state.notifications import NotificationCenter

AUTOSAVE_MS = 30_000
"""Unsaved masks are written every 30 s (and when switching images and on close)."""
SETTINGS_KEY = "project/folder"
SAVE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError)


def _save_errors() -> tuple[type[BaseException], ...]:
    from core.errors import FCNStudioError

    return (FCNStudioError, *SAVE_ERRORS)


class ProjectManager(QObject):
    """Opens or creates the project, maps image files to ids, saves and loads masks.

    Signals:
        projectChanged(object): the open :class:`Project` (or None).
        saved(str): the image file whose mask was written.
        saveFailed(str, str): the image file whose mask could not be written, and why.
    """

    projectChanged = Signal(object)
    saved = Signal(str)
    saveFailed = Signal(str, str)

    def __init__(
        self, settings: Settings, notifications: NotificationCenter, parent: QObject | None = None
    ) -> None:
        """No project yet; the autosave timer is created stopped."""
        super().__init__(parent)
        self.settings = settings
        self.notifications = notifications
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
        try:
            if (folder / PROJECT_FILE).is_file():
                project = Project.open(folder)
            else:
                if not class_names:
                    self.notifications.notify("Load a model before creating a project: its "
                                              "classes become the project's", "warning")
                    return False
                project = Project.create(folder, class_names)
        except _save_errors() as exc:
            self.notifications.notify(f"Project not opened: {exc}", "error")
            return False
        self._set(project)
        self.notifications.notify(f"Project folder: {folder}")
        return True

    def _set(self, project: Any | None) -> None:
        self.project = project
        self._ids = {}
        if project is not None:
            for image_id in project.ids():
                self._ids[project.image_path(image_id)] = image_id
            self.settings.set(SETTINGS_KEY, str(project.folder))
        self.projectChanged.emit(project)

    def close(self) -> None:
        """Forget the project (nothing is written)."""
        self._set(None)

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
        """The project to save ``image``'s mask in (the default one is created if needed).

        Raises:
            DatasetError: The project's classes differ from ``class_names``.
        """
        from core.errors import DatasetError

        if self.project is None and self.find_for(image) is None:
            from core.annotation.project import Project

            if not self.open_folder(Project.default_folder([image]), class_names):
                raise DatasetError("no project folder could be opened or created")
        if list(self.project.class_names) != list(class_names):
            raise DatasetError(
                f"the project {self.project.folder} has the classes "
                f"{', '.join(self.project.class_names)}, the model "
                f"{', '.join(class_names)}: choose another project folder (File > Project "
                "Folder…)"
            )
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
        """``(mask, corrected pixels or None, whole mask is the user's)`` saved for ``image``."""
        project = self.find_for(image)
        if project is None:
            return None
        image_id = self.image_id(image, add=False)
        if image_id is None:
            return None
        try:
            mask = project.load_mask(image_id)
            if mask is None:
                return None
            prior = project.load_corrections(image_id)
        except _save_errors() as exc:
            self.notifications.notify(f"Saved mask of {image.name} not loaded: {exc}", "error")
            return None
        whole = prior is None and project.image(image_id).corrected
        return mask, prior, whole

    def save(self, session: Any, class_names: list[str]) -> bool:
        """Write a session's mask and corrected pixels atomically; True when saved.

        On failure the session stays dirty, its ``save_error`` says why and an error is
        notified; the previous file is left intact.
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
