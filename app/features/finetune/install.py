"""Fine-tuning on the user's corrections: worker thread, dock, loss curve, versions.

Built on :func:`core.training.finetune.fine_tune` (fast: heads only on cached features;
full: every layer). Each run saves a new checkpoint version whose parent is the model it
started from; Model > Versions switches between them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QFrame, QMenu, QScrollArea

from app.features.finetune.controller import FineTuneController, FineTuneOptions
from app.features.finetune.dock import FineTuneDock
from app.widgets.menus import find_menu

if TYPE_CHECKING:
    from app.shell.main_window import MainWindow

__all__ = ["FineTuneController", "FineTuneOptions", "FineTuneUi", "install_finetune"]


class FineTuneUi(QObject):
    """The fine-tune dock, Model > Train on Corrections and Model > Versions."""

    def __init__(self, window: MainWindow) -> None:
        """Build and wire (call after the editor is installed)."""
        super().__init__(window)
        self.window = window
        self.controller = FineTuneController(window)
        self.dock = FineTuneDock(self.controller)
        scroll = QScrollArea()  # a small minimum height: the Classes dock keeps its room
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll = scroll
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.dock)
        window._dock("finetune", "Fine-tune", scroll, Qt.DockWidgetArea.RightDockWidgetArea)
        if "model" in window.docks:
            window.tabifyDockWidget(window.docks["model"], window.docks["finetune"])
            window.docks["stats"].raise_()
        self.train = QAction("&Train on Corrections", window)
        self.train.setStatusTip("Fine-tune the model on the corrected masks of the project")
        self.train.triggered.connect(self.start)
        self.versions_menu = QMenu("&Versions", window)
        self.versions_menu.aboutToShow.connect(self.fill_versions_menu)
        self._group = QActionGroup(self.versions_menu)
        model_menu = find_menu(window, "Model")
        if model_menu is not None:
            model_menu.addSeparator()
            model_menu.addAction(self.train)
            model_menu.addMenu(self.versions_menu)

    def start(self) -> bool:
        """Show the dock and start training with its options."""
        dock = self.window.docks["finetune"]
        dock.show()
        dock.raise_()
        return self.dock.train()

    def fill_versions_menu(self) -> list[QAction]:
        """Rebuild Model > Versions: the lineage, indented, the current one checked."""
        menu = self.versions_menu
        menu.clear()
        for action in self._group.actions():
            self._group.removeAction(action)
        current = self.controller.current_id()
        actions = []
        for v in self.controller.versions():
            action = QAction(("    " * v.depth) + ("↳ " if v.depth else "") + v.label, menu)
            action.setCheckable(True)
            action.setChecked(v.id == current)
            action.setToolTip(str(v.path))
            action.triggered.connect(lambda _=False, v=v: self.controller.use(v))
            self._group.addAction(action)
            menu.addAction(action)
            actions.append(action)
        if not actions:
            menu.addAction("(no model loaded)").setEnabled(False)
        return actions

    def shutdown(self) -> None:
        """Cancel a run and stop the thread."""
        self.controller.shutdown()


def install_finetune(window: MainWindow) -> FineTuneUi:
    """Add fine-tuning to ``window`` (after :func:`app.features.editing.install_editing`)."""
    return FineTuneUi(window)
