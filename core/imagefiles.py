"""Which files are images: one extension list for the core, the app and the CLI (torch-free).

The formats :func:`core.data.imageio.read_image` reads (OpenCV's, plus GIF through PIL),
most common first: where a folder holds one image under several extensions, the earlier
extension wins.
"""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_SUFFIXES: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jpe", ".dib", ".jp2",
    ".pbm", ".pgm", ".ppm", ".pxm", ".pnm", ".pfm", ".sr", ".ras", ".exr", ".hdr", ".pic",
    ".avif", ".gif",
)
"""Image file extensions (lower case), in order of preference."""


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has an image extension (any case) and is not hidden."""
    p = Path(path)
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
