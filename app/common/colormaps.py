"""The core's colormaps as premultiplied ARGB32 tables, ready for a QImage (Qt-free)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from core.outputs.colormaps import DEFAULT_COLORMAP, colormap

__all__ = ["argb_table"]


@lru_cache(maxsize=16)
def argb_table(name: str = DEFAULT_COLORMAP, alpha: int = 255) -> np.ndarray:
    """The colormap as 256 premultiplied ARGB32 values (``uint32``, ready for a QImage)."""
    rgb = colormap(name).astype(np.uint32)
    a = np.uint32(alpha)
    rgb = (rgb * a + 127) // 255
    table = (a << 24) | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    table = table.astype(np.uint32)
    table.setflags(write=False)
    return table
