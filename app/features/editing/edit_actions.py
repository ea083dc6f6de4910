"""The editor's QActions and its Edit menu (undo/redo, annotate mode, tools, saving)."""

from __future__ import annotations

from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoGroup
from PySide6.QtWidgets import QMenu

from app.features.editing.tool_controller import TOOLS
from app.features.host import WindowHost

TOOL_KEYS: dict[str, str] = {
    "brush": "B", "eraser": "E", "fill": "G", "polygon": "P", "lasso": "L", "eyedropper": "I",
}
StdKey = QKeySequence.StandardKey


class EditActions:
    """Actions of the editor, and the Edit menu (inserted before View) plus File entries."""

    def __init__(self, host: WindowHost, undo_group: QUndoGroup) -> None:
        """Create the actions and menus in the window ``host`` stands for."""
        window = host.widget()
        def act(text: str, keys: list | None = None, tip: str = "",
                checkable: bool = False) -> QAction:
            action = QAction(text, window)
            if keys:
                action.setShortcuts([QKeySequence(k) for k in keys])
            if tip:
                action.setStatusTip(tip)
                action.setToolTip(f"{tip} ({keys[0]})" if keys and isinstance(keys[0], str)
                                  else tip)
            action.setCheckable(checkable)
            return action

        self.undo = undo_group.createUndoAction(window, "&Undo")
        self.undo.setShortcuts(QKeySequence.keyBindings(StdKey.Undo))
        self.redo = undo_group.createRedoAction(window, "&Redo")
        self.redo.setShortcuts([*QKeySequence.keyBindings(StdKey.Redo),
                                QKeySequence("Ctrl+Shift+Z")])
        self.annotate = act("&Annotate", ["Ctrl+Shift+A"],
                            "Edit the mask with the tools (the left button paints)", True)
        self.start = act("&Start Mask from the Chosen Source", [],
                         "Start (or restart, undoably) this image's mask")
        self.start_file = act("Start Mask from a Mask &File…", [],
                              "Start this image's mask from a PNG mask")
        self.save = act("&Save Masks", [StdKey.Save], "Save every unsaved mask now")
        self.project_folder = act("&Project Folder…", [],
                                  "Choose the folder where masks are saved (VOC layout)")
        self.import_labelme = act("Import &labelme…", [],
                                  "Import labelme JSON annotations as masks")
        self.export_voc = act("Export &VOC Dataset…", [],
                              "Write the project as a VOC dataset for python -m core train")
        self.tool_group = QActionGroup(window)
        self.tool_group.setExclusive(True)
        self.tools: dict[str, QAction] = {}
        for tool, name in TOOLS.items():
            action = act(name, [TOOL_KEYS[tool]], name, True)
            action.setData(tool)
            self.tool_group.addAction(action)
            self.tools[tool] = action
        self.tools["brush"].setChecked(True)
        for action in (self.undo, self.redo, self.annotate, self.save, *self.tools.values()):
            host.add_window_action(action)  # shortcuts work whatever has the focus

        self.menu = QMenu("&Edit", window)
        host.add_menu(self.menu, before="View")
        self.menu.addActions([self.undo, self.redo])
        self.menu.addSeparator()
        self.menu.addActions([self.annotate, self.start, self.start_file])
        self.menu.addSeparator()
        self.menu.addActions(list(self.tools.values()))
        self.menu.addSeparator()
        self.menu.addAction(self.save)

        file_menu = host.menu("File")
        if file_menu is not None:
            quit_action = next((a for a in file_menu.actions()
                                if a.shortcut() == QKeySequence(StdKey.Quit)), None)
            entries = [self.project_folder, self.save, self.import_labelme, self.export_voc]
            if quit_action is None:
                file_menu.addActions(entries)
            else:
                file_menu.insertActions(quit_action, entries)
                file_menu.insertSeparator(quit_action)
