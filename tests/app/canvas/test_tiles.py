"""Tiled drawing: levels of detail, what a zoomed-out view draws, brush strokes on big masks,
the tile cache's budget, heatmap tiles against the prediction's on-demand maps."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF
from pytestqt.qtbot import QtBot

from app.canvas import layers as layers_module
from app.canvas.canvas import ImageCanvas
from app.canvas.layers import Z_EDIT, ArrayImageItem
from app.canvas.sources import LabelSource, RGBSource, area_downsample
from app.canvas.tiles import TILE, TileCache, level_for, tile_cache
from app.common.render import color_lut, qimage_to_rgb
from app.features.editing.mask_layer import MaskLayerItem, label_lut

COLORS = [(0, 0, 0), (200, 30, 30), (30, 200, 30), (30, 30, 200)]


def smooth_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """An RGB image with structure at every scale (noise upscaled from several sizes)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w, 3), np.float32)
    for cells in (8, 64, 512):
        small = rng.random((max(2, h // cells), max(2, w // cells), 3)).astype(np.float32)
        out += cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return (out / 3 * 255).clip(0, 255).astype(np.uint8)


def blobs(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Labels 0..3 in blobs."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 4, (h // 64 + 1, w // 64 + 1), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


@pytest.fixture
def fresh_cache() -> Iterator[TileCache]:
    cache = tile_cache()
    cache.clear()
    yield cache
    cache.clear()


def canvas_with(qtbot: QtBot, size: tuple[int, int] = (800, 600)) -> ImageCanvas:
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(*size)
    canvas.show()
    qtbot.waitExposed(canvas)
    return canvas


def test_level_for_zoom() -> None:
    assert level_for(4.0, 5) == 0 and level_for(1.0, 5) == 0 and level_for(0.51, 5) == 0
    assert level_for(0.5, 5) == 1 and level_for(0.26, 5) == 1 and level_for(0.25, 5) == 2
    assert level_for(0.1, 5) == 3 and level_for(1 / 1000, 5) == 5


def test_tiles_of_every_level_are_the_sampled_image(fresh_cache: TileCache) -> None:
    rgb = smooth_photo(2600, 3100)
    src = RGBSource(rgb)
    assert src.max_level == 3 and src.base == 1
    for level in range(src.max_level + 1):
        s = 1 << level
        corners = (*src.tiles_in(level, (0, 0, 600, 10)),
                   *src.tiles_in(level, (3000, 2500, 3100, 2600)))
        for tx, ty in corners:
            x0, y0, x1, y1 = src.tile_rect(level, tx, ty)
            tile = src.tile(level, tx, ty)
            got = qimage_to_rgb(tile.image)
            assert got.shape[:2] == (-(-(y1 - y0) // s), -(-(x1 - x0) // s))
            h, w = got.shape[:2]
            want = cv2.resize(rgb[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_AREA)
            # the area average (kept levels are halved level by level: within rounding, a
            # little more at the image's ragged edge)
            diff = np.abs(got.astype(int) - want.astype(int))
            assert diff.mean() < 0.75 and diff.max() <= 8, (level, tx, ty)
    labels = blobs(2600, 3100)
    lab = LabelSource(labels, color_lut(COLORS))
    tile = lab.tile(2, 1, 0)
    x0, y0, x1, y1 = lab.tile_rect(2, 1, 0)
    assert np.array_equal(tile.array, color_lut(COLORS)[labels[y0:y1:4, x0:x1:4]])


def test_a_zoomed_out_view_draws_its_level(qtbot: QtBot, fresh_cache: TileCache) -> None:
    rgb = smooth_photo(3000, 4000)
    canvas = canvas_with(qtbot)
    src = RGBSource(rgb)
    canvas.set_image(src)
    canvas.set_zoom(0.25)
    canvas.centerOn(QPointF(1900.0, 1500.0))
    canvas.settle()
    item = canvas.image_layer
    assert not item.pending
    levels = {key[1] for key in fresh_cache.keys_of(src.uid)}
    assert levels == {2}  # only the zoom's level was built, only its visible tiles
    visible = canvas.visible_rect()
    assert visible is not None
    assert len(fresh_cache.keys_of(src.uid)) == len(list(src.tiles_in(2, visible)))
    # what the viewport shows is the 4x area average of the image (one screen pixel each)
    shot = qimage_to_rgb(canvas.viewport().grab().toImage())
    x, y = 1600, 1200  # an image point on the grid of the level, in view
    pos = canvas.mapFromScene(QPointF(x, y))
    want = area_downsample(rgb[y:y + 4 * 64, x:x + 4 * 64], 4)
    got = shot[pos.y():pos.y() + 64, pos.x():pos.x() + 64]
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 2


def test_paint_builds_within_its_budget_then_between_frames(
    qtbot: QtBot, fresh_cache: TileCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layers_module, "PAINT_BUDGET", 0.0)
    canvas = canvas_with(qtbot)
    src = LabelSource(blobs(3000, 3000), color_lut(COLORS))
    canvas.set_overlay(src)
    canvas.set_image(RGBSource(smooth_photo(3000, 3000)))
    canvas.set_zoom(1.0)
    canvas.viewport().grab()  # a paint (offscreen windows are not exposed: no repaint())
    assert canvas.pending and not fresh_cache.keys_of(src.uid)  # none built within it
    qtbot.waitUntil(lambda: not canvas.pending, timeout=10000)  # the builder did it
    assert fresh_cache.keys_of(src.uid)


def test_a_brush_stroke_recolors_only_its_tiles(qtbot: QtBot, fresh_cache: TileCache) -> None:
    labels = np.zeros((4096, 4096), np.uint8)
    canvas = canvas_with(qtbot)
    layer = MaskLayerItem()
    canvas.add_layer("mask", layer, Z_EDIT)
    layer.set_colors(COLORS)
    layer.set_labels(labels)
    canvas.set_image(RGBSource(smooth_photo(4096, 4096)))
    for zoom in (0.5, 1.0):  # tiles of levels 1 and 0 around the stroke
        canvas.set_zoom(zoom)
        canvas.centerOn(QPointF(1000.0, 1000.0))
        canvas.settle()
    src = layer.source
    assert isinstance(src, LabelSource)
    before = {k: fresh_cache.peek(k) for k in fresh_cache.keys_of(src.uid)}
    copies = {k: t.array.copy() for k, t in before.items()}
    assert len(before) >= 4
    misses = fresh_cache.misses
    # a stroke inside one tile of each level: (700..740) x (750..770)
    labels[750:770, 700:740] = 2
    layer.recolor((700, 750, 740, 770))
    lut = label_lut(COLORS)
    touched = set()
    for key, tile in before.items():
        assert fresh_cache.peek(key) is tile  # updated in place, not dropped or rebuilt
        _, level, tx, ty = key
        x0, y0, x1, y1 = src.tile_rect(level, tx, ty)
        s = 1 << level
        assert np.array_equal(tile.array, lut[labels[y0:y1:s, x0:x1:s]])
        if not np.array_equal(tile.array, copies[key]):
            touched.add((level, tx, ty))
    assert touched == {(0, 1, 1), (1, 0, 0)}  # its tile of each level; the others as they were
    assert len(before) == 8
    canvas.viewport().grab()
    assert fresh_cache.misses == misses  # the repaint built nothing
    shot = qimage_to_rgb(canvas.viewport().grab().toImage())
    pos = canvas.mapFromScene(QPointF(720.5, 760.5))
    assert tuple(shot[pos.y(), pos.x()]) == COLORS[2]


def test_the_tile_cache_stays_within_its_budget(qtbot: QtBot) -> None:
    cache = TileCache(8 * TILE * TILE * 4)  # eight 512² ARGB tiles
    labels = blobs(4096, 4096)
    src = LabelSource(labels, color_lut(COLORS))
    src.cache = cache
    canvas = canvas_with(qtbot)
    canvas.set_overlay(src)
    canvas.set_image(RGBSource(smooth_photo(4096, 4096)))
    canvas.set_zoom(1.0)
    for x in range(400, 4096, 300):  # pan across the image
        canvas.centerOn(QPointF(float(x), float(x)))
        canvas.settle()
        assert cache.nbytes <= cache.max_bytes
    assert cache.evictions > 0 and len(cache) <= 8


def test_an_item_keeps_the_buffer_api(qtbot: QtBot, fresh_cache: TileCache) -> None:
    from app.common.render import label_image

    labels = blobs(300, 400)
    item = ArrayImageItem("overlay")
    item.set_source(LabelSource(labels, color_lut(COLORS, {0})))
    want = label_image(labels, COLORS, {0})
    assert np.array_equal(qimage_to_rgb(item.buffer.image), qimage_to_rgb(want.image))
    assert item.buffer is item.buffer  # memoized
    item.set_buffer(want)
    assert item.buffer is want
    assert item.boundingRect() == QRectF(0, 0, 400, 300)
    item.clear()
    assert item.buffer is None and item.boundingRect().isEmpty()


def test_heatmap_tiles_are_the_predictions_maps(fresh_cache: TileCache) -> None:
    import torch

    from app.canvas.heat_source import HeatmapSource
    from app.common.colormaps import argb_table
    from core.inference.results import Region
    from core.inference.tiling import from_fused
    from core.models.upsampling import RegionUpsampler, bilinear_1d
    from core.outputs.render import to_index

    torch.manual_seed(0)
    size = 1100
    fused = torch.randn(5, size // 8 + 8, size // 8 + 8) * 3
    up = RegionUpsampler(8, 31, bilinear_1d(16))
    pred = from_fused({"8s": fused}, {"8s": up}, (size, size))
    out = pred["8s"]
    table = argb_table("viridis")
    for cls in (2, None):
        src = HeatmapSource(out, cls, table, (size, size))
        for level, tx, ty in ((0, 1, 2), (1, 1, 0), (2, 0, 0)):
            x0, y0, x1, y1 = src.tile_rect(level, tx, ty)
            region, step = Region(y0, x0, y1, x1), 1 << level
            values = out.entropy(region, step) if cls is None else out.probability(
                cls, region, step)
            want = table[to_index(values)]
            got = src.tile(level, tx, ty).array
            assert got.shape == want.shape
            # the cached normalizer path agrees with the direct softmax to a color step
            assert (got != want).mean() < 0.01
