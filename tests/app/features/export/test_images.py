"""Export compositing: the compare grid as an RGB array."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QApplication

from app.features.export import images as export


def test_export_compositing(qapp: QApplication) -> None:
    image = np.full((4, 6, 3), 100, np.uint8)
    grid = export.compare_grid([("a", image), ("b", None), ("c", image)], columns=2)
    assert grid.ndim == 3 and grid.shape[2] == 3
