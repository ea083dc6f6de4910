"""FineTuneUi: fine-tuning as a feature (the Fine-tune dock, Model > Train on Annotations,
Model > Versions, Model > New Model for This Project's Classes…, Model > Hold Out This Image
and the images' states in the file list)."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QFrame, QMenu, QScrollArea

from app.features.finetune.controller import FineTuneController, FineTuneOptions
from app.features.finetune.dock import FineTuneDock
from app.features.finetune.first_contact import FirstContact
from app.features.finetune.image_states import ImageStates
from app.features.finetune.new_model import NewModelUi
from app.features.host import AppContext, WindowHost

__all__ = ["FineTuneController", "FineTuneOptions", "FineTuneUi", "install_finetune"]


class FineTuneUi(QObject):
    """The fine-tune dock, Model > Train on Annotations and Model > Versions.

    Attributes:
        new_model: Implements the shell's ``new_model_for_project`` action (a model whose
            classes are the open project's).
        states: The file list's marks (annotation state, segmented, held out) and the
            held-out mark's actions.
        first_contact: Says once that the bundled demo model knows only generated shapes.
    """

    def __init__(self, context: AppContext, host: WindowHost) -> None:
        """Build the dock and the Model menu entries; add them through ``host``."""
        window = host.widget()
        super().__init__(window)
        self.host = host
        self.controller = FineTuneController(context, self)
        self.new_model = NewModelUi(context, host, self.controller)
        self.dock = FineTuneDock(self.controller, self.new_model.action)
        self.states = ImageStates(context, host, self.controller.imagePredicted)
        self.states.heldOutChanged.connect(self.dock.refresh_state)
        self.first_contact = FirstContact(context, host)
        scroll = QScrollArea()  # a small minimum height: the Classes dock keeps its room
        scroll.setWidgetResizable(True)
        self.scroll = scroll
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.dock)
        self.dock.resultsShown.connect(self.show_results)
        host.add_dock(
            "finetune",
            "Fine-tune",
            scroll,
            Qt.DockWidgetArea.RightDockWidgetArea,
            tabify_with="model",
        )
        host.add_shutdown(self.shutdown)
        self.train = QAction("&Train on Annotations", window)
        self.train.setStatusTip(
            "Train the model on every annotated image of the project "
            "(rough labels and corrected masks), the held-out ones "
            "excepted"
        )
        self.train.triggered.connect(self.start)
        self.versions_menu = QMenu("&Versions", window)
        self.versions_menu.aboutToShow.connect(self.fill_versions_menu)
        self._group = QActionGroup(self.versions_menu)
        model_menu = host.menu("Model")
        if model_menu is not None:
            model_menu.addSeparator()
            model_menu.addAction(self.train)
            model_menu.addAction(self.states.hold_action)
            model_menu.addMenu(self.versions_menu)

    def show_results(self) -> None:
        """Scroll the dock to the before/after table: the whole results box (table and
        caption) when it fits, else from its top."""
        box, bar = self.dock.results, self.scroll.verticalScrollBar()
        if not box.isVisible():
            return
        for _ in range(3):  # place the results now: the dock's layout, then the scroll area's
            QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        view = self.scroll.viewport().height()
        top, bottom = box.y(), box.y() + box.height()
        if box.height() > view:
            bar.setValue(top)
        else:
            bar.setValue(min(max(bar.value(), bottom - view), top))

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
