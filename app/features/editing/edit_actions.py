"""The editor's QActions and its Edit menu (undo/redo, annotate mode, tools, saving)."""

from __future__ import annotations

import contextlib

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoGroup
from PySide6.QtWidgets import QMenu, QWidget

from app.features.editing.tool_controller import TOOLS, ToolController
from app.features.host import WindowHost

TOOL_KEYS: dict[str, str] = {
    "brush": "B", "eraser": "E", "fill": "G", "polygon": "P", "lasso": "L", "eyedropper": "I",
    "superpixel": "S", "superfill": "Shift+S", "wand": "W", "correct": "K",
}
PREVIEW_KEYS: dict[str, list[str]] = {"accept": ["Return", "Enter"], "discard": ["Esc"],
                                      "before_after": ["V"]}
"""The keys of a pending preview (lent while one is shown: Model > Cancel yields Esc)."""
StdKey = QKeySequence.StandardKey


def unique_keys(*keys: StdKey | str | QKeySequence) -> list[QKeySequence]:
    """The key sequences of ``keys`` (standard keys expand to the platform's bindings),
    each once, in order.

    A sequence an action holds twice is registered twice, and Qt then finds the key
    ambiguous and gives it to nobody ("Ambiguous shortcut overload").
    """
    out: dict[str, QKeySequence] = {}
    for key in keys:
        sequences = (QKeySequence.keyBindings(key) if isinstance(key, StdKey)
                     else [QKeySequence(key)])
        for sequence in sequences:
            if not sequence.isEmpty():
                out.setdefault(sequence.toString(QKeySequence.SequenceFormat.PortableText),
                               sequence)
    return list(out.values())


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
        self.undo.setShortcuts(unique_keys(StdKey.Undo, "Ctrl+Z"))
        self.redo = undo_group.createRedoAction(window, "&Redo")
        # both on every platform (the standard Redo is Ctrl+Shift+Z alone on Linux, and
        # holds Ctrl+Shift+Z and Ctrl+Y on others: each is listed once)
        self.redo.setShortcuts(unique_keys(StdKey.Redo, "Ctrl+Shift+Z", "Ctrl+Y"))
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
        self.snap = act("S&nap Polygon to Edges", ["Shift+P"],
                        "The polygon tool moves its outline onto the image's edges", True)
        self.refine = act("&Refine with Image Edges", ["R"],
                          "Snap the mask's boundaries to the image's edges (a CRF); "
                          "preview, then accept or discard")
        self.refine_visible = act("Refine &Visible Part with Image Edges", ["Shift+R"],
                                  "Refine only the part of the mask in view")
        self.accept_preview = act("&Accept Preview", [], "Apply the previewed correction")
        self.discard_preview = act("&Discard Preview", [], "Leave the mask as it is")
        self.before_after = act("Show &Before / After", [], "Compare with the mask as it is",
                                True)
        self.before_after.setChecked(True)
        for action in (self.undo, self.redo, self.annotate, self.save, *self.tools.values(),
                       self.snap, self.refine, self.refine_visible, self.accept_preview,
                       self.discard_preview, self.before_after):
            host.add_window_action(action)  # shortcuts work whatever has the focus
        lent = {self.accept_preview: "accept", self.discard_preview: "discard",
                self.before_after: "before_after"}
        self.preview_keys = KeyLoan(window, {
            action: [QKeySequence(k) for k in PREVIEW_KEYS[name]] for action, name in lent.items()})

        self.menu = QMenu("&Edit", window)
        host.add_menu(self.menu, before="View")
        self.menu.addActions([self.undo, self.redo])
        self.menu.addSeparator()
        self.menu.addActions([self.annotate, self.start, self.start_file])
        self.menu.addSeparator()
        self.menu.addActions(list(self.tools.values()))
        self.menu.addAction(self.snap)
        self.menu.addSeparator()
        self.menu.addActions([self.refine, self.refine_visible, self.accept_preview,
                              self.discard_preview, self.before_after])
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


