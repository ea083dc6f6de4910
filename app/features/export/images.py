"""Exports as PNG: the mask (palette), the overlay, a heatmap (rendered by
:mod:`core.outputs.render`) and the compare grid."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter

from app.common.render import qimage_to_rgb, rgb_image
from core.outputs.render import mask_palette

Color = tuple[int, int, int]
TITLE_HEIGHT = 28


def save_mask(path: str | os.PathLike[str], labels: np.ndarray, colors: Sequence[Color]) -> None:
    """Write labels as an 8-bit palette PNG with the model's class colors."""
    from core.data.imageio import write_mask

    write_mask(path, labels, mask_palette(colors))


def save_rgb(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an RGB image (the extension picks the format)."""
    from core.data.imageio import write_image

    write_image(path, rgb)


def _fit(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return rgb
    import cv2

    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def compare_grid(
    tiles: Sequence[tuple[str, np.ndarray | None]], columns: int = 3, max_side: int = 720
) -> np.ndarray:
    """Tiles with titles in a grid, as one RGB image; a None tile is left blank."""
    shown = [(title, _fit(rgb, max_side) if rgb is not None else None) for title, rgb in tiles]
    sizes = [rgb.shape[:2] for _, rgb in shown if rgb is not None] or [(max_side, max_side)]
    th, tw = max(s[0] for s in sizes), max(s[1] for s in sizes)
    rows = -(-len(shown) // columns)
    pad = 6
    width = columns * (tw + pad) + pad
    height = rows * (th + TITLE_HEIGHT + pad) + pad
    canvas = QImage(width, height, QImage.Format.Format_RGB32)
    canvas.fill(QColor(40, 40, 44))
    painter = QPainter(canvas)
    font = QFont(painter.font())
    font.setPixelSize(16)
    font.setBold(True)
    painter.setFont(font)
    painter.setPen(QColor(235, 235, 235))
    keep = []
    for i, (title, rgb) in enumerate(shown):
        x = pad + (i % columns) * (tw + pad)
        y = pad + (i // columns) * (th + TITLE_HEIGHT + pad)
        painter.drawText(QRect(x, y, tw, TITLE_HEIGHT), int(Qt.AlignmentFlag.AlignVCenter), title)
        if rgb is not None:
            buf = rgb_image(rgb)
            keep.append(buf)
            painter.drawImage(x, y + TITLE_HEIGHT, buf.image)
        else:
            painter.drawText(QRect(x, y + TITLE_HEIGHT, tw, th),
                             int(Qt.AlignmentFlag.AlignCenter), "—")
    painter.end()
    return qimage_to_rgb(canvas)
