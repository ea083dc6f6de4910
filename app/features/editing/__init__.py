"""Mask editing: tools on the canvas, undo, the mask layer, the Annotate dock and saving.

Built on the Qt-free :mod:`core.annotation` (LabelImage, Edit, Stroke, tools).
"""

from __future__ import annotations

from app.features.editing.install import EditingUi, install_editing

__all__ = ["EditingUi", "install_editing"]
