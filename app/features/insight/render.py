"""The insight maps as images: logits in a diverging colormap, uncertainty in magma fading
to transparent, skip changes in the class colors, effective fields, fc score maps."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PySide6.QtGui import qRgba

from app.common.colormaps import argb_table
from app.common.render import ImageBuffer, indexed_image, label_image, rgb_image
from core.outputs.colormaps import ENTROPY_COLORMAP
from core.outputs.render import to_index

Color = tuple[int, int, int]

DIVERGING = ((5, 48, 97), (67, 147, 195), (247, 247, 247), (214, 96, 77), (103, 0, 31))
"""Blue (negative) through white (zero) to red (positive): ColorBrewer's RdBu, reversed."""
STREAM_COLORS: dict[str, Color] = {"score_fr": (230, 140, 30), "score_pool4": (30, 160, 150),
                                   "score_pool3": (150, 80, 200)}
"""One color per stream, in the bars and the legends."""
VARIANT_COLORS: dict[str, Color] = {"32s": (255, 80, 80), "16s": (255, 210, 40),
                                    "8s": (60, 220, 255)}
"""One color per variant, for the receptive field rectangles."""


@lru_cache(maxsize=4)
def diverging_table() -> list[int]:
    """The diverging colormap as an opaque Indexed8 color table."""
    anchors = np.asarray(DIVERGING, np.float64)
    at = np.linspace(0, 255, len(anchors))
    idx = np.arange(256)
    rgb = np.stack([np.interp(idx, at, anchors[:, c]) for c in range(3)], 1).round()
    return [qRgba(int(r), int(g), int(b), 255) for r, g, b in rgb]


@lru_cache(maxsize=4)
def fading_table(cmap: str = ENTROPY_COLORMAP) -> list[int]:
    """A colormap whose opacity grows with the value (0: transparent), for overlays."""
    table = argb_table(cmap)
    out = []
    for i, argb in enumerate(table):
        v = int(argb)
        alpha = round(255 * (i / 255) ** 0.5)
        out.append(qRgba((v >> 16) & 255, (v >> 8) & 255, v & 255, alpha))
    return out


def symmetric_limit(*maps: np.ndarray) -> float:
    """The largest magnitude over ``maps`` (at least a tiny positive number)."""
    peak = max((float(np.abs(m).max()) for m in maps if m.size), default=0.0)
    return peak if peak > 0 else 1e-6


def logit_image(values: np.ndarray, limit: float) -> ImageBuffer:
    """Logits (or their changes) from ``-limit`` (blue) through 0 (white) to ``limit`` (red)."""
    return indexed_image(to_index(values, -limit, limit), diverging_table())


def uncertainty_image(values: np.ndarray) -> ImageBuffer:
    """Uncertainty in [0, 1] in magma, transparent where the model is sure."""
    return indexed_image(to_index(values, 0.0, 1.0), fading_table())


def fading_image(values: np.ndarray, cmap: str = ENTROPY_COLORMAP) -> ImageBuffer:
    """A non-negative map normalized to its maximum, fading to transparent at zero."""
    peak = float(values.max()) if values.size else 0.0
    return indexed_image(to_index(values, 0.0, peak if peak > 0 else 1.0), fading_table(cmap))


def scalar_rgb(values: np.ndarray, cmap: str = ENTROPY_COLORMAP) -> ImageBuffer:
    """A non-negative map normalized to its maximum, through ``cmap`` (opaque)."""
    peak = float(values.max()) if values.size else 0.0
    table = [int(v) for v in argb_table(cmap)]
    return indexed_image(to_index(values, 0.0, peak if peak > 0 else 1.0), table)


def changed_image(changed: np.ndarray, after: np.ndarray, magnitude: np.ndarray,
                  colors: Sequence[Color], peak: float | None = None) -> ImageBuffer:
    """What a skip changed: the new class's color where the winning class changed, and
    elsewhere the size of the score change in gray (darker: less change; ``peak``: the
    change shown lightest, default the largest)."""
    if peak is None:
        peak = float(magnitude.max()) if magnitude.size else 0.0
    gray = (40 + 120 * (magnitude / peak if peak > 0 else magnitude)).astype(np.uint8)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    palette = np.zeros((256, 3), np.uint8)
    for i, c in enumerate(colors[:256]):
        palette[i] = c
    rgb[changed] = palette[after[changed]]
    return rgb_image(rgb)


def class_map_image(scores: np.ndarray, colors: Sequence[Color]) -> ImageBuffer:
    """A ``(C, rows, cols)`` score map as its winning classes in the class colors."""
    return label_image(np.argmax(scores, axis=0).astype(np.uint8), colors)


def crops_image(shape: tuple[int, int], crops: dict[tuple[int, int], np.ndarray],
                colors: Sequence[Color]) -> ImageBuffer:
    """The winning class of each crop that ran, at its cell; dark gray elsewhere."""
    rgb = np.full((*shape, 3), 60, np.uint8)
    for (i, j), scores in crops.items():
        if i < shape[0] and j < shape[1]:
            c = int(np.argmax(scores))
            rgb[i, j] = colors[c] if c < len(colors) else (255, 255, 255)
    return rgb_image(rgb)
