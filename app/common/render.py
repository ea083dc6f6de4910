"""Numpy arrays to QImages for display: RGB images, label overlays, colormapped maps.

Every function returns an :class:`ImageBuffer`: a QImage plus the numpy array it wraps (if
any). Keep the buffer, not just the QImage, while the image is shown: a QImage built on a
numpy array does not own that memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PySide6.QtGui import QImage, qRgba

from app.common.colormaps import argb_table
from core.outputs.colormaps import DEFAULT_COLORMAP
from core.outputs.render import to_index

ARGB = QImage.Format.Format_ARGB32_Premultiplied
Color = tuple[int, int, int]


@dataclass(frozen=True)
class ImageBuffer:
    """A QImage and the array holding its pixels (None when the QImage owns them)."""

    image: QImage
    array: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return self.image.width(), self.image.height()


def wrap_argb(argb: np.ndarray) -> ImageBuffer:
    """Wrap an ``H x W`` uint32 array of premultiplied ARGB values without copying (later
    in-place changes of the array show in the image)."""
    argb = np.ascontiguousarray(argb, dtype=np.uint32)
    h, w = argb.shape
    return ImageBuffer(QImage(argb.data, w, h, argb.strides[0], ARGB), argb)


def rgb32_image(rgb: np.ndarray) -> ImageBuffer:
    """An ``H x W x 3`` uint8 RGB array (rows may be strided) as an RGB32 image on a new
    ``H x W x 4`` array (one OpenCV pass; the byte order of RGB32 on little-endian CPUs)."""
    import cv2

    bgra = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
    h, w = bgra.shape[:2]
    return ImageBuffer(QImage(bgra.data, w, h, bgra.strides[0], QImage.Format.Format_RGB32),
                       bgra)


def premultiplied(rgb: Color, alpha: int = 255) -> int:
    """One premultiplied ARGB32 value."""
    r, g, b = (int(c) * alpha // 255 for c in rgb)
    return (alpha << 24) | (r << 16) | (g << 8) | b


def color_lut(colors: Sequence[Color], hidden: Iterable[int] = (), alpha: int = 255
              ) -> np.ndarray:
    """A 256-entry uint32 table of premultiplied ARGB values: class colors at ``alpha``;
    transparent beyond them and for ``hidden`` (the numpy twin of :func:`color_table`)."""
    lut = np.zeros(256, np.uint32)
    for i, rgb in enumerate(colors[:256]):
        lut[i] = premultiplied(tuple(rgb), alpha)
    for i in hidden:
        if 0 <= int(i) < 256:
            lut[int(i)] = 0
    return lut


def rgb_image(rgb: np.ndarray) -> ImageBuffer:
    """An ``H x W x 3`` uint8 RGB array as an opaque RGB32 QImage (a copy Qt owns)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    wrapped = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)
    return ImageBuffer(wrapped.convertToFormat(QImage.Format.Format_RGB32))


def color_table(
    colors: Sequence[Color], alpha: int = 255, hidden: Iterable[int] = ()
) -> list[int]:
    """A 256-entry Indexed8 color table: class colors; transparent beyond them and ``hidden``."""
    table = [qRgba(0, 0, 0, 0)] * 256
    for i, (r, g, b) in enumerate(colors[:256]):
        table[i] = qRgba(int(r), int(g), int(b), alpha)
    for i in hidden:
        if 0 <= i < 256:
            table[i] = qRgba(0, 0, 0, 0)
    return table


def indexed_image(indices: np.ndarray, table: list[int]) -> ImageBuffer:
    """An ``H x W`` uint8 index array through a color table, as ARGB32_Premultiplied (a copy)."""
    idx = np.ascontiguousarray(indices, dtype=np.uint8)
    h, w = idx.shape
    wrapped = QImage(idx.data, w, h, idx.strides[0], QImage.Format.Format_Indexed8)
    wrapped.setColorTable(table)
    return ImageBuffer(wrapped.convertToFormat(ARGB))


def label_image(
    labels: np.ndarray, colors: Sequence[Color], hidden: Iterable[int] = (),
    contours: bool = False,
) -> ImageBuffer:
    """A label mask in the class colors (opaque; set the layer's opacity to blend it);
    ``contours``: only the boundaries between regions, in their classes' colors."""
    if contours:
        labels = contour_labels(labels, contour_thickness(*np.shape(labels)[:2]))
        hidden = {*hidden, 255}
    return indexed_image(labels, color_table(colors, 255, hidden))


def contour_labels(labels: np.ndarray, thickness: int = 1) -> np.ndarray:
    """``labels`` on the boundaries between regions, 255 (transparent) elsewhere.

    A pixel is on a boundary when a 4-neighbour has another label; ``thickness`` > 1 widens
    the lines inwards from both sides (each side keeps its own color), so that they stay
    visible when a large image is shown scaled down.
    """
    lab = np.asarray(labels, dtype=np.uint8)
    edge = np.zeros(lab.shape, bool)
    dx = lab[:, 1:] != lab[:, :-1]
    dy = lab[1:, :] != lab[:-1, :]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    if thickness > 1:
        import cv2

        kernel = np.ones((2 * (thickness // 2) + 1,) * 2, np.uint8)
        edge = cv2.dilate(edge.view(np.uint8), kernel).astype(bool)
    return np.where(edge, lab, np.uint8(255))


def contour_thickness(height: int, width: int) -> int:
    """Line width for contours of an image this size: 1 px up to 1024, wider beyond (an
    image fitted to a window is shown scaled down)."""
    return max(1, round(max(height, width) / 1024) * 2 - 1)


def boolean_image(mask: np.ndarray, color: Color = (255, 40, 40), alpha: int = 255) -> ImageBuffer:
    """``color`` where ``mask`` is true, transparent elsewhere."""
    table = [qRgba(0, 0, 0, 0), qRgba(*color, alpha)] + [qRgba(0, 0, 0, 0)] * 254
    return indexed_image(np.asarray(mask).view(np.uint8), table)


def scalar_image(
    values: np.ndarray, cmap: str = DEFAULT_COLORMAP, vmin: float = 0.0, vmax: float = 1.0
) -> ImageBuffer:
    """A float map through a colormap, ``vmin``..``vmax`` spanning the colormap (a copy)."""
    return indexed_image(to_index(values, vmin, vmax), colormap_table(cmap))


def probability_image(prob: np.ndarray, cmap: str = DEFAULT_COLORMAP) -> ImageBuffer:
    """A map of probabilities in [0, 1] (float16 or float32) through a colormap."""
    return scalar_image(prob, cmap)


@lru_cache(maxsize=16)
def colormap_table(cmap: str = DEFAULT_COLORMAP) -> list[int]:
    """A colormap as an Indexed8 color table (opaque)."""
    return [int(v) for v in argb_table(cmap)]


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """Copy a QImage into an ``H x W x 3`` uint8 RGB array."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = img.height(), img.width()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.bytesPerLine() * h)
    return buf.reshape(h, img.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()
