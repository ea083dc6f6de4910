"""InsightDock: the "Insight" dock's tabs (streams, receptive fields, fc as conv,
uncertainty) and a status line."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from app.features.insight.fc_tab import FcConvTab
from app.features.insight.fields_tab import FieldsTab
from app.features.insight.streams_tab import StreamsTab
from app.features.insight.uncertainty_tab import UncertaintyTab

TABS = ("streams", "fields", "fc", "uncertainty")
"""The tabs' keys, in order."""


def _scrolled(widget: QWidget) -> QScrollArea:
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(widget)
    return scroll


class InsightDock(QWidget):
    """The tabs of the Insight dock; they show results and ask for them through signals."""

    def __init__(self, next_action: QAction | None = None, parent: QWidget | None = None
                 ) -> None:
        """Build the four tabs."""
        super().__init__(parent)
        self.status = QLabel("Open an image and load a model.", self)
        self.status.setWordWrap(True)
        self.streams = StreamsTab()
        self.fields = FieldsTab()
        self.fc = FcConvTab()
        self.uncertainty = UncertaintyTab(next_action)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        for widget, title, tip in (
            (self.streams, "Streams", "Each skip stream's share of the 16s and 8s scores"),
            (self.fields, "Fields", "What each output pixel can see, and looks at"),
            (self.fc, "fc as conv", "The classifier slid over the image is the dense map"),
            (self.uncertainty, "Uncertain", "Where the model is unsure: correct there next"),
        ):
            index = self.tabs.addTab(_scrolled(widget), title)
            self.tabs.setTabToolTip(index, tip)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)

    @property
    def current(self) -> str:
        """The key of the tab in front."""
        return TABS[max(0, self.tabs.currentIndex())]

    def show_tab(self, key: str) -> None:
        """Bring a tab to the front."""
        self.tabs.setCurrentIndex(TABS.index(key))

    def sizeHint(self) -> QSize:
        """Room for four map tiles side by side."""
        return QSize(440, 700)
