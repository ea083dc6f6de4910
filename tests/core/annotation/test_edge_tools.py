"""Edge-aware tools: superpixel brush and fill, magic wand, polygon snap to edges."""

from __future__ import annotations

import numpy as np
import pytest

from core.annotation.edge_tools import (
    Superpixels,
    magic_wand,
    snap_polygon,
    superpixel_brush,
    superpixel_fill,
)
from core.annotation.labels import LabelImage
from core.annotation.tools import brush_stroke, polygon_fill
from core.errors import ArgumentError


def _two_halves(seed: int = 0) -> np.ndarray:
    """Textured red on the left of column 53, textured blue on the right."""
    rng = np.random.default_rng(seed)
    img = np.zeros((90, 120, 3), np.uint8)
    img[:, :53] = (200, 40, 40)
    img[:, 53:] = (40, 60, 190)
    noise = rng.integers(-8, 9, img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def halves() -> tuple[np.ndarray, Superpixels]:
    img = _two_halves()
    return img, Superpixels(img, size=12)


def test_superpixels_follow_the_colour_edge(halves) -> None:
    _, sp = halves
    assert sp.labels.shape == (90, 120) and sp.count > 20
    for k in range(sp.count):  # no superpixel straddles the boundary between columns 52/53
        cols = np.flatnonzero((sp.labels == k).any(axis=0))
        assert cols[-1] < 53 or cols[0] >= 53
    x0, y0, x1, y1 = sp.boxes[sp.at((10, 10))]
    assert x0 <= 10 < x1 and y0 <= 10 < y1


def test_superpixel_brush_paints_whole_superpixels_on_its_side(halves) -> None:
    _, sp = halves
    stroke = [(48, 20), (48, 60)]  # 5 px left of the edge, radius 3: never reaches it
    region = superpixel_brush(sp, stroke, 3)
    full = region.to_full(sp.shape)
    assert not full[:, 53:].any()
    plain = brush_stroke(stroke, 3, sp.shape).to_full(sp.shape)
    assert (full & plain).sum() == plain.sum() and full.sum() > 2 * plain.sum()
    ids = np.unique(sp.labels[full])
    np.testing.assert_array_equal(full, np.isin(sp.labels, ids))  # whole superpixels
    strict = superpixel_brush(sp, stroke, 3, min_cover=0.5).to_full(sp.shape)
    assert strict.sum() < full.sum() and not (strict & ~full).any()


def test_superpixel_fill_grows_over_similar_neighbours(halves) -> None:
    _, sp = halves
    one = superpixel_fill(sp, (20, 40)).to_full(sp.shape)
    np.testing.assert_array_equal(one, sp.labels == sp.labels[40, 20])
    grown = superpixel_fill(sp, (20, 40), tolerance=10).to_full(sp.shape)
    assert grown[:, :53].mean() > 0.99 and not grown[:, 53:].any()


def test_magic_wand_grows_by_colour_tolerance() -> None:
    img = _two_halves(1)
    img[30:50, 80:100] = (200, 40, 40)  # a red island inside the blue half
    left = magic_wand(img, (10, 10), 20).to_full(img.shape[:2])
    truth = np.zeros(img.shape[:2], bool)
    truth[:, :53] = True
    assert _iou(left, truth) > 0.99
    both = magic_wand(img, (10, 10), 20, contiguous=False).to_full(img.shape[:2])
    assert both[30:50, 80:100].mean() > 0.95 and not left[30:50, 80:100].any()
    tiny = magic_wand(img, (10, 10), 0).to_full(img.shape[:2])
    assert tiny[10, 10] and tiny.sum() < 200
    with pytest.raises(ArgumentError):
        magic_wand(img, (500, 10))


def test_snap_moves_a_rough_polygon_onto_the_object() -> None:
    img = np.full((120, 160, 3), 210, np.uint8)
    img[30:90, 40:121] = (60, 90, 50)  # rows 30..89, columns 40..120
    truth = np.zeros((120, 160), bool)
    truth[30:90, 40:121] = True
    rough = np.array([(36, 27), (124, 33), (117, 93), (43, 86)], float)
    snapped = snap_polygon(img, rough, radius=7)
    before = polygon_fill(rough, truth.shape).to_full(truth.shape)
    after = polygon_fill(snapped, truth.shape).to_full(truth.shape)
    assert _iou(after, truth) > 0.97 > _iou(before, truth)
    corners = snap_polygon(img, rough, radius=7, follow_edges=False)
    expected = np.array([(39.5, 29.5), (120.5, 29.5), (120.5, 89.5), (39.5, 89.5)])
    assert np.abs(corners - expected).max() <= 1.0


def test_snap_keeps_points_where_there_is_no_edge() -> None:
    flat = np.full((50, 50, 3), 128, np.uint8)
    pts = np.array([(10.0, 10.0), (40.0, 12.0), (25.0, 40.0)])
    np.testing.assert_allclose(snap_polygon(flat, pts, follow_edges=False), pts)


def test_a_region_is_one_undoable_edit(halves) -> None:
    _, sp = halves
    labels = LabelImage.blank(90, 120)
    edit = labels.paint(superpixel_brush(sp, [(20, 20)], 2), 3, label="superpixels")
    assert edit is not None and (labels.array == 3).sum() == edit.count
    labels.undo(edit)
    assert not labels.array.any()
