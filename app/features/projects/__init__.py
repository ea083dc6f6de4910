"""Projects with their own classes: New/Open Project, the class editor, the model mismatch."""

from __future__ import annotations
