"""Numpy-to-QImage rendering and colormaps."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QColor

from app.common.colormaps import argb_table
from app.common.render import (
    boolean_image,
    contour_labels,
    contour_thickness,
    label_image,
    probability_image,
    qimage_to_rgb,
    rgb_image,
    scalar_image,
)
from core.outputs.colormaps import COLORMAPS, colormap


def _pixel(buf, x: int, y: int) -> tuple[int, int, int, int]:
    c = QColor.fromRgba(buf.image.pixel(x, y))
    return c.red(), c.green(), c.blue(), c.alpha()


def test_rgb_image_roundtrip() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    buf = rgb_image(rgb)
    assert buf.size == (5, 7)
    np.testing.assert_array_equal(qimage_to_rgb(buf.image), rgb)


def test_label_image_colors_void_and_hidden() -> None:
    labels = np.array([[0, 1], [2, 255]], np.uint8)
    colors = [(0, 0, 0), (255, 0, 0), (0, 255, 0)]
    buf = label_image(labels, colors, hidden=[0])
    assert _pixel(buf, 0, 0)[3] == 0  # hidden background
    assert _pixel(buf, 1, 0) == (255, 0, 0, 255)
    assert _pixel(buf, 0, 1) == (0, 255, 0, 255)
    assert _pixel(buf, 1, 1)[3] == 0  # void


def test_contours_mark_exactly_the_region_boundaries() -> None:
    labels = np.zeros((6, 8), np.uint8)
    labels[2:5, 3:7] = 2  # a 3 x 4 box of class 2 on background
    out = contour_labels(labels)
    box = np.zeros_like(labels, bool)
    box[2:5, 3:7] = True
    ring = box & ~np.pad(box[1:-1, 1:-1] & box[:-2, 1:-1] & box[2:, 1:-1] & box[1:-1, :-2]
                         & box[1:-1, 2:], 1)  # box pixels with a background 4-neighbour
    outside = ~box & (np.roll(box, 1, 0) | np.roll(box, -1, 0) | np.roll(box, 1, 1)
                      | np.roll(box, -1, 1))  # background pixels touching the box
    assert np.array_equal(out == 2, ring)
    assert np.array_equal(out == 0, outside)
    assert ((out == 255) == ~(ring | outside)).all()
    assert (contour_labels(np.full((5, 5), 3, np.uint8)) == 255).all()  # one region: none
    wide = contour_labels(labels, thickness=3)
    assert (wide != 255).sum() > (out != 255).sum() and set(np.unique(wide)) == {0, 2, 255}
    assert contour_thickness(500, 500) == 1 and contour_thickness(4096, 3000) == 7
    colors = [(0, 0, 0), (255, 0, 0), (0, 255, 0)]
    buf = label_image(labels, colors, contours=True)
    assert _pixel(buf, 3, 2) == (0, 255, 0, 255)  # box corner: a boundary pixel
    assert _pixel(buf, 4, 3)[3] == 0  # box interior: clear
    assert _pixel(buf, 0, 0)[3] == 0  # far background: clear


def test_probability_image_matches_colormap() -> None:
    values = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    buf = probability_image(values.astype(np.float16))
    table = colormap("viridis")
    idx = np.rint(values.astype(np.float16).astype(np.float32) * 255).astype(int)
    for y, x in [(0, 0), (7, 9), (15, 15)]:
        assert _pixel(buf, x, y)[:3] == tuple(int(v) for v in table[idx[y, x]])


def test_scalar_and_boolean_images() -> None:
    buf = scalar_image(np.array([[0.0, 1.0]], np.float32), "magma")
    assert _pixel(buf, 0, 0)[:3] == tuple(int(v) for v in colormap("magma")[0])
    marks = boolean_image(np.array([[True, False]]), (255, 0, 0))
    assert _pixel(marks, 0, 0) == (255, 0, 0, 255)
    assert _pixel(marks, 1, 0)[3] == 0


@pytest.mark.parametrize("name", COLORMAPS)
def test_colormaps_are_256_entries(name: str) -> None:
    assert colormap(name).shape == (256, 3)
    assert argb_table(name).dtype == np.uint32
