"""MaskLayerItem: the editable mask on the canvas, recolored only inside dirty rectangles.

The item draws the label mask through a 256-entry lookup table in tiles of the zoom's level
(a :class:`~app.canvas.sources.LabelSource`: no full-size color buffer, only the visible
tiles). A change of the label mask recolors the cached tiles only inside its bounding box
and repaints only that rectangle, so a brush segment costs the same on a 512² and on a
10000² image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from PySide6.QtCore import QRectF

from app.canvas.layers import ArrayImageItem
from app.canvas.sources import LabelSource

Color = tuple[int, int, int]
VOID = 255
VOID_COLOR: Color = (224, 224, 192)
"""Void pixels are drawn in the VOC void color (cream), half transparent."""
VOID_ALPHA = 170


def premultiplied(rgb: Color, alpha: int = 255) -> int:
    """One premultiplied ARGB32 value."""
    r, g, b = (int(c) * alpha // 255 for c in rgb)
    return (alpha << 24) | (r << 16) | (g << 8) | b


def label_lut(
    colors: Sequence[Color], hidden: Iterable[int] = (), void: Color | None = VOID_COLOR
) -> np.ndarray:
    """A 256-entry uint32 table: class colors (opaque), hidden and unknown labels clear."""
    lut = np.zeros(256, np.uint32)
    for i, rgb in enumerate(colors[:VOID]):
        lut[i] = premultiplied(tuple(rgb))
    for i in hidden:
        if 0 <= int(i) < VOID:
            lut[int(i)] = 0
    if void is not None:
        lut[VOID] = premultiplied(void, VOID_ALPHA)
    return lut


class MaskLayerItem(ArrayImageItem):
    """Shows an ``H x W`` uint8 label array (edited in place elsewhere) in class colors.

    Call :meth:`recolor` with the dirty box after each change: it recolors the shown tiles
    there and schedules a repaint of that rectangle only.

    Attributes:
        active: Whether the viewer shows this layer instead of the prediction overlay.
    """

    def __init__(self) -> None:
        """An empty layer; give it labels with :meth:`set_labels`."""
        super().__init__("mask")
        self.active = False
        self._labels: np.ndarray | None = None
        self._lut = label_lut([])

    @property
    def labels(self) -> np.ndarray | None:
        """The label array shown (not a copy)."""
        return self._labels

    @property
    def argb(self) -> np.ndarray | None:
        """The mask's premultiplied ARGB colors, computed whole (for tests)."""
        return None if self._labels is None else self._lut[self._labels]

    def set_labels(self, labels: np.ndarray | None) -> None:
        """Show ``labels`` (kept by reference: later in-place edits need :meth:`recolor`)."""
        self._labels = labels
        self.set_source(None if labels is None else LabelSource(labels, self._lut))

    def set_colors(
        self, colors: Sequence[Color], hidden: Iterable[int] = (), void: Color | None = VOID_COLOR
    ) -> None:
        """Use these class colors (``hidden`` classes transparent) and redraw everything."""
        lut = label_lut(colors, hidden, void)
        if np.array_equal(lut, self._lut):
            return
        self._lut = lut
        self.recolor_all()

    def recolor_all(self) -> None:
        """Recolor everything (after new colors, or labels changed everywhere)."""
        source = self.source
        if isinstance(source, LabelSource):
            source.set_lut(self._lut)
            self.update()

    def recolor(self, bbox: tuple[int, int, int, int]) -> None:
        """Recolor the half-open box ``(x0, y0, x1, y1)`` and repaint only that rectangle."""
        if self._labels is None:
            return
        x0, y0, x1, y1 = (int(v) for v in bbox)
        if x1 <= x0 or y1 <= y0:
            return
        self.update_region(QRectF(x0, y0, x1 - x0, y1 - y0))
