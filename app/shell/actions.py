"""The window's actions, menus and toolbar (wiring to handlers is done by the window)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QMainWindow,
    QMenu,
    QSlider,
    QStyle,
    QToolBar,
)

from app.state.display import REFERENCE, VARIANTS

StdKey = QKeySequence.StandardKey


def _action(
    window: QMainWindow, text: str, shortcuts: list | None = None, tip: str = "",
    checkable: bool = False,
) -> QAction:
    action = QAction(text, window)
    if shortcuts:
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    action.setCheckable(checkable)
    return action


class Actions:
    """Every QAction of the main window, plus the menus and the toolbar holding them."""

    def __init__(self, window: QMainWindow) -> None:
        """Create the actions and put them into ``window``'s menu bar and toolbar."""
        a = _action
        self.open_files = a(window, "&Open Images…", [StdKey.Open], "Open image files")
        self.open_folder = a(window, "Open &Folder…", ["Ctrl+Shift+O"],
                             "Open every image of a folder or dataset")
        self.load_reference = a(window, "Load &Reference Mask…", [],
                                "Load the ground-truth mask of this image")
        self.export_mask = a(window, "Export &Mask as PNG…", ["Ctrl+E"])
        self.export_overlay = a(window, "Export &Overlay as PNG…", ["Ctrl+Shift+E"])
        self.export_heatmap = a(window, "Export &Heatmap as PNG…", [])
        self.export_grid = a(window, "Export &Compare Grid as PNG…", [])
        self.new_project = a(window, "&New Project…", ["Ctrl+Shift+N"],
                             "Make a project: a folder of images and your own classes")
        self.open_project = a(window, "Open Pro&ject…", [],
                              "Open a project folder: its classes, images and masks")
        self.new_model_for_project = a(
            window, "New Model for This Project's Classes…", [],
            "Start a model with the project's classes from the loaded one (its trunk; "
            "matching classes keep their weights)")
        self.new_model_for_project.setEnabled(False)  # (the feature that makes one enables it)
        self.quit = a(window, "&Quit", [StdKey.Quit])
        self.next_image = a(window, "&Next Image", ["D", "PgDown"], "Next image (D)")
        self.prev_image = a(window, "&Previous Image", ["A", "PgUp"], "Previous image (A)")
        self.next_to_correct = a(window, "Next Image to Co&rrect", ["Ctrl+Shift+U"],
                                 "Open the most uncertain open image not corrected yet")
        self.fit = a(window, "&Fit to Window", ["Ctrl+0", "F"], "Fit the image to the window")
        self.actual_size = a(window, "&Actual Size (100%)", ["Ctrl+1", "1"], "Zoom to 100%")
        self.zoom_in = a(window, "Zoom &In", [StdKey.ZoomIn, "+"])
        self.zoom_out = a(window, "Zoom &Out", [StdKey.ZoomOut, "-"])
        self.show_overlay = a(window, "Show &Overlay", ["O"], "Show or hide the mask", True)
        self.contours = a(window, "&Contours Only", ["C"],
                          "Draw the masks as region boundaries only: compare how sharp the "
                          "32s, 16s and 8s boundaries are (C)", True)
        self.show_disagreement = a(window, "Mark &Disagreement", ["X"],
                                   "Mark the pixels where 32s, 16s and 8s disagree", True)
        self.show_changes = a(window, "Mark C&hanges from Previous Version", ["Shift+X"],
                              "Mark the pixels whose class changed since the model's previous "
                              "version (e.g. before the last fine-tune)", True)
        self.open_model = a(window, "Open &Checkpoint…", ["Ctrl+M"], "Load another model")
        self.default_model = a(window, "Use the &Default Model", [])
        self.run = a(window, "&Run Segmentation", ["Ctrl+R", "F5"], "Segment this image")
        self.cancel = a(window, "&Cancel", ["Esc"], "Cancel the running segmentation")
        self.autorun = a(window, "&Auto-run on Image Change", [], "", True)
        self.import_model = a(window, "&Import Model…", [],
                              "Convert a Caffe, pytorch-fcn or safetensors model and load it")
        self.download_models = a(window, "Download &Published Models…", [],
                                 "Download, verify and convert the paper's published weights")
        self.model_set = a(window, "Model &Set…", [],
                           "Choose the checkpoint of each compare pane (32s, 16s, 8s)")
        self.export_onnx = a(window, "&Export ONNX…", [], "Export the current model to ONNX")
        self.about = a(window, "&About FCN Studio", [])
        self.shortcuts = a(window, "&Keyboard Shortcuts", ["F1"], "Every command's keys")
        icon = window.style().standardIcon
        sp = QStyle.StandardPixmap
        for action, pixmap in (
            (self.open_files, sp.SP_DialogOpenButton), (self.open_folder, sp.SP_DirOpenIcon),
            (self.prev_image, sp.SP_ArrowBack), (self.next_image, sp.SP_ArrowForward),
            (self.run, sp.SP_MediaPlay), (self.cancel, sp.SP_MediaStop),
            (self.export_mask, sp.SP_DialogSaveButton), (self.quit, sp.SP_DialogCloseButton),
        ):
            action.setIcon(icon(pixmap))
        self.prev_image.setIconText("Previous")
        self.next_image.setIconText("Next")
        self.run.setIconText("Run")
        self.open_files.setIconText("Open")
        self.open_folder.setIconText("Folder")
        self.fit.setIconText("Fit")
        self.actual_size.setIconText("100%")
        self.show_overlay.setIconText("Overlay")
        self.device_group = QActionGroup(window)
        self.device_group.setExclusive(True)
        self.device_actions: dict[str, QAction] = {}

        bar = window.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.new_project, self.open_project])
        file_menu.addSeparator()
        file_menu.addActions([self.open_files, self.open_folder])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addAction(self.load_reference)
        file_menu.addSeparator()
        export = file_menu.addMenu("&Export")
        export.addActions([self.export_mask, self.export_overlay, self.export_heatmap,
                           self.export_grid])
        file_menu.addSeparator()
        file_menu.addAction(self.quit)
        view = bar.addMenu("&View")
        view.addActions([self.prev_image, self.next_image, self.next_to_correct])
        view.addSeparator()
        view.addActions([self.fit, self.actual_size, self.zoom_in, self.zoom_out])
        view.addSeparator()
        view.addActions([self.show_overlay, self.contours, self.show_disagreement,
                         self.show_changes])
        view.addSeparator()
        self.panels_menu = view.addMenu("&Panels")
        model = bar.addMenu("&Model")
        model.addActions([self.open_model, self.default_model])
        self.library_menu: QMenu = model.addMenu("&Library")
        model.addActions([self.import_model, self.download_models])
        model.addSeparator()
        model.addActions([self.model_set, self.export_onnx, self.new_model_for_project])
        self.device_menu: QMenu = model.addMenu("&Device")
        model.addSeparator()
        model.addActions([self.run, self.cancel, self.autorun])
        bar.addMenu("&Help").addActions([self.shortcuts, self.about])
        self.set_devices([("auto", "Auto"), ("cpu", "CPU")], "auto")

        tb = QToolBar("Main", window)
        tb.setObjectName("main-toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        tb.addActions([self.open_files, self.open_folder])
        tb.addSeparator()
        tb.addActions([self.prev_image, self.next_image])
        tb.addSeparator()
        tb.addActions([self.run, self.cancel])
        tb.addSeparator()
        self.source_box = QComboBox(tb)
        for v in VARIANTS:
            self.source_box.addItem(f"FCN-{v}", v)
        self.source_box.addItem("Reference", REFERENCE)
        self.source_box.setToolTip("Which mask the overlay shows")
        # not in the Tab chain (it took the window's first focus, so Up changed the variant)
        self.source_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        tb.addAction(self.show_overlay)
        tb.addWidget(self.source_box)
        self.contours.setIconText("Contours")
        tb.addAction(self.contours)
        self.opacity = QSlider(Qt.Orientation.Horizontal, tb)
        self.opacity.setRange(0, 100)
        self.opacity.setFixedWidth(120)
        self.opacity.setToolTip("Overlay opacity")
        tb.addWidget(QLabel(" Opacity ", tb))
        tb.addWidget(self.opacity)
        tb.addSeparator()
        tb.addActions([self.fit, self.actual_size])
        self.toolbar = tb

    def set_devices(self, devices: list[tuple[str, str]], current: str) -> None:
        """Fill the Device menu with ``(id, name)`` pairs and check ``current``."""
        for action in self.device_actions.values():
            self.device_group.removeAction(action)
            self.device_menu.removeAction(action)
        self.device_actions = {}
        for dev_id, name in devices:
            action = QAction(name, self.device_menu)
            action.setCheckable(True)
            action.setData(dev_id)
            self.device_group.addAction(action)
            self.device_menu.addAction(action)
            self.device_actions[dev_id] = action
        chosen = self.device_actions.get(current) or self.device_actions.get("auto")
        if chosen is not None:
            chosen.setChecked(True)
