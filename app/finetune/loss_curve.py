"""LossCurve: the live training loss (a pyqtgraph PlotWidget, imported on first use)."""

from __future__ import annotations

import os

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


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
        self._curve = self.plot.plot([], [], pen=pg.mkPen((30, 100, 200), width=2))
        self._placeholder.hide()
        self._layout.addWidget(self.plot)
        if self.xs:
            self._curve.setData(self.xs, self.ys)

    def clear(self) -> None:
        """Forget the points."""
        self.xs, self.ys = [], []
        if self._curve is not None:
            self._curve.setData([], [])

    def add(self, step: int, loss: float) -> None:
        """Append one point."""
        self.xs.append(int(step))
        self.ys.append(float(loss))
        if self._curve is not None:
            self._curve.setData(self.xs, self.ys)

    def set_history(self, history: list[tuple[int, float]]) -> None:
        """Show a whole loss history (the worker's, when a run ends)."""
        self.xs = [int(s) for s, _ in history]
        self.ys = [float(v) for _, v in history]
        if self._curve is not None:
            self._curve.setData(self.xs, self.ys)
