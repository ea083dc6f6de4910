"""FCN Studio's desktop viewer (PySide6).

Importing :mod:`app` and :mod:`app.main` is cheap: torch and the core's inference code are
imported in a worker thread once the window is on screen.
"""

from __future__ import annotations

from app._compat import immortalize_singletons

immortalize_singletons()

__all__: list[str] = []
