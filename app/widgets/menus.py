"""Finding menus in a main window's menu bar and placing actions in them."""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu


def find_menu(window: QMainWindow, path: str) -> QMenu | None:
    """The menu whose titles (without '&') are ``path``: "Model", or "Model/Library"."""
    actions = window.menuBar().actions()
    menu: QMenu | None = None
    for title in path.split("/"):
        menu = next((a.menu() for a in actions
                     if a.text().replace("&", "") == title and a.menu() is not None), None)
        if menu is None:
            return None
        actions = menu.actions()
    return menu


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
