"""ShellHost: the main window as the features see it (the WindowHost protocol, nothing more)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QWidget

from app.shell.actions import Actions
from app.shell.status_bar import StatusBar
from app.widgets.menus import find_menu


class ShellHost:
    """Implements :class:`app.features.host.WindowHost` over a main window."""

    def __init__(self, window: QMainWindow, actions: Actions, status: StatusBar) -> None:
        """Host features in ``window`` (its ``actions`` and ``status`` bar)."""
        self._window = window
        self._actions = actions
        self._status = status
        self.docks: dict[str, QDockWidget] = {}
        self.close_guards: list[Callable[[], bool]] = []
        self.shutdowns: list[Callable[[], None]] = []

    def widget(self) -> QWidget:
        """The window (the parent of dialogs)."""
        return self._window

    def add_dock(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea,
                 tabify_with: str | None = None) -> QDockWidget:
        """Add a dock, listed in View > Panels; as a tab beside ``tabify_with`` if given."""
        window = self._window
        dock = QDockWidget(title, window)
        dock.setObjectName(f"dock-{key}")
        dock.setWidget(widget)
        window.addDockWidget(area, dock)
        self._actions.panels_menu.addAction(dock.toggleViewAction())
        self.docks[key] = dock
        beside = self.docks.get(tabify_with) if tabify_with else None
        if beside is not None:
            window.tabifyDockWidget(beside, dock)
            if "stats" in self.docks:  # the Statistics tab stays in front
                self.docks["stats"].raise_()
        return dock

    def show_dock(self, key: str) -> None:
        """Show and raise a dock."""
        dock = self.docks[key]
        dock.show()
        dock.raise_()

    def action(self, name: str) -> QAction:
        """A shell action by attribute name (``Actions``)."""
        action = getattr(self._actions, name)
        assert isinstance(action, QAction), name
        return action

    def menu(self, path: str) -> QMenu | None:
        """A menu by its titles, e.g. "Model/Library"."""
        return find_menu(self._window, path)

    def add_menu(self, menu: QMenu, before: str | None = None) -> None:
        """Put ``menu`` in the menu bar before the menu titled ``before``."""
        bar = self._window.menuBar()
        anchor = find_menu(self._window, before) if before else None
        if anchor is not None:
            bar.insertMenu(anchor.menuAction(), menu)
        else:
            bar.addMenu(menu)

    def add_window_action(self, action: QAction) -> None:
        """A window-wide shortcut."""
        self._window.addAction(action)

    def show_progress(self, key: str, text: str, fraction: float = -1.0,
                      cancel: Callable[[], object] | None = None, tip: str = "") -> None:
        """The keyed status-bar progress."""
        self._status.show_progress(key, text, fraction, cancel, tip)

    def hide_progress(self, key: str) -> None:
        """End a keyed progress."""
        self._status.hide_progress(key)

    def show_message(self, text: str, ms: int = 5000) -> None:
        """A transient status-bar message."""
        self._window.statusBar().showMessage(text, ms)

    def set_modified(self, modified: bool) -> None:
        """The ``*`` in the title."""
        self._window.setWindowModified(modified)

    def add_close_guard(self, guard: Callable[[], bool]) -> None:
        """Asked before closing."""
        self.close_guards.append(guard)

    def add_shutdown(self, stop: Callable[[], None]) -> None:
        """Called when closing."""
        self.shutdowns.append(stop)
