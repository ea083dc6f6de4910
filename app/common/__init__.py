"""Helpers every layer of the app may use: variant names, file discovery, checkpoint headers,
numpy-to-QImage rendering, colormaps and the per-image statistics (no state, no widgets).
"""

from __future__ import annotations
