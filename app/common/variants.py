"""The app's names for the FCN variants and mask sources (torch-free, Qt-free).

The one copy in the app of the core's variant list (``core.models.fcn.VARIANTS``): the lead
swaps it to the core's torch-free ``variants`` module once that exists.
"""

from __future__ import annotations

VARIANTS: tuple[str, ...] = ("32s", "16s", "8s")
"""The FCN variants, coarse to fine (core.models.fcn.VARIANTS, without importing torch)."""

REFERENCE = "reference"
"""Overlay source meaning the reference mask instead of a variant."""

BACKGROUND_NAMES = frozenset({"background", "_background_", "bg", "__background__"})
"""Class-0 names that are left transparent in overlays by default."""
