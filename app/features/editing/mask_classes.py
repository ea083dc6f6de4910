"""MaskClasses: the classes the editor's masks are in, following the open project's.

The project's class list has one owner, :class:`~app.state.project_classes.ProjectClasses`
(written by the project manager). This helper keeps what the editor's masks in memory were
made in, so that the editor knows when they must go (another project, a class edit that
renumbers), opens the project an image's mask goes to, and brings predictions and mask
files into the project's numbering.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from app.services.projects import ProjectManager
from app.state.display import ViewerState
from app.state.document import ImageDocument
from app.state.notifications import NotificationCenter


class MaskClasses:
    """The editor's view of the project's classes.

    Attributes:
        names: The classes of the masks held in memory (the project's; none open: the
            model's).
        numbering: The :attr:`ProjectClasses.numbering` they were made in.
        loading: A project is being opened for an image (no reload meanwhile).
    """

    def __init__(self, state: ViewerState, projects: ProjectManager,
                 notifications: NotificationCenter) -> None:
        """Follow ``projects.classes`` (the model's classes without a project)."""
        self.state, self.projects, self.notifications = state, projects, notifications
        self.classes = projects.classes
        self.names: list[str] = []
        self.numbering = self.classes.numbering
        self.loading = False

    def update(self) -> bool:
        """Take the current classes; True when masks in the old ones must be let go of
        (other classes, or renumbered; not for a rename or recolor)."""
        names = self.classes.mask_names()
        renamed_only = (self.classes.numbering == self.numbering
                        and len(names) == len(self.names))
        drop = names != self.names and not renamed_only
        self.names, self.numbering = names, self.classes.numbering
        return drop

    @contextlib.contextmanager
    def opening(self) -> Iterator[None]:
        """While a project is opened for an image (the editor must not reload then)."""
        before, self.loading = self.loading, True
        try:
            yield
        finally:
            self.loading = before

    def find_project(self, doc: ImageDocument) -> None:
        """Open the project holding ``doc``'s image, when none is open."""
        if doc.path is not None and not self.classes.is_open:
            with self.opening():
                self.projects.find_for(doc.path)

    def ensure_project(self, doc: ImageDocument | None) -> None:
        """Open or create the project ``doc``'s mask goes to (its classes are the mask's);
        without one (it cannot be made) masks are in the model's classes."""
        if doc is None or doc.path is None or self.classes.is_open:
            return
        from core.errors import FCNStudioError

        with self.opening(), contextlib.suppress(FCNStudioError, OSError, ValueError):
            self.projects.ensure(doc.path, self.state.class_names())  # (errors notified)

    def in_project(self, labels: np.ndarray) -> np.ndarray | None:
        """A prediction's labels in the project's classes (None, with a message, when the
        model's classes differ and are not mapped by name)."""
        mapped = self.classes.to_project(labels, self.state.class_names())
        if mapped is None:
            self.notifications.notify(
                "The model's classes are not this project's: choose \"Map classes by name\" "
                "in the Project dock (or a model for these classes), or start from an empty "
                "mask", "warning")
        return mapped

    def check(self, labels: np.ndarray, doc: ImageDocument) -> str:
        """Why ``labels`` cannot be ``doc``'s mask ('' when they can)."""
        if labels.shape != (doc.height, doc.width):
            return (f"it is {labels.shape[1] if labels.ndim > 1 else '?'}x{labels.shape[0]}, "
                    f"the image {doc.width}x{doc.height}")
        n = len(self.names)
        bad = np.unique(labels[(labels >= n) & (labels != 255)])
        if bad.size:
            owner = "the project" if self.classes.is_open else "the model"
            return f"labels {bad[:10].tolist()} are not classes of {owner} (0..{n - 1}, 255)"
        return ""
