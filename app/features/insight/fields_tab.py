"""The Receptive fields tab: the theoretical field of the hovered pixel for each variant
(drawn on the viewer), and on request the effective fields side by side."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QLabel, QPushButton, QVBoxLayout, QWidget

from app.common.render import ImageBuffer
from app.features.insight.render import VARIANT_COLORS, fading_image, scalar_rgb
from app.features.insight.results import ErfResult
from app.features.insight.tiles import TileGrid, box_painter, point_painter, set_note
from core.variants import VARIANTS

EXPLAIN = (
    "A rectangle holds every image pixel that can change that output pixel: exact, from the "
    "layer geometry, clipped to the image (the network sees padding beyond it). FCN-32s "
    "reads two or three fc7 cells through its 64-px deconvolution; the skips add finer "
    "streams, so 16s and 8s reach one fc7 cell further for some pixel phases."
)
ERF_EXPLAIN = (
    "The effective field is |∂ logit / ∂ input| of the pixel's winning class (Luo et al. "
    "2016): where the network actually looks, usually a small, roughly Gaussian part of the "
    "theoretical field (solid rectangle). Dashed: where 95 % of the gradient lies. Computed "
    "on the image itself, on a crop holding the three fields (aligned to the trunk's stride "
    "of 32, so the gradients are those of the whole image)."
)


def _hex(variant: str) -> str:
    return QColor(*VARIANT_COLORS[variant]).name()


class FieldsTab(QWidget):
    """Legends of the hovered pixel's fields, the effective-field button and its maps.

    Signals:
        hoverToggled(bool): draw the hovered pixel's fields on the viewer or not.
        erfRequested(): compute the effective fields at the clicked pixel.
        mapChosen(str): an effective field tile was clicked ("erf:<variant>", '' : none).
    """

    hoverToggled = Signal(bool)
    erfRequested = Signal()
    mapChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        """Empty legends."""
        super().__init__(parent)
        self.erf: ErfResult | None = None
        self._buffers: dict[str, ImageBuffer] = {}
        self.hover_box = QCheckBox("Fields of the pixel under the cursor", self)
        self.hover_box.setToolTip("Draw the theoretical receptive field of each variant's "
                                  "output at the hovered pixel on the viewer")
        self.hover_box.setChecked(True)
        self.streams_box = QCheckBox("… and each stream of FCN-8s", self)
        self.streams_box.setToolTip("Also draw the fields of FCN-8s's score_pool4 and "
                                    "score_pool3 terms (dashed): the skips see much less")
        self.legend = {v: QLabel(self) for v in VARIANTS}
        self.stream_legend = QLabel(self)
        self.stream_legend.setWordWrap(True)
        explain = QLabel(EXPLAIN, self)
        explain.setWordWrap(True)
        explain.setStyleSheet("color: gray;")
        self.erf_button = QPushButton("Effective fields (clicked pixel)", self)
        self.erf_button.setToolTip("Input-gradient magnitude of 32s, 16s and 8s at the pixel "
                                   "last clicked on the viewer (Ctrl+Shift+F: at the pixel "
                                   "under the cursor)")
        self.erf_label = QLabel("Click a pixel of the viewer, then ask for its effective "
                                "fields (or press Ctrl+Shift+F over it).", self)
        self.erf_label.setWordWrap(True)
        self.grid = TileGrid(3, self)
        self.grid.set_tiles([(f"erf:{v}", f"FCN-{v}") for v in VARIANTS])
        erf_explain = QLabel(ERF_EXPLAIN, self)
        erf_explain.setWordWrap(True)
        erf_explain.setStyleSheet("color: gray;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.hover_box)
        for label in self.legend.values():
            label.setWordWrap(True)
            layout.addWidget(label)
        layout.addWidget(self.streams_box)
        layout.addWidget(self.stream_legend)
        layout.addWidget(explain)
        layout.addWidget(self.erf_button)
        layout.addWidget(self.erf_label)
        layout.addWidget(self.grid)
        layout.addWidget(erf_explain)
        layout.addStretch(1)
        self.hover_box.toggled.connect(self.hoverToggled)
        self.erf_button.clicked.connect(self.erfRequested)
        self.grid.clicked.connect(self._on_tile)
        self.show_fields(None)

    @property
    def hover_on(self) -> bool:
        """Whether the hovered pixel's fields are drawn."""
        return self.hover_box.isChecked()

    @property
    def streams_on(self) -> bool:
        """Whether each stream's field of FCN-8s is drawn too."""
        return self.streams_box.isChecked()

    def show_fields(self, fields: dict[str, Any] | None, at: tuple[int, int] | None = None,
                    note: str = "") -> None:
        """Legends for ``fields`` (core ``ReceptiveField`` by variant) at image pixel ``at``."""
        eight = None if fields is None else fields.get("8s")
        set_note(self.stream_legend, "" if eight is None else "FCN-8s's streams: " + ", ".join(
            f"{s} {b.width}×{b.height}" for s, b in eight.streams.items()) + " (inside the "
            "image)")
        for v, label in self.legend.items():
            f = None if fields is None else fields.get(v)
            dash = {"32s": "solid", "16s": "dashed", "8s": "dotted"}[v]
            swatch = f"<span style='color:{_hex(v)}'>■</span> FCN-{v} ({dash})"
            if f is None:
                label.setText(f"{swatch}: {note or 'hover over the image'}")
                continue
            h, w = f.size
            text = f"{swatch} at ({at[0]}, {at[1]}): {w}×{h} px" if at else f"{swatch}: {w}×{h}"
            if (f.box.width, f.box.height) != (w, h):
                text += f", {f.box.width}×{f.box.height} inside the image"
            label.setText(text)

    def clear_erf(self, text: str = "") -> None:
        """Forget the effective fields."""
        self.erf = None
        self._buffers = {}
        for tile in self.grid.tiles.values():
            tile.set_image(None, "")
        self.erf_label.setText(text or "Click a pixel of the viewer, then ask for its "
                               "effective fields (or press Ctrl+Shift+F over it).")

    def show_erf(self, result: ErfResult) -> None:
        """The effective fields of one pixel, each over the crop it was computed on."""
        self.erf = result
        self._buffers = {}
        x0, y0, x1, y1 = result.window
        size = (x1 - x0, y1 - y0)
        self.erf_label.setText(f"Effective fields of pixel ({result.x}, {result.y}), over the "
                               f"{size[0]}×{size[1]} crop at ({x0}, {y0}). Click one to show "
                               "it on the viewer.")
        for v in VARIANTS:
            if v not in result.maps:
                continue
            buffer = scalar_rgb(np.sqrt(result.maps[v]))  # the square root shows the tails
            self._buffers[f"erf:{v}"] = buffer

            def local(b: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
                return (b[0] - x0, b[1] - y0, b[2] - x0, b[3] - y0)

            color = QColor(*VARIANT_COLORS[v])
            boxes = [(local(result.boxes[v]), color, False), (local(result.mass[v]), color, True)]
            painters = [box_painter(boxes, size), point_painter((result.x - x0, result.y - y0),
                                                                size)]
            mb = result.mass[v]
            h, w = result.sizes[v]
            caption = (f"95 % within {mb[2] - mb[0]}×{mb[3] - mb[1]} px of the {w}×{h} "
                       "theoretical field (shown: the square root)")
            self.grid.tiles[f"erf:{v}"].set_image(
                buffer, caption, lambda p, r, ps=painters: [f(p, r) for f in ps])

    def erf_buffer(self, key: str) -> tuple[ImageBuffer, str] | None:
        """An effective field's image for the viewer (fading to transparent where the
        gradient is zero) and its title (None: none computed)."""
        if self.erf is None or key not in self._buffers:
            return None
        values = np.sqrt(self.erf.maps[key.split(":", 1)[1]])
        return fading_image(values), f"effective field, {self.grid.tiles[key].title.text()}"

    def _on_tile(self, key: str, _fx: float, _fy: float) -> None:
        chosen = None if self.grid.selected() == key else key
        self.grid.select(chosen)
        self.mapChosen.emit(chosen or "")
