"""Rendering of masks, overlays and heatmaps (core.outputs.render)."""

from __future__ import annotations

import numpy as np

from core.outputs.colormaps import colormap
from core.outputs.render import heatmap, mask_palette, overlay, to_index

COLORS = [(10, 20, 30), (200, 0, 0), (0, 200, 0)]


def test_rendering_helpers() -> None:
    pal = mask_palette(COLORS)
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    assert tuple(pal[1]) == COLORS[1] and tuple(pal[3]) == (0, 0, 0)
    assert tuple(pal[255]) == (224, 224, 192)
    img = np.full((2, 2, 3), 100, np.uint8)
    blended = overlay(img, np.array([[1, 0], [2, 2]], np.uint8), COLORS)
    assert tuple(blended[0, 0]) == (150, 50, 50)
    hm = heatmap(np.array([[0.0, 1.0]], np.float16))
    assert hm.shape == (1, 2, 3) and hm.dtype == np.uint8
    assert tuple(hm[0, 0]) != tuple(hm[0, 1])


def test_overlay_leaves_void_and_hidden_classes_clear() -> None:
    image = np.full((4, 6, 3), 100, np.uint8)
    labels = np.zeros((4, 6), np.uint8)
    labels[0, 0] = 1
    labels[3, 5] = 255
    out = overlay(image, labels, [(0, 0, 0), (200, 0, 0)], 0.5, hidden=[0])
    assert tuple(out[0, 0]) == (150, 50, 50)
    assert tuple(out[1, 1]) == (100, 100, 100)
    assert tuple(out[3, 5]) == (100, 100, 100)


def test_heatmap_colors_through_the_colormap_and_blends() -> None:
    heat = heatmap(np.zeros((4, 6), np.float16), "viridis")
    assert tuple(heat[0, 0]) == tuple(int(v) for v in colormap("viridis")[0])
    under = np.zeros((4, 6, 3), np.uint8)
    half = heatmap(np.ones((4, 6), np.float32), "viridis", under, 0.5)
    top = colormap("viridis")[255].astype(np.float32)
    np.testing.assert_array_equal(half[0, 0], np.floor(top * 0.5 + 0.5).astype(np.uint8))


def test_to_index_rounds_and_clips() -> None:
    for dtype in (np.float16, np.float32):
        f = np.array([[0.0, 0.5, 1.0, 2.0, np.nan, 0.2]], dtype)
        expected = [0, 128, 255, 255, 0, round(float(np.float32(f[0, 5])) * 255)]
        np.testing.assert_array_equal(to_index(f)[0], expected)
    rng = np.random.default_rng(0)
    p = rng.random((64, 64), dtype=np.float32).astype(np.float16)
    np.testing.assert_array_equal(to_index(p), np.rint(p.astype(np.float32) * 255))
    wide = to_index(np.array([[-1.0, 1.0, 3.0]]), -1.0, 3.0)
    np.testing.assert_array_equal(wide, [[0, 128, 255]])
