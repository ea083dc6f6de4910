"""LossCurve: the live training loss (a pyqtgraph PlotWidget, imported on first use)."""

from __future__ import annotations

import os

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

PEN, STALE_PEN = (30, 100, 200), (170, 170, 170)
REDRAW_MS = 250
"""Redraw at most 4 times a second: pyqtgraph paints in Python, holding the GIL that the
training thread needs between its small operations."""


class LossCurve(QWidget):
    """Loss per step; pyqtgraph is imported only when the curve is first needed (startup)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty placeholder; the plot appears on the first :meth:`ensure_plot`."""
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._placeholder = QLabel("The training loss appears here", self)
        self._layout.addWidget(self._placeholder)
        self.plot = None
        self._curve = None
        self.xs: list[int] = []
        self.ys: list[float] = []
        self.stale = False
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_MS)
        self._redraw.timeout.connect(self._draw)

    def ensure_plot(self) -> None:
        """Create the PlotWidget (imports pyqtgraph, about 0.5 s the first time)."""
        if self.plot is not None:
            return
        os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
        import pyqtgraph as pg

        self.plot = pg.PlotWidget(self)
        self.plot.setBackground("w")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.plot.setMouseEnabled(x=False, y=False)
        self._curve = self.plot.plot([], [], pen=self._pen())
        self._placeholder.hide()
        self._layout.addWidget(self.plot)
        if self.xs:
            self._curve.setData(self.xs, self.ys)

    def _pen(self) -> object:
        import pyqtgraph as pg

        return pg.mkPen(STALE_PEN if self.stale else PEN, width=2)

    def set_stale(self, stale: bool) -> None:
        """Draw the curve gray (it belongs to another model's run) or in color."""
        if bool(stale) == self.stale:
            return
        self.stale = bool(stale)
        if self._curve is not None:
            self._curve.setPen(self._pen())
        self.setToolTip("The loss of the last fine-tune, of another model than the one in "
                        "use" if self.stale else "")

    def clear(self) -> None:
        """Forget the points."""
        self.xs, self.ys = [], []
        self._draw()

    def add(self, step: int, loss: float) -> None:
        """Append one point (drawn within :data:`REDRAW_MS`)."""
        self.xs.append(int(step))
        self.ys.append(float(loss))
        if not self._redraw.isActive():
            self._redraw.start()

    def set_history(self, history: list[tuple[int, float]]) -> None:
        """Show a whole loss history (the worker's, when a run ends)."""
        self.xs = [int(s) for s, _ in history]
        self.ys = [float(v) for _, v in history]
        self._draw()

    def _draw(self) -> None:
        self._redraw.stop()
        if self._curve is not None:
            self._curve.setData(self.xs, self.ys)
