"""ProjectsUi: projects with their own classes, as a feature of the window.

File > New Project… (a folder of images and a class list), File > Open Project…, the
Project dock (the classes and their editor), and the model-mismatch notice: when the
loaded model's classes are not the open project's, Messages says so once per project and
model, and the dock's banner offers to map the classes by name, to start a model for the
project's classes (the shell's ``new_model_for_project`` action, implemented by the
feature that makes models) or to open another project. The project's classes have one
owner, :class:`~app.state.project_classes.ProjectClasses` (``context.projects.classes``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFileDialog, QFrame, QScrollArea

from app.features.host import AppContext, WindowHost
from app.features.projects.class_dock import ProjectDock
from app.features.projects.new_project import NewProjectDialog

NEW_MODEL_ACTION = "new_model_for_project"
"""The shell action that starts a model for the open project's classes (the hook)."""


class ProjectsUi(QObject):
    """The projects feature as installed in a window.

    Attributes:
        dialog: The New Project dialog while it is open (non-modal), else None.
    """

    def __init__(self, context: AppContext, host: WindowHost) -> None:
        """Add the Project dock and wire File > New Project… / Open Project…."""
        super().__init__(host.widget())
        self.context, self.host = context, host
        self.projects = context.projects
        self.classes = context.projects.classes
        self.dialog: NewProjectDialog | None = None
        self._said: set[tuple] = set()
        self.dock = ProjectDock(context, host.action(NEW_MODEL_ACTION))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.dock)  # (a short dock scrolls instead of squeezing the editor)
        host.add_dock("project", "Project", scroll, Qt.DockWidgetArea.RightDockWidgetArea,
                      tabify_with="legend")
        host.action("new_project").triggered.connect(lambda: self.new_project())
        host.action("open_project").triggered.connect(lambda: self.open_project())
        self.dock.openProjectRequested.connect(lambda: self.open_project())
        self.dock.newProjectRequested.connect(lambda: self.new_project())
        self.projects.labelsOffered.connect(lambda _offer: host.show_dock("project"))
        context.models.changed.connect(self._check_model)
        self.classes.classesChanged.connect(self._check_model)

    # ------------------------------------------------------------------ the model's classes
    def _check_model(self, *_args: object) -> None:
        """Say once per project and model that their classes differ, and what to do."""
        names = self.context.models.class_names()
        if not self.classes.model_differs(names):
            return
        key = (self.classes.folder, tuple(names))
        if key in self._said:
            return
        self._said.add(key)
        info = self.context.models.info
        label = getattr(info, "name", "") or "The loaded model"
        project = self.classes.names
        self.context.notifications.notify(
            f"{label} has other classes ({', '.join(names[:8])}{' …' if len(names) > 8 else ''}"
            f") than the project {self.classes.folder.name} ({', '.join(project[:8])}"
            f"{' …' if len(project) > 8 else ''}). Masks stay in the project's classes; its "
            "predictions are not used for them until you choose, in the Project dock: map "
            "the classes by name, a new model for the project's classes, or another project.",
            "warning")
        self.host.show_dock("project")

    # ------------------------------------------------------------------ commands
    def new_project(self) -> NewProjectDialog:
        """Show the New Project dialog (non-modal); Create makes and opens the project."""
        if self.dialog is not None:
            self.dialog.raise_()
            self.dialog.activateWindow()
            return self.dialog
        doc = self.context.state.document
        start = str(doc.path.parent) if doc is not None and doc.path is not None else ""
        models = self.context.models
        self.dialog = NewProjectDialog((models.class_names(), models.colors()), start,
                                       self.host.widget())
        self.dialog.createRequested.connect(self._create)
        self.dialog.finished.connect(self._dialog_closed)
        self.dialog.show()
        return self.dialog

    def _dialog_closed(self, *_args: object) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = None

    def _create(self) -> bool:
        dialog = self.dialog
        if dialog is None:
            return False
        folder = dialog.folder()
        ok = folder is not None and self.projects.create_project(
            folder, dialog.classes, dialog.images, copy_images=dialog.copy_images())
        if not ok:
            self.host.show_dock("messages")
            return False
        dialog.accept()
        self._show_images()
        return True

    def open_project(self, folder: str | Path | None = None) -> bool:
        """Open a project folder (asked for unless given) and list its images."""
        from core.annotation.project import PROJECT_FILE

        if folder is None:
            folder = QFileDialog.getExistingDirectory(self.host.widget(), "Open Project",
                                                      self.context.settings.last_dir)
            if not folder:
                return False
        folder = Path(folder)
        if not (folder / PROJECT_FILE).is_file():
            self.context.notifications.notify(
                f"{folder} is not an FCN Studio project (no {PROJECT_FILE}); File > New "
                "Project… makes one", "warning")
            return False
        if not self.projects.open_folder(folder, []):
            return False
        self._show_images()
        return True

    def _show_images(self) -> None:
        """List the open project's images in the file list (the first one shown)."""
        project = self.projects.project
        if project is None:
            return
        missing = set(project.missing_images())
        images = [project.image_path(i) for i in project.ids() if i not in missing]
        if missing:
            self.context.notifications.notify(
                f"{len(missing)} image(s) of the project are missing (moved or deleted): "
                f"{', '.join(sorted(missing)[:5])}", "warning")
        if images:
            self.context.documents.open_paths(images)
        self.host.show_dock("project")


def install_projects(context: AppContext, host: WindowHost) -> ProjectsUi:
    """Add projects with their own classes to the window ``host`` stands for."""
    return ProjectsUi(context, host)
