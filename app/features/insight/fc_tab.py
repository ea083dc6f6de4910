"""The fc as conv tab: the dense class-score map beside the classifier run on every 224×224
window (stride 32) and the whole network on sampled crops, with why they agree."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.features.insight.render import class_map_image, crops_image
from app.features.insight.results import FcConvResult
from app.features.insight.tiles import TileGrid, set_note

VGG_FC6 = (4096, 512, 7, 7)
TILES = [("dense", "Dense map", "The dense class-score map: fc6, fc7 and score_fr run as "
                                "convolutions over the whole image"),
         ("slid", "Classifier per window", "The classifier (fc6, fc7, score_fr as matrices) "
                                           "on each 224×224 window, slid with stride 32"),
         ("crops", "Network per crop", "The whole network run on each 224×224 crop on its "
                                       "own (the naive sliding window)")]


def width_note(result: FcConvResult) -> str:
    """What this model's fc layers are against VGG16's ('' for a full-width trunk)."""
    if not result.fc6 or tuple(result.fc6) == VGG_FC6:
        return ""
    out, cin, kh, kw = result.fc6
    return (f"This model's trunk is {result.width:g} of VGG16's width: its fc6 maps a "
            f"{kh}×{kw}×{cin} block to {out} units (VGG16: 7×7×512 → 4096), so this is its "
            "own classifier, not ImageNet's. The identity does not depend on the width: the "
            "comparison runs on this trunk as it is.")


class FcConvTab(QWidget):
    """Shows an :class:`FcConvResult`.

    Signals:
        windowChosen(int, int): a cell ``(row, col)`` was clicked: show its window.
    """

    windowChosen = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        """Empty until a result arrives."""
        super().__init__(parent)
        self.result: FcConvResult | None = None
        self.grid = TileGrid(3, self)
        self.grid.set_tiles(TILES)
        self.numbers = QLabel("", self)
        self.numbers.setWordWrap(True)
        self.width_label = QLabel("", self)
        self.width_label.setWordWrap(True)
        self.width_label.setStyleSheet("color: #c08000;")
        self.why = QLabel("", self)
        self.why.setWordWrap(True)
        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #c08000;")
        self.padding = QLabel(
            "Both sides run the trunk with conv1_1's padding of 1 (plain VGG16); the FCN's "
            "padding of 100 only shifts its maps for the skip crops. Cell (i, j) is the "
            "window at (32·j, 32·i); click a cell to see its window on the viewer.", self)
        self.padding.setWordWrap(True)
        self.padding.setStyleSheet("color: gray;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.note)
        layout.addWidget(self.grid)
        layout.addWidget(self.numbers)
        layout.addWidget(self.why)
        layout.addWidget(self.width_label)
        layout.addWidget(self.padding)
        layout.addStretch(1)
        self.grid.clicked.connect(self._on_tile)
        set_note(self.note, "")
        set_note(self.width_label, "")

    def clear(self, text: str = "") -> None:
        """Forget the shown result; ``text`` says why."""
        self.result = None
        for tile in self.grid.tiles.values():
            tile.set_image(None, "")
        self.numbers.setText(text)
        set_note(self.width_label, "")
        set_note(self.note, "")

    def show_result(self, result: FcConvResult, names: Sequence[str],
                    colors: Sequence[tuple[int, int, int]]) -> None:
        """The comparison of one image."""
        self.result = result
        self.why.setText(result.why)
        set_note(self.width_label, width_note(result))
        set_note(self.note, result.scale.note())
        if result.dense is None or result.slid is None:
            for tile in self.grid.tiles.values():
                tile.set_image(None, "")
            self.numbers.setText(result.note)
            return
        rows, cols = result.dense.shape[-2:]
        self.grid.tiles["dense"].set_image(class_map_image(result.dense, colors),
                                           f"{rows}×{cols} cells, winning class")
        self.grid.tiles["slid"].set_image(class_map_image(result.slid, colors),
                                          f"{rows * cols} windows, winning class")
        self.grid.tiles["crops"].set_image(
            crops_image((rows, cols), result.crops, colors),
            f"{len(result.crops)} of the {result.windows} windows inside the image (evenly "
            "spread; gray: not run)")
        text = (f"max |dense − classifier| = {result.max_difference:.1e} over {rows * cols} "
                "windows: the same numbers, up to float rounding.")
        if result.crop_difference is not None and result.crop_agreement is not None:
            text += (f" The whole network on {len(result.crops)} crops: max difference "
                     f"{result.crop_difference:.3g}, the same winning class in "
                     f"{result.crop_agreement:.0%} of them (the convolutions inside a crop see "
                     "zero padding at its border).")
        self.numbers.setText(text)

    def _on_tile(self, _key: str, fx: float, fy: float) -> None:
        r = self.result
        if r is None or r.dense is None:
            return
        rows, cols = r.dense.shape[-2:]
        self.windowChosen.emit(min(rows - 1, int(fy * rows)), min(cols - 1, int(fx * cols)))