class KeyLoan:
    """Keys lent to some actions while they are live: other actions of the window that
    hold one of them yield it meanwhile and get it back afterwards.

    So no key is ever bound twice (Qt would give an ambiguous key to neither): the
    borrowers hold their keys (and are enabled) only while live.
    """

    def __init__(self, window: QWidget, keys: dict[QAction, list[QKeySequence]]) -> None:
        """``keys``: each borrowing action and the keys it holds while live."""
        self.window, self.keys = window, keys
        portable = QKeySequence.SequenceFormat.PortableText
        self._portable = {k.toString(portable) for ks in keys.values() for k in ks}
        self._taken: dict[QAction, list[QKeySequence]] = {}
        self.live = False
        for action in keys:
            action.setEnabled(False)

    def set_live(self, live: bool) -> None:
        """Give the borrowers their keys (taking them from other actions), or give back."""
        self.live = bool(live)
        if live:
            self._take_keys()
        for action, keys in self.keys.items():
            action.setShortcuts(keys if live else [])
            action.setEnabled(live)
        if not live:
            self._give_back_keys()

    def _take_keys(self) -> None:
        portable = QKeySequence.SequenceFormat.PortableText
        window = self.window
        for action in {*window.findChildren(QAction), *QWidget.actions(window)}:
            if action in self.keys or action in self._taken:
                continue
            keys = action.shortcuts()
            kept = [k for k in keys if k.toString(portable) not in self._portable]
            if len(kept) != len(keys):
                self._taken[action] = keys
                action.setShortcuts(kept)

    def _give_back_keys(self) -> None:
        taken, self._taken = self._taken, {}
        for action, keys in taken.items():
            with contextlib.suppress(RuntimeError):  # (an action deleted meanwhile)
                action.setShortcuts(keys)


class CanvasKeys(QObject):
    """The keys of the image being annotated: digits pick the class, ``[`` / ``]`` the size.

    QActions on the viewer canvas with a window-wide context: Qt triggers them wherever the
    focus is in the window (a text field or spin box with the focus takes them as text),
    while the canvas is shown (the Viewer tab in front, an image open). They hold their keys
    (and are enabled) only while annotating with the canvas shown; meanwhile a window action
    holding one of those keys (View > Actual Size's ``1``) yields it to them and gets it
    back afterwards (a :class:`KeyLoan`). So no key is ever bound twice, and ``1`` is 100%
    whenever it is not a class.
    """

    def __init__(self, tools: ToolController, window: QWidget, parent: QObject | None = None
                 ) -> None:
        """Add the actions to ``tools``' canvas; ``window`` holds the actions that may
        have to yield a key."""
        super().__init__(parent)
        self.tools, self.canvas, self.window = tools, tools.canvas, window
        self.classes: list[QAction] = []
        for n in range(10):
            action = QAction(f"Class {n}", self)
            action.triggered.connect(lambda _=False, n=n: tools.choose_class(n))
            self.classes.append(action)
        self.smaller = QAction("Smaller Brush", self)
        self.smaller.triggered.connect(lambda: tools.step_size(False))
        self.larger = QAction("Larger Brush", self)
        self.larger.triggered.connect(lambda: tools.step_size(True))
        self.actions = [*self.classes, self.smaller, self.larger]
        self.keys: dict[QAction, QKeySequence] = {
            **{a: QKeySequence(str(n)) for n, a in enumerate(self.classes)},
            self.smaller: QKeySequence("["), self.larger: QKeySequence("]"),
        }
        for action in self.actions:
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.canvas.addAction(action)
        self.loan = KeyLoan(window, {a: [k] for a, k in self.keys.items()})
        self.annotating = False
        self.canvas.installEventFilter(self)

    @property
    def live(self) -> bool:
        """Whether the keys work now (annotating, the canvas shown)."""
        return self.annotating and self.canvas.isVisible()

    def set_annotating(self, on: bool) -> None:
        """Annotate mode turned on or off."""
        self.annotating = bool(on)
        self._update()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """Follow the canvas being shown and hidden (tabs, no image)."""
        if event.type() in (QEvent.Type.Show, QEvent.Type.Hide):
            self._update()
        return False

    def _update(self) -> None:
        self.loan.set_live(self.live)
