"""Class names and colors: the PASCAL VOC bit-interleaved colormap and class-name files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.atomic import atomic_write_text
from core.errors import DatasetError, FCNStudioError
from core.fileio import read_text

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


def read_class_names(path: str | os.PathLike[str], *,
                     error: type[FCNStudioError] = DatasetError,
                     numbered: bool = False) -> list[str]:
    """Read a class-name file, one name a line: the one reader of every such file.

    Used for ``class_names.txt`` (labelme2voc's, datasets', projects'), labelme's
    ``labels.txt`` and the class lists given to ``convert``. Lines are stripped; blank
    lines and ``#`` comment lines are skipped. labelme's convention is understood: a first
    line ``__ignore__`` is dropped (it maps to the void label 255) and ``_background_`` is
    kept as class 0.

    Args:
        path: The file (UTF-8; a BOM is dropped).
        error: The error type raised (a :class:`FCNStudioError` subclass).
        numbered: Lines are class numbers (labelme's labels.txt): the ``__ignore__``
            line is kept and a blank line before the last name is an error instead of
            skipped, since skipping it would shift the ids after it.

    Raises:
        error: The file cannot be read, is not UTF-8, is empty or repeats a name,
            naming the file.
    """
    path = Path(path)
    lines = [ln.strip() for ln in read_text(path, error, "class names from").splitlines()]
    if numbered:
        while lines and not lines[-1]:
            lines.pop()
        if "" in lines:
            raise error(
                f"{path} has a blank line at line {lines.index('') + 1}; labels are "
                "numbered by line, so remove it"
            )
        names = lines
    else:
        names = [ln for ln in lines if ln and not ln.startswith("#")]
        if names and names[0] == "__ignore__":
            names = names[1:]
    if not names:
        raise error(f"Class-name file {path} is empty")
    seen: set[str] = set()
    dupes = sorted({n for n in names if n in seen or seen.add(n)})
    if dupes:
        raise error(f"Class-name file {path} repeats {', '.join(dupes)}")
    return names


def write_class_names(path: str | os.PathLike[str], names: list[str] | tuple[str, ...]) -> None:
    """Write class names one per line, atomically."""
    atomic_write_text(path, "".join(f"{n}\n" for n in names))
