"""Class names and colors: the PASCAL VOC bit-interleaved colormap and class-name files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.atomic import atomic_write_text
from core.errors import DatasetError

VOID = 255
"""The label of pixels that are ignored by the loss and the metrics (VOC object borders)."""

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)


def voc_colormap(n: int = 256) -> np.ndarray:
    """The standard VOC colormap as an ``(n, 3)`` uint8 array (entry 255: (224, 224, 192))."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


VOC_PALETTE: np.ndarray = voc_colormap(256)


def read_class_names(path: str | os.PathLike[str]) -> list[str]:
    """Read a class-name file, one name a line (labelme2voc's ``class_names.txt``).

    labelme's ``labels.txt`` convention is understood too: a first line ``__ignore__`` is
    dropped (it maps to the void label 255) and ``_background_`` is kept as class 0.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"Cannot read class names from {path}: {exc.strerror or exc}") from exc
    names = [ln.strip() for ln in lines if ln.strip()]
    if names and names[0] == "__ignore__":
        names = names[1:]
    if not names:
        raise DatasetError(f"Class-name file {path} is empty")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DatasetError(f"Class-name file {path} repeats names: {', '.join(dupes)}")
    return names


def write_class_names(path: str | os.PathLike[str], names: list[str] | tuple[str, ...]) -> None:
    """Write class names one per line, atomically."""
    atomic_write_text(path, "".join(f"{n}\n" for n in names))
