"""The app's names for the mask sources besides the FCN variants (torch-free, Qt-free)."""

from __future__ import annotations

REFERENCE = "reference"
"""Overlay source meaning the reference mask instead of a variant."""

BACKGROUND_NAMES = frozenset({"background", "_background_", "bg", "__background__"})
"""Class-0 names that are left transparent in overlays by default."""
