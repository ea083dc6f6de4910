"""Help > Keyboard Shortcuts: every menu command's keys, read from the menus, and the canvas keys.

The list is built from the window's menu bar when the dialog opens, so it never goes out of
date; the keys that only the canvas handles (tools' modifiers, wheel, digits) are listed
from :data:`CANVAS_KEYS`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QHeaderView,
    QLineEdit,
    QMainWindow,
    QMenu,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

CANVAS_KEYS: tuple[tuple[str, str], ...] = (
    ("Zoom under the cursor", "Wheel"),
    ("Pan", "Middle-button drag (left-button drag while not annotating)"),
    ("Class to paint", "0 - 9 while annotating in the Viewer (1 is then class 1: 100% is "
                       "Ctrl+1)"),
    ("Brush size", "[ and ] while annotating in the Viewer, or Ctrl+Wheel on the canvas"),
    ("Close the polygon", "Enter, double-click or right-click"),
    ("Drop the polygon's last vertex", "Backspace"),
    ("Cancel the polygon", "Esc"),
)
"""Keys of the canvas and the editor that no menu command lists (the editor's class and
brush keys work wherever the focus is, but a text field's, while the Viewer shows the image
being annotated)."""


def _clean(text: str) -> str:
    """A menu text without its mnemonic marker and ellipsis."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


def menu_shortcuts(window: QMainWindow) -> list[tuple[str, str, str]]:
    """``(menu path, command, keys)`` for every menu command that has a shortcut."""
    rows: list[tuple[str, str, str]] = []

    def walk(menu: QMenu, path: str) -> None:
        for action in menu.actions():
            sub = action.menu()
            if isinstance(sub, QMenu):
                walk(sub, f"{path} > {_clean(action.text())}")
                continue
            keys = list(dict.fromkeys(  # unique, in order (standard keys can repeat)
                k.toString(QKeySequence.SequenceFormat.NativeText)
                for k in action.shortcuts() if not k.isEmpty()))
            if keys and not action.isSeparator():
                rows.append((path, _clean(action.text()), ", ".join(keys)))

    for top in window.menuBar().actions():
        if isinstance(top.menu(), QMenu):
            walk(top.menu(), _clean(top.text()))
    return rows


class ShortcutsDialog(QDialog):
    """A searchable list of the shortcuts, grouped by menu (non-modal)."""

    def __init__(self, window: QMainWindow, parent: QWidget | None = None) -> None:
        """List ``window``'s menu shortcuts and the canvas keys."""
        super().__init__(parent or window)
        self.setWindowTitle("Keyboard Shortcuts")
        self.resize(560, 620)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Search commands or keys")
        self.filter.setClearButtonEnabled(True)
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Command", "Keys"])
        self.tree.setRootIsDecorated(False)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree)
        groups: dict[str, list[tuple[str, str]]] = {}
        for path, command, keys in menu_shortcuts(window):
            groups.setdefault(path, []).append((command, keys))
        groups["Canvas"] = list(CANVAS_KEYS)
        bold = self.font()
        bold.setBold(True)
        for path, rows in groups.items():
            header = QTreeWidgetItem([path, ""])
            header.setFont(0, bold)
            header.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(header)
            for command, keys in rows:
                item = QTreeWidgetItem([command, keys])
                item.setData(0, Qt.ItemDataRole.UserRole, path)
                self.tree.addTopLevelItem(item)
        self.filter.textChanged.connect(self.apply_filter)

    def rows(self, visible_only: bool = True) -> list[tuple[str, str]]:
        """``(command, keys)`` of the listed commands (the shown ones by default)."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) is None:
                continue  # a group header
            if not visible_only or not item.isHidden():
                out.append((item.text(0), item.text(1)))
        return out

    def apply_filter(self, text: str) -> None:
        """Show the commands whose name, keys or menu contain ``text`` (any case)."""
        needle = text.strip().lower()
        shown_groups: set[str] = set()
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            group = item.data(0, Qt.ItemDataRole.UserRole)
            if group is None:
                continue
            hay = f"{item.text(0)} {item.text(1)} {group}".lower()
            item.setHidden(bool(needle) and needle not in hay)
            if not item.isHidden():
                shown_groups.add(group)
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) is None:
                item.setHidden(item.text(0) not in shown_groups)


def install_shortcuts_help(window: QMainWindow, action: QAction) -> None:
    """Open a :class:`ShortcutsDialog` (made anew each time: menus can change) on ``action``."""

    def show() -> None:
        dialog = ShortcutsDialog(window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.shortcuts_dialog = dialog  # type: ignore[attr-defined]  # tests reach it
        dialog.show()

    action.triggered.connect(show)
