"""InsightUi: "see why" as a feature: the Insight dock (skip streams, receptive fields, fc as
conv, uncertainty), its layers on the viewer, View > Next Image to Correct and
View > Effective Receptive Fields Here."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow

from app.features.host import AppContext, WindowHost
from app.features.insight.dock import InsightDock
from app.features.insight.next_image import NextImageRanker
from app.features.insight.session import InsightSession

__all__ = ["ERF_KEYS", "InsightUi", "install_insight"]

ERF_KEYS = "Ctrl+Shift+F"
"""The effective fields of the pixel under the cursor."""
WIDTH = 420
"""The dock's width when first shown (room for four map tiles side by side)."""


class InsightUi(QObject):
    """The Insight dock, its session with the worker, and the two actions."""

    def __init__(self, context: AppContext, host: WindowHost) -> None:
        """Build the dock and the actions; add them through ``host``."""
        window = host.widget()
        super().__init__(window)
        self.context, self.host = context, host
        self.next_action = host.action("next_to_correct")
        self.dock = InsightDock(self.next_action)
        self.qdock = host.add_dock("insight", "Insight", self.dock,
                                   Qt.DockWidgetArea.RightDockWidgetArea, tabify_with="model")
        self.session = InsightSession(context, host, self.dock, self.qdock, self)
        self.ranker = NextImageRanker(self.session, context, host, self)
        self.next_action.triggered.connect(self.next_image)
        self.erf_action = QAction("Effective Receptive &Fields Here", window)
        self.erf_action.setShortcut(QKeySequence(ERF_KEYS))
        self.erf_action.setStatusTip("Compute the effective receptive fields (input gradients) "
                                     "of 32s, 16s and 8s at the pixel under the cursor")
        self.erf_action.triggered.connect(self.effective_fields)
        host.add_window_action(self.erf_action)
        view = host.menu("View")
        if view is not None:
            anchor = next((a for a in view.actions() if a.menu() is not None), None)
            if anchor is not None:
                view.insertAction(anchor, self.erf_action)
                view.insertSeparator(anchor)
            else:
                view.addAction(self.erf_action)
        host.add_shutdown(self.session.shutdown)
        self._widened = False
        self.qdock.visibilityChanged.connect(lambda on: self._widen() if on else None)

    def show(self, tab: str | None = None) -> None:
        """Show the Insight dock (with ``tab`` in front)."""
        self.host.show_dock("insight")
        if tab is not None:
            self.dock.show_tab(tab)
        self._widen()

    def _widen(self) -> None:
        """Give the dock room for its maps the first time it is shown."""
        window = self.host.widget()
        if self._widened or not isinstance(window, QMainWindow) or not self.session.active:
            return
        self._widened = True
        if self.qdock.width() < WIDTH:
            window.resizeDocks([self.qdock], [WIDTH], Qt.Orientation.Horizontal)

    def effective_fields(self) -> None:
        """The effective fields at the pixel under the cursor (else the last clicked)."""
        self.session.request_erf(self.session.input.last_hover)

    def next_image(self) -> bool:
        """Rank the open images by uncertainty and open the most uncertain uncorrected one."""
        return self.ranker.start()


def install_insight(context: AppContext, host: WindowHost) -> InsightUi:
    """Add the insight feature to the window ``host`` stands for."""
    return InsightUi(context, host)
