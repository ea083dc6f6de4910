"""Export compositing: overlays, heatmaps and the compare grid as RGB arrays."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QApplication

from app.common.colormaps import colormap
from app.features.export import images as export


def test_export_compositing(qapp: QApplication) -> None:
    image = np.full((4, 6, 3), 100, np.uint8)
    labels = np.zeros((4, 6), np.uint8)
    labels[0, 0] = 1
    out = export.overlay_rgb(image, labels, [(0, 0, 0), (200, 0, 0)], 0.5, hidden=[0])
    assert tuple(out[0, 0]) == (150, 50, 50)
    assert tuple(out[1, 1]) == (100, 100, 100)
    grid = export.compare_grid([("a", image), ("b", None), ("c", image)], columns=2)
    assert grid.ndim == 3 and grid.shape[2] == 3
    heat = export.heatmap_rgb(np.zeros((4, 6), np.float16), "viridis")
    assert tuple(heat[0, 0]) == tuple(int(v) for v in colormap("viridis")[0])
