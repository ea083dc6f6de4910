"""What a feature is installed with: an :class:`AppContext` and a :class:`WindowHost`.

A feature (``app.features.<name>.install``) gets the app's state objects and services from
the context and puts its docks, menus, actions and progress into the window through the
host. It never imports the shell (the main window) nor another feature, and needs no other
feature to be installed first: what features share goes through the context's objects and
their signals (e.g. ``projects.save_pending()`` saves the editor's masks before training,
``state.classPicked`` tells the editor which class was clicked in the legend).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMenu, QWidget

from app.canvas.canvas import ImageCanvas
from app.services.inference import InferenceService
from app.services.projects import ProjectManager
from app.services.settings import Settings
from app.state.display import ViewerState
from app.state.model import ModelState
from app.state.navigator import Navigator
from app.state.notifications import NotificationCenter


@dataclass(frozen=True)
class AppContext:
    """The state objects and services every feature may use.

    Attributes:
        settings: The persistent settings.
        notifications: Where messages go (status bar and the Messages dock).
        state: What is shown: the current document, overlay and heatmap settings, the
            corrected mask.
        models: The model in use, its runtime and the compare panes' model set.
        documents: The open files and the current one (the file list).
        inference: Load a model, switch the device, run, cancel, auto-run.
        projects: The project folder the masks are saved in (autosave timer, savers).
        viewer_canvas: The Viewer tab's canvas (the editor adds its mask layer and tools).
    """

    settings: Settings
    notifications: NotificationCenter
    state: ViewerState
    models: ModelState
    documents: Navigator
    inference: InferenceService
    projects: ProjectManager
    viewer_canvas: ImageCanvas


class WindowHost(Protocol):
    """What the main window offers the features (and nothing else of it)."""

    def widget(self) -> QWidget:
        """The window, as the parent of a feature's dialogs."""
        ...

    def add_dock(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea,
                 tabify_with: str | None = None) -> QDockWidget:
        """Add a dock (listed in View > Panels), optionally as a tab beside dock ``tabify_with``."""
        ...

    def show_dock(self, key: str) -> None:
        """Show and raise a dock by key (``"messages"``, or a feature's own)."""
        ...

    def action(self, name: str) -> QAction:
        """A command the shell's menus hold for a feature to implement (e.g. ``"import_model"``,
        ``"export_mask"``) or to place actions by (``"autorun"``)."""
        ...

    def menu(self, path: str) -> QMenu | None:
        """A menu by its titles without '&', e.g. ``"Model"`` or ``"Model/Library"``."""
        ...

    def add_menu(self, menu: QMenu, before: str | None = None) -> None:
        """Put ``menu`` in the menu bar, before the menu titled ``before`` (else last)."""
        ...

    def add_window_action(self, action: QAction) -> None:
        """Make ``action``'s shortcut work wherever the focus is in the window."""
        ...

    def show_progress(self, key: str, text: str, fraction: float = -1.0,
                      cancel: Callable[[], object] | None = None, tip: str = "") -> None:
        """Show (or update) the status-bar progress of ``key``: a text, a fraction in [0, 1]
        (negative: busy), and a Cancel button when ``cancel`` is given. The latest shown key
        is on screen; the others come back when it ends."""
        ...

    def hide_progress(self, key: str) -> None:
        """End the status-bar progress of ``key``."""
        ...

    def show_message(self, text: str, ms: int = 5000) -> None:
        """A transient status-bar message (notifications go to ``context.notifications``)."""
        ...

    def set_modified(self, modified: bool) -> None:
        """Mark the window as having unsaved work (the ``*`` in the title)."""
        ...

    def add_close_guard(self, guard: Callable[[], bool]) -> None:
        """Ask ``guard`` before the window closes; False keeps it open."""
        ...

    def add_shutdown(self, stop: Callable[[], None]) -> None:
        """Call ``stop`` when the window closes (stop the feature's threads)."""
        ...
