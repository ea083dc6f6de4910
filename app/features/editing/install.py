"""EditingUi: the editor as a feature (Annotate dock, Edit menu, saving, close guard, and
the corrections with the image and the model: edge tools, refinement, click correction)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.features.editing.click_correct import ClickCorrect
from app.features.editing.correction_worker import CorrectionController
from app.features.editing.dock import EditDock
from app.features.editing.edge_tools_ui import EdgeToolOptions, EdgeTools
from app.features.editing.edit_actions import CanvasKeys, EditActions
from app.features.editing.manager import EditingManager
from app.features.editing.preview_ui import PreviewControl
from app.features.editing.refine_ui import RefineUi
from app.features.editing.tool_settings import remember_tools
from app.features.host import AppContext, WindowHost
from app.workers.voc_export import VocExporter

ANNOTATE_KEY = "editing/annotate"
START_KEY = "editing/start"


def ask_discard(window: QWidget, failed: list[str]) -> bool:
    """Ask whether to close although masks could not be saved (True: close, losing them)."""
    box = QMessageBox(
        QMessageBox.Icon.Warning, "Unsaved masks",
        "These masks could not be saved:\n\n" + "\n".join(failed[:10]) +
        "\n\nClose anyway and lose their edits? (Strokes already in the project's "
        "stroke journal come back when the image is opened again.)",
        QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel, window)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    return box.exec() == QMessageBox.StandardButton.Discard


class EditingUi(QObject):
    """The editor as installed in a window.

    Attributes:
        confirm_discard: Called with the unsaved images' messages when closing although a
            save failed; True closes anyway. Tests replace it (no modal dialog).
    """

    def __init__(self, context: AppContext, host: WindowHost) -> None:
        """Build the manager, the actions and the Annotate dock; add them through ``host``."""
        super().__init__(host.widget())
        self.context, self.host = context, host
        self.projects = context.projects
        self.manager = EditingManager(context.state, context.viewer_canvas, self.projects,
                                      context.notifications, self)
        self.projects.add_saver(self.manager.save_all)
        self.actions = EditActions(host, self.manager.undo_group)
        self.dock = EditDock(self.manager, self.actions)
        self.exporter = VocExporter(self)
        self.confirm_discard: Callable[[list[str]], bool] = lambda failed: ask_discard(
            host.widget(), failed)
        host.add_dock("edit", "Annotate", self.dock, Qt.DockWidgetArea.LeftDockWidgetArea)
        host.add_close_guard(lambda: self.confirm_close())  # (tests replace it)
        self._wire()
        settings = context.settings
        self.keys = CanvasKeys(self.manager.tools, host.widget(), self)
        self.manager.annotatingChanged.connect(self.keys.set_annotating)
        self._install_corrections()
        remember_tools(self.manager.tools, settings)
        start = str(settings.value(START_KEY, "8s"))
        self.manager.start_choice = start
        self.dock.start_box.setCurrentIndex(max(0, self.dock.start_box.findData(start)))
        if settings.value(ANNOTATE_KEY, False, bool):
            self.actions.annotate.setChecked(True)

    def _install_corrections(self) -> None:
        """The tools with the image and the model, their thread and their preview."""
        m, a = self.manager, self.actions
        self.corrections = CorrectionController(self)
        self.host.add_shutdown(self.corrections.shutdown)
        self.previews = PreviewControl(m.canvas, a, self)
        self.edge = EdgeTools(m, self.corrections, self.host, self.context.settings, self)
        self.refiner = RefineUi(m, self.corrections, self.previews, a, self.host, self)
        self.clicks = ClickCorrect(m, self.corrections, self.previews, self.context.models,
                                   self.host, self)
        self.dock.add_tool_options(EdgeToolOptions(self.edge, a.snap))
        a.snap.toggled.connect(m.tools.set_snap_edges)
        m.tools.snapChanged.connect(a.snap.setChecked)

    @property
    def tools(self) -> object:
        """The canvas tools (ToolController)."""
        return self.manager.tools

    def _wire(self) -> None:
        ctx, a, m = self.context, self.actions, self.manager
        notify = ctx.notifications.notify
        a.annotate.toggled.connect(m.set_annotating)
        m.annotatingChanged.connect(a.annotate.setChecked)
        m.annotatingChanged.connect(lambda on: ctx.settings.set(ANNOTATE_KEY, bool(on)))
        a.tool_group.triggered.connect(lambda action: m.tools.set_tool(action.data()))
        m.tools.toolChanged.connect(lambda tool: a.tools[tool].setChecked(True))
        a.start.triggered.connect(lambda: m.start())
        a.start_file.triggered.connect(lambda: self.start_from_file())
        a.save.triggered.connect(lambda: self.save_now())
        a.project_folder.triggered.connect(lambda: self.choose_project())
        a.import_labelme.triggered.connect(lambda: self.import_labelme())
        a.export_voc.triggered.connect(lambda: self.export_voc())
        self.dock.start_box.activated.connect(
            lambda _i: ctx.settings.set(START_KEY, m.start_choice))
        m.dirtyChanged.connect(self.host.set_modified)
        ctx.state.classPicked.connect(self._on_class_picked)
        self.exporter.finished.connect(
            lambda root: notify(f"Exported a VOC dataset to {root} "
                                f"(python -m core train --data {root})"))
        self.exporter.failed.connect(lambda msg: notify(msg, "error"))

    def _on_class_picked(self, cls: int) -> None:
        if self.manager.annotating:
            self.manager.tools.set_class(cls)

    # ------------------------------------------------------------------ commands
    def start_from_file(self, path: str | None = None) -> object | None:
        """Ask for a mask file (unless given); start the current image's mask from it."""
        doc = self.context.state.document
        if path is None:
            start = str(doc.path.parent) if doc is not None and doc.path else ""
            path, _ = QFileDialog.getOpenFileName(self.host.widget(), "Start from a Mask File",
                                                  start, "Masks (*.png);;All files (*)")
            if not path:
                return None
        return self.manager.start_from_file(path)

    def save_now(self) -> bool:
        """Save every unsaved mask (Ctrl+S)."""
        if not self.manager.dirty_sessions():
            self.host.show_message("Every mask is saved", 3000)
            return True
        ok = self.manager.save_all()
        if ok:
            self.context.notifications.notify(f"Saved the masks in {self.projects.folder}")
        return ok

    def choose_project(self, folder: str | None = None) -> bool:
        """Choose (open or create) the project folder; unsaved masks go to the new one."""
        if folder is None:
            doc = self.context.state.document
            start = str(doc.path.parent) if doc is not None and doc.path else ""
            folder = QFileDialog.getExistingDirectory(self.host.widget(), "Project Folder", start)
            if not folder:
                return False
        ok = self.projects.open_folder(folder, self.context.state.class_names())
        if ok:
            self.manager.reload_current()
        return ok

    def import_labelme(self, paths: list[str] | None = None) -> object:
        """File > Import labelme…."""
        from app.features.editing.labelme_import import import_dialog

        return import_dialog(self, paths)

    def export_voc(self, out: str | None = None, corrected_only: bool = False) -> bool:
        """Save, then write the project as a VOC dataset in a worker thread."""
        notify = self.context.notifications.notify
        if not self.manager.save_all():
            notify("Export stopped: some masks could not be saved", "error")
            return False
        project = self.projects.project
        if project is None or not project.labeled_ids():
            notify("Nothing to export: no mask has been saved yet", "warning")
            return False
        if out is None:
            out = QFileDialog.getExistingDirectory(self.host.widget(), "Export VOC Dataset To",
                                                   str(project.folder.parent))
            if not out:
                return False
        return self.exporter.export(project, str(Path(out)), corrected_only)

    # ------------------------------------------------------------------ closing
    def confirm_close(self) -> bool:
        """Save every unsaved mask before closing; ask only when a save failed."""
        m = self.manager
        if m.save_all():
            self.exporter.shutdown()
            return True
        failed = [f"{s.path.name if s.path else 'untitled'}: {s.save_error}"
                  for s in m.dirty_sessions()]
        if self.confirm_discard(failed):
            self.exporter.shutdown()
            return True
        return False


def install_editing(context: AppContext, host: WindowHost) -> EditingUi:
    """Add the editor to the window ``host`` stands for."""
    return EditingUi(context, host)
