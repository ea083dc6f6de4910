"""File > Export: masks, overlays, heatmaps and the compare grid as PNG files.
"""

from __future__ import annotations
