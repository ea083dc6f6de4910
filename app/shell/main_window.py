"""MainWindow: the window's layout (tabs, docks, status bar), its actions, and the features
it hosts (each installed with an AppContext and the window's WindowHost)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QTabWidget, QWidget

from app.canvas.canvas import ImageCanvas
from app.common.stats import hover_text
from app.features.batch import install_batch
from app.features.editing import install_editing
from app.features.export.install import install_export
from app.features.finetune.install import install_finetune
from app.features.host import AppContext
from app.features.insight.install import install_insight
from app.features.models.install import install_models
from app.features.projects.install import install_projects
from app.panels.file_list import FileList
from app.panels.legend import LegendView
from app.panels.messages import NotificationPanel
from app.panels.model_panel import ModelPanel
from app.panels.stats_panel import StatsPanel
from app.services.inference import InferenceService
from app.services.projects import ProjectManager
from app.services.settings import Settings
from app.shell.actions import Actions
from app.shell.host import ShellHost
from app.shell.model_menu import ModelMenu
from app.shell.shortcuts import install_shortcuts_help
from app.shell.status_bar import StatusBar
from app.state.display import ViewerState
from app.state.model import ModelState
from app.state.navigator import Navigator
from app.state.notifications import NotificationCenter
from app.views.compare import CompareView
from app.views.heatmap import HeatmapView
from app.views.viewer import ViewerView
from core.imagefiles import IMAGE_SUFFIXES

CHECKPOINT_SUFFIXES = (".safetensors",)


def _short(text: str, limit: int = 110) -> str:
    """A status-bar version of a message (the Messages dock keeps the whole text)."""
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


class MainWindow(QMainWindow):
    """The FCN Studio window: layout, actions and the status bar; the features plug in.

    Heavy work (torch, the model) starts after the first paint.

    Signals:
        firstPainted(): the window has been painted once.
    """

    firstPainted = Signal()

    def __init__(self, settings: Settings | None = None, parent: QWidget | None = None) -> None:
        """Build the UI; nothing heavy is imported here."""
        super().__init__(parent)
        self.setWindowTitle("FCN Studio[*]")
        self.setObjectName("fcn-studio-main")
        self.resize(1400, 900)
        self.settings = settings or Settings()
        self.notifications = NotificationCenter(self)
        self.models = ModelState(self)
        self.state = ViewerState(self, self.models)
        self.navigator = Navigator(parent=self)
        self.inference = InferenceService(self.state, self.settings, self.notifications, self)
        self.controller = self.inference.controller
        self.projects = ProjectManager(self.settings, self.notifications, self,
                                       classes=self.state.project_classes)
        self.actions = Actions(self)
        self.viewer = ViewerView(self.state)
        self.compare = CompareView(self.state)
        self.heatmaps = HeatmapView(self.state)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.viewer, "Viewer")
        self.tabs.addTab(self.compare, "Compare 32s / 16s / 8s")
        self.tabs.addTab(self.heatmaps, "Heatmaps")
        self.setCentralWidget(self.tabs)
        self.file_list = FileList(self.navigator)
        self.legend = LegendView(self.state)
        self.stats = StatsPanel(self.state)
        self.model_panel = ModelPanel(self.state)
        self.messages = NotificationPanel(self.notifications)
        self.status = StatusBar(self)
        self.host = ShellHost(self, self.actions, self.status)
        self.docks = self.host.docks
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.host.add_dock("files", "Files", self.file_list, left)
        self.host.add_dock("legend", "Classes", self.legend, right)
        self.host.add_dock("stats", "Statistics", self.stats, right)
        self.host.add_dock("model", "Model", self.model_panel, right, tabify_with="stats")
        self.host.add_dock("messages", "Messages", self.messages,
                           Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([self.docks["files"], self.docks["legend"]], [220, 330],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["messages"]], [90], Qt.Orientation.Vertical)
        self._connect()
        self.model_menu = ModelMenu(self, self.actions, self.status, self.inference)
        context = AppContext(self.settings, self.notifications, self.state, self.models,
                             self.navigator, self.inference, self.projects, self.viewer.canvas)
        self.editing = install_editing(context, self.host)
        self.finetune = install_finetune(context, self.host)
        self.models_ui = install_models(context, self.host)
        self.batch = install_batch(context, self.host)
        self.exporter = install_export(context, self.host)
        self.insight = install_insight(context, self.host)
        self.projects_ui = install_projects(context, self.host)
        # room for about eight classes in the legend (it scrolls beyond that)
        self.legend.setMinimumHeight(8 * self.legend.fontMetrics().height() + 60)
        self._painted = False
        self._pending: tuple | None = None
        self.setAcceptDrops(True)
        self.installEventFilter(self)
        self._restore_layout()

    # ------------------------------------------------------------------ construction
    def _connect(self) -> None:
        a, st, nav = self.actions, self.state, self.navigator
        a.open_files.triggered.connect(lambda: self.open_files())
        a.open_folder.triggered.connect(lambda: self.open_folder())
        a.load_reference.triggered.connect(lambda: self.load_reference())
        a.quit.triggered.connect(self.close)
        a.next_image.triggered.connect(nav.next)
        a.prev_image.triggered.connect(nav.previous)
        a.fit.triggered.connect(lambda: self.current_canvas().fit())
        a.actual_size.triggered.connect(lambda: self.current_canvas().actual_size())
        a.zoom_in.triggered.connect(lambda: self.current_canvas().zoom_at(1.25))
        a.zoom_out.triggered.connect(lambda: self.current_canvas().zoom_at(0.8))
        a.show_overlay.setChecked(st.overlay_visible)
        a.show_overlay.toggled.connect(lambda on: st.set_overlay(visible=on))
        a.contours.setChecked(st.overlay_contours)
        a.contours.toggled.connect(lambda on: st.set_overlay(contours=on))
        a.show_disagreement.setChecked(False)
        st.set_show_disagreement(False)
        a.show_disagreement.toggled.connect(st.set_show_disagreement)
        a.show_changes.toggled.connect(st.set_show_changes)
        a.about.triggered.connect(self._about)
        install_shortcuts_help(self, a.shortcuts)
        a.source_box.activated.connect(
            lambda i: st.set_overlay(source=a.source_box.itemData(i))
        )
        st.set_overlay(opacity=self.settings.overlay_opacity)
        a.opacity.setValue(round(st.overlay_opacity * 100))
        a.opacity.valueChanged.connect(self._on_opacity)
        a.source_box.setCurrentIndex(a.source_box.findData(st.overlay_source))
        nav.documentOpened.connect(self._on_document)
        nav.problem.connect(self._on_problem)
        nav.listingChanged.connect(self._update_nav_actions)
        nav.currentChanged.connect(self._update_nav_actions)
        for canvas in self.all_canvases():
            canvas.hovered.connect(self._on_hover)
        self.notifications.posted.connect(
            lambda note: self.statusBar().showMessage(_short(note.text), 8000)
        )
        self._update_recent_menu()
        self._update_nav_actions()

    # ------------------------------------------------------------------ startup
    def start(
        self, paths: Sequence[str | os.PathLike[str]] = (), model: str | None = None
    ) -> None:
        """Load the model and open ``paths``, once the window has been painted."""
        self._pending = (list(paths), model)
        # normally started by the first paint; the timer is a safety net (e.g. minimized)
        QTimer.singleShot(0 if self._painted else 2000, self._run_pending)

    def _run_pending(self) -> None:
        if self._pending is None:
            return
        paths, model = self._pending
        self._pending = None
        self.load_model(model)
        if paths:
            self.open_paths(paths, remember=False)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """Notice the first paint of the window."""
        if obj is self and event.type() == QEvent.Type.Paint and not self._painted:
            self._painted = True
            self.firstPainted.emit()
            QTimer.singleShot(0, self._run_pending)
        return super().eventFilter(obj, event)

    # ------------------------------------------------------------------ opening
    def open_paths(self, paths: Sequence[str | os.PathLike[str]], remember: bool = True,
                   add: bool = False) -> bool:
        """Open files and folders (a checkpoint loads as the model); ``add``: append them
        to the image list instead of replacing it."""
        paths = [Path(p) for p in paths]
        models = [p for p in paths if p.suffix.lower() in CHECKPOINT_SUFFIXES]
        images = [p for p in paths if p not in models]
        if models:
            self.load_model(str(models[0]))
        if not images:
            return bool(models)
        listed = self.projects.claim_folders(images)  # a project folder opens the project
        found = self.navigator.open_paths(listed, add=add)
        if not found:
            self.notifications.notify(
                "No images found in " + ", ".join(str(p) for p in images), "warning"
            )
        elif remember:
            for p in images:
                self.settings.add_recent(p)
            self._update_recent_menu()
        return found

    def _dialog_dir(self) -> str:
        """Where file dialogs start: the current image's folder, else the last one used."""
        doc = self.state.document
        if doc is not None and doc.path is not None and doc.path.parent.is_dir():
            return str(doc.path.parent)
        return self.settings.last_dir

    def open_files(self) -> None:
        """Ask for image files and add them to the image list."""
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open Images", self._dialog_dir(),
            "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)",
        )
        if files:
            self.settings.last_dir = str(Path(files[0]).parent)
            self.open_paths(files, add=True)

    def open_folder(self) -> None:
        """Ask for a folder (plain, VOC or images/ + masks/) and open its images."""
        folder = QFileDialog.getExistingDirectory(self, "Open Folder", self._dialog_dir())
        if folder:
            self.settings.last_dir = folder
            self.open_paths([folder])

    def load_reference(self, path: str | os.PathLike[str] | None = None) -> bool:
        """Load a ground-truth mask for the current image."""
        doc = self.state.document
        if doc is None:
            self.notifications.notify("Open an image before loading its reference mask", "warning")
            return False
        if path is None:
            path, _ = QFileDialog.getOpenFileName(
                self, "Load Reference Mask", str(doc.path.parent if doc.path else ""),
                "Masks (*.png);;All files (*)",
            )
            if not path:
                return False
        from core.data.imageio import read_mask
        from core.errors import FCNStudioError

        try:
            mask = read_mask(path)
            doc.set_reference(mask, Path(path))
        except (FCNStudioError, ValueError) as exc:
            self.notifications.notify(f"Reference mask not loaded: {exc}", "error")
            return False
        names = self.state.class_names()
        labels = np.unique(mask)
        beyond = [int(v) for v in labels if len(names) <= v < 255] if names else []
        if beyond:
            shown = ", ".join(map(str, beyond[:8])) + (" ..." if len(beyond) > 8 else "")
            self.notifications.notify(
                f"Loaded reference mask {path}, but it has labels {shown} beyond this model's "
                f"{len(names)} classes (0-{len(names) - 1}): no metrics against it. Is it a "
                "mask for another class list?", "warning")
        else:
            self.notifications.notify(f"Loaded reference mask {path}")
        return True

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def _update_recent_menu(self) -> None:
        menu = self.actions.recent_menu
        menu.clear()
        for path in self.settings.recent_files():
            menu.addAction(path, lambda p=path: self.open_paths([p]))
        if menu.isEmpty():
            menu.addAction("(none)").setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear", lambda: (self.settings.clear_recent(),
                                             self._update_recent_menu()))

    def _update_nav_actions(self, *_args: object) -> None:
        nav = self.navigator
        self.actions.prev_image.setEnabled(nav.index > 0)
        self.actions.next_image.setEnabled(0 <= nav.index < len(nav.entries) - 1)

    def _on_document(self, doc: object) -> None:
        self.state.set_document(doc)
        entry = self.navigator.current
        title = doc.title if doc is not None else (entry.name if entry else "")
        self.setWindowTitle(f"{title}[*] — FCN Studio" if title else "FCN Studio[*]")
        self.status.hover_label.setText("")
        if doc is not None:
            self.inference.maybe_autorun(doc)

    def _on_problem(self, level: str, text: str) -> None:
        self.notifications.notify(text, level)
        if level == "error":
            self.viewer.show_message(text)

    # ------------------------------------------------------------------ model commands
    def load_model(self, path: str | os.PathLike[str] | None = None) -> None:
        """Load a checkpoint (None: the default model) on the preferred device."""
        self.inference.load_model(path)

    def run_current(self) -> bool:
        """Segment the current image (and the model set's panes); False when it cannot."""
        return self.inference.run_current()

    # ------------------------------------------------------------------ view helpers
    def all_canvases(self) -> list[ImageCanvas]:
        """Every canvas of every view."""
        return [self.viewer.canvas, *self.compare.canvases, self.heatmaps.canvas]

    def current_canvas(self) -> ImageCanvas:
        """The canvas of the visible tab (the first pane in the compare view)."""
        page = self.tabs.currentWidget()
        if page is self.compare:
            return self.compare.canvases[0]
        return self.heatmaps.canvas if page is self.heatmaps else self.viewer.canvas

    def _on_hover(self, x: int, y: int) -> None:
        doc, st = self.state.document, self.state
        if doc is None or x < 0:
            self.status.hover_label.setText("")
            return
        self.status.hover_label.setText(
            hover_text(doc.image, x, y, st.prediction(), st.class_names(), doc.reference)
        )

    def _on_opacity(self, value: int) -> None:
        self.state.set_overlay(opacity=value / 100)
        self.settings.overlay_opacity = value / 100

    def _about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About FCN Studio",
                          "FCN Studio: see, compare and correct what FCN-32s, 16s and 8s see.",
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # ------------------------------------------------------------------ events
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept dropped files and folders."""
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Open dropped files and folders."""
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            event.acceptProposedAction()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask the features (the editor saves its masks), stop every thread, close."""
        if not all(guard() for guard in self.host.close_guards):
            event.ignore()
            return
        self.settings.set("window/geometry", self.saveGeometry())
        self.settings.set("window/state", self.saveState())
        self.inference.shutdown()
        for stop in self.host.shutdowns:
            stop()  # files written so far stay complete
        super().closeEvent(event)
