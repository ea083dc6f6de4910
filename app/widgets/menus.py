"""Finding menus in a main window's menu bar and placing actions in them."""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu


def find_menu(window: QMainWindow, title: str) -> QMenu | None:
    """The menu-bar menu whose text (without '&') is ``title``."""
    for action in window.menuBar().actions():
        if action.text().replace("&", "") == title and action.menu() is not None:
            return action.menu()
    return None


def add_after(anchor: QAction, action: QAction, fallback: QMenu | None) -> None:
    """Put ``action`` right after ``anchor`` in the menu holding it (else in ``fallback``)."""
    menus = [o for o in anchor.associatedObjects() if isinstance(o, QMenu)]
    menu = menus[0] if menus else fallback
    if menu is None:
        return
    actions = menu.actions()
    i = actions.index(anchor) if anchor in actions else len(actions) - 1
    if i + 1 < len(actions):
        menu.insertAction(actions[i + 1], action)
    else:
        menu.addAction(action)
