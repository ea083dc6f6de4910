"""FineTuneUi: fine-tuning as a feature (the Fine-tune dock, Model > Train on Corrections and
Model > Versions)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QFrame, QMenu, QScrollArea

from app.features.finetune.controller import FineTuneController, FineTuneOptions
from app.features.finetune.dock import FineTuneDock
from app.features.host import AppContext, WindowHost

__all__ = ["FineTuneController", "FineTuneOptions", "FineTuneUi", "install_finetune"]


class FineTuneUi(QObject):
    """The fine-tune dock, Model > Train on Corrections and Model > Versions."""

    def __init__(self, context: AppContext, host: WindowHost) -> None:
        """Build the dock and the Model menu entries; add them through ``host``."""
        window = host.widget()
        super().__init__(window)
        self.host = host
        self.controller = FineTuneController(context, self)
        self.dock = FineTuneDock(self.controller)
        scroll = QScrollArea()  # a small minimum height: the Classes dock keeps its room
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll = scroll
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.dock)
        host.add_dock("finetune", "Fine-tune", scroll, Qt.DockWidgetArea.RightDockWidgetArea,
                      tabify_with="model")
        host.add_shutdown(self.shutdown)
        self.train = QAction("&Train on Corrections", window)
        self.train.setStatusTip("Fine-tune the model on the corrected masks of the project")
        self.train.triggered.connect(self.start)
        self.versions_menu = QMenu("&Versions", window)
        self.versions_menu.aboutToShow.connect(self.fill_versions_menu)
        self._group = QActionGroup(self.versions_menu)
        model_menu = host.menu("Model")
        if model_menu is not None:
            model_menu.addSeparator()
            model_menu.addAction(self.train)
            model_menu.addMenu(self.versions_menu)

    def start(self) -> bool:
        """Show the dock and start training with its options."""
        self.host.show_dock("finetune")
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


def install_finetune(context: AppContext, host: WindowHost) -> FineTuneUi:
    """Add fine-tuning to the window ``host`` stands for."""
    return FineTuneUi(context, host)
