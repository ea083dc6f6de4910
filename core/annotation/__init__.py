"""Annotation: editable label masks with compact undo, painting tools, project folders.

Qt-free and torch-free: the app's brush UI wraps these classes (an :class:`Edit` per
``QUndoCommand``, :attr:`LabelImage.on_change` for dirty-rectangle repaints).
"""

from __future__ import annotations

from core.annotation.labels import BBox, Edit, LabelImage, Region, Stroke
from core.annotation.tools import (
    brush_stroke,
    disk,
    eyedropper,
    flood_fill,
    lasso,
    polygon_fill,
)

__all__ = [
    "BBox",
    "Edit",
    "LabelImage",
    "Region",
    "Stroke",
    "brush_stroke",
    "disk",
    "eyedropper",
    "flood_fill",
    "lasso",
    "polygon_fill",
]
