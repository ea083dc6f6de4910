"""The QGraphicsView canvas, its numpy-backed layers, view synchronization and the memoized
display buffers the views draw.
"""

from __future__ import annotations
