"""Label editing: brush footprints, fill/polygon/eyedropper, undo/redo, memory and speed."""

from __future__ import annotations

import itertools
import time

import cv2
import numpy as np
import pytest

from core.annotation import (
    BBox,
    LabelImage,
    Region,
    brush_stroke,
    disk,
    eyedropper,
    flood_fill,
    lasso,
    polygon_fill,
)
from core.errors import MaskError


def distance_reference(points: np.ndarray, radius: float, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies within ``radius`` of the polyline (brute force)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    p = np.stack([xx, yy], -1)
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    segs = list(itertools.pairwise(pts)) if len(pts) > 1 else [(pts[0], pts[0])]
    best = np.full(shape, np.inf)
    for a, b in segs:
        d = b - a
        length2 = float(d @ d)
        t = np.zeros(shape) if length2 == 0 else np.clip(((p - a) @ d) / length2, 0, 1)
        best = np.minimum(best, np.linalg.norm(p - (a + t[..., None] * d), axis=-1))
    return best <= radius + 1e-6


def full(region: Region, shape: tuple[int, int]) -> np.ndarray:
    return region.to_full(shape) if not region.bbox.empty else np.zeros(shape, bool)


# ---------------------------------------------------------------------------- tools


def test_brush_stroke_sets_exactly_the_pixels_within_the_radius() -> None:
    rng = np.random.default_rng(0)
    shape = (40, 52)
    for i in range(120):
        pts = rng.uniform(-6, 58, (int(rng.integers(1, 5)), 2))
        if i % 3 == 0:
            pts = np.round(pts)  # ties at exactly the radius are common on the grid
        elif i % 3 == 1:
            pts = np.round(pts * 2) / 2
        radius = float(rng.choice([0, 0.5, 1, 2, 3, 4.5, 7, 10.25]))
        got = full(brush_stroke(pts, radius, shape), shape)
        np.testing.assert_array_equal(got, distance_reference(pts, radius, shape),
                                      err_msg=f"case {i}: {pts.tolist()} r={radius}")


def test_brush_footprint_bbox_is_tight_and_disk_is_round() -> None:
    region = brush_stroke([(10, 10)], 3, (50, 50))
    assert region.bbox == BBox(7, 7, 14, 14)
    assert region.mask[0].tolist() == [False, False, False, True, False, False, False]
    np.testing.assert_array_equal(disk(3), region.mask)
    assert brush_stroke([(-50, -50)], 3, (50, 50)).bbox.empty
    assert brush_stroke([], 3, (50, 50)).count == 0


def test_a_fast_stroke_between_two_far_points_leaves_no_gap() -> None:
    shape = (4096, 4096)
    a, b = (3.0, 5.0), (4090.0, 3001.0)
    region = brush_stroke([a, b], 2, shape)
    mask = region.to_full(shape)
    t = np.linspace(0, 1, 20000)
    xs = np.rint(a[0] + t * (b[0] - a[0])).astype(int)
    ys = np.rint(a[1] + t * (b[1] - a[1])).astype(int)
    assert mask[ys, xs].all()
    n, _ = cv2.connectedComponents(region.mask.astype(np.uint8), connectivity=4)
    assert n == 2  # background + one stroke


def test_flood_fill_follows_connectivity() -> None:
    mask = np.zeros((6, 6), np.uint8)
    mask[1, 1] = mask[2, 2] = mask[3, 3] = 4  # a diagonal chain
    mask[5, 0] = 4
    r4 = flood_fill(mask, (1, 1), connectivity=4)
    assert r4.bbox == BBox(1, 1, 2, 2) and r4.count == 1
    r8 = flood_fill(mask, (1, 1), connectivity=8)
    assert r8.bbox == BBox(1, 1, 4, 4) and r8.count == 3
    bg = flood_fill(mask, (0, 0))
    assert bg.count == 36 - 4 and bg.bbox == BBox(0, 0, 6, 6)
    with pytest.raises(ValueError, match="outside"):
        flood_fill(mask, (6, 0))


def test_polygon_fill_includes_edges_and_is_translation_exact() -> None:
    region = polygon_fill([(2, 3), (6, 3), (6, 5), (2, 5)], (10, 10))
    expected = np.zeros((10, 10), bool)
    expected[3:6, 2:7] = True
    np.testing.assert_array_equal(full(region, (10, 10)), expected)
    assert polygon_fill([(1, 1), (5, 5)], (10, 10)).count == 0
    rng = np.random.default_rng(1)
    for _ in range(30):
        pts = rng.uniform(0, 30, (int(rng.integers(3, 8)), 2))
        a = full(polygon_fill(pts, (80, 80)), (80, 80))
        b = full(polygon_fill(pts + np.array([37, 21]), (80, 80)), (80, 80))
        np.testing.assert_array_equal(np.roll(a, (21, 37), axis=(0, 1)), b)
    # the lasso fills a freehand (here: dense circular) path
    theta = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    ring = np.stack([20 + 8 * np.cos(theta), 20 + 8 * np.sin(theta)], 1)
    m = full(lasso(ring, (40, 40)), (40, 40))
    assert m[20, 20] and m[20, 27] and not m[20, 30] and abs(m.sum() - np.pi * 8.5**2) < 25


def test_eyedropper_reads_the_label_under_the_point() -> None:
    mask = np.zeros((4, 5), np.uint8)
    mask[2, 3] = 7
    assert eyedropper(mask, (3, 2)) == 7
    assert eyedropper(mask, (3.4, 1.6)) == 7
    assert eyedropper(mask, (0, 0)) == 0
    with pytest.raises(ValueError):
        eyedropper(mask, (5, 0))
    assert LabelImage(mask).pick(3, 2) == 7


# ---------------------------------------------------------------------------- editing


def test_paint_notifies_only_the_dirty_rectangle_and_tracks_revision() -> None:
    img = LabelImage.blank(100, 120, num_classes=4)
    seen: list[BBox] = []
    img.on_change.append(seen.append)
    assert not img.dirty
    edit = img.paint(brush_stroke([(50, 40)], 5, img.shape), 2, label="brush")
    assert edit is not None and seen == [edit.bbox] == [BBox(45, 35, 56, 46)]
    assert img.dirty and img.revision == 1
    img.mark_saved()
    assert not img.dirty
    assert img.paint(brush_stroke([(50, 40)], 5, img.shape), 2) is None  # no change, no edit
    assert img.revision == 1 and len(seen) == 1
    assert img.corrected().sum() == edit.count
    with pytest.raises(MaskError, match=r"labels are 0\.\.3 and 255"):
        img.paint(brush_stroke([(5, 5)], 1, img.shape), 4)
    img.paint(brush_stroke([(5, 5)], 1, img.shape), 255)  # void is always allowed


def test_preserve_label_paints_only_over_one_class() -> None:
    base = np.zeros((30, 30), np.uint8)
    base[:, 15:] = 1
    img = LabelImage(base, num_classes=3)
    img.preserve_label = 1
    edit = img.paint(brush_stroke([(15, 15)], 8, img.shape), 2)
    assert edit is not None
    a = img.array
    assert (a[:, :15] == 0).all()
    assert set(np.unique(a[:, 15:]).tolist()) == {1, 2}
    stroke = img.begin_stroke(0, preserve_label=None)  # an explicit override
    stroke.add(brush_stroke([(3, 3)], 1, img.shape))
    dot = brush_stroke([(20, 20)], 1, img.shape)
    stroke.add(dot)
    assert (img.array[dot.bbox.slices][dot.mask] == 0).all()
    assert stroke.finish() is not None


def _random_op(img: LabelImage, rng: np.random.Generator, k: int):
    h, w = img.shape
    kind = k % 6
    value = int(rng.choice([0, 1, 2, 3, 4, 255]))
    preserve = int(rng.integers(0, 5)) if rng.random() < 0.3 else None
    img.preserve_label = preserve
    if kind == 0:  # a multi-segment brush stroke
        stroke = img.begin_stroke(value)
        pts = rng.uniform(-10, max(h, w) + 10, (int(rng.integers(2, 7)), 2))
        radius = float(rng.uniform(0, 9))
        for a, b in itertools.pairwise(pts):
            stroke.add(brush_stroke([a, b], radius, img.shape))
        return stroke.finish()
    if kind == 1:
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        return img.paint(flood_fill(img.array, (x, y), int(rng.choice([4, 8]))), value,
                         label="fill")
    if kind == 2:
        return img.paint(polygon_fill(rng.uniform(-5, w + 5, (5, 2)), img.shape), value)
    if kind == 3:  # eraser to background
        return img.paint(brush_stroke(rng.uniform(0, w, (3, 2)), 6, img.shape), 0)
    if kind == 4:  # eraser to void
        return img.paint(brush_stroke(rng.uniform(0, w, (2, 2)), 4, img.shape), 255)
    return img.replace(np.where(rng.random((h, w)) < 0.02, value, img.array).astype(np.uint8))


def test_undo_redo_restore_byte_for_byte_after_50_random_operations() -> None:
    rng = np.random.default_rng(42)
    img = LabelImage(rng.integers(0, 5, (70, 90)).astype(np.uint8), num_classes=5)
    edits = []  # the records the app's QUndoCommands hold
    states = [img.array.copy()]
    for k in range(50):
        before = img.array.copy()
        edit = _random_op(img, rng, k)
        after = img.array
        changed = before != after
        if edit is None:
            assert not changed.any()
            continue
        assert edit.count == int(changed.sum())
        inside = np.zeros_like(changed)
        inside[edit.bbox.slices] = edit.footprint()
        np.testing.assert_array_equal(inside, changed)
        edits.append(edit)
        states.append(after.copy())
    assert len(edits) == len(states) - 1 >= 40
    for edit, state in zip(reversed(edits), reversed(states[:-1]), strict=True):
        img.undo(edit)
        assert img.array.tobytes() == state.tobytes()
    for edit, state in zip(edits, states[1:], strict=True):
        img.redo(edit)
        assert img.array.tobytes() == state.tobytes()


def test_a_stroke_is_one_edit_and_cancel_reverts_it() -> None:
    img = LabelImage.blank(64, 64)
    stroke = img.begin_stroke(3)
    for x in range(5, 60, 3):  # overlapping segments: first-touch old values are kept
        stroke.add(brush_stroke([(x, 20), (x + 3, 22)], 4, img.shape))
    edit = stroke.finish()
    assert edit is not None and edit.count == int((img.array == 3).sum())
    img.undo(edit)
    assert not img.array.any()
    img.redo(edit)
    stroke2 = img.begin_stroke(1)
    stroke2.add(brush_stroke([(30, 40)], 6, img.shape))
    snapshot_painted = img.array.copy()
    stroke2.cancel()
    assert (snapshot_painted == 1).any() and not (img.array == 1).any()
    with pytest.raises(RuntimeError):
        stroke2.add(brush_stroke([(1, 1)], 1, img.shape))


def test_200_strokes_on_4096_squared_keep_the_undo_history_far_under_100_mb(
    record_property,
) -> None:
    rng = np.random.default_rng(7)
    img = LabelImage.blank(4096, 4096, num_classes=21, keep_baseline=False)
    edits = []
    for k in range(200):
        stroke = img.begin_stroke(int(rng.integers(1, 21)))
        p = rng.uniform(0, 4096, 2)
        fast = k % 20 == 0  # now and then a fast sweep across the image
        for _ in range(int(rng.integers(10, 40))):
            q = p + rng.normal(0, 400 if fast else 15, 2)
            stroke.add(brush_stroke([p, q], 10, img.shape))  # brush size ~20 px
            p = q
        edits.append(stroke.finish())
    total = sum(e.nbytes for e in edits)
    record_property("undo_bytes_200_strokes_4096", total)
    print(f"undo history for 200 strokes on 4096x4096: {total / 2**20:.2f} MiB")
    assert len(edits) == 200 and all(e is not None for e in edits)
    assert total < 20 * 2**20  # far under 100 MB


def test_one_brush_segment_on_4096_squared_is_cheap(record_property) -> None:
    img = LabelImage.blank(4096, 4096, keep_baseline=False)
    stroke = img.begin_stroke(5)
    times = []
    p = np.array([2000.0, 2000.0])
    rng = np.random.default_rng(3)
    for _ in range(60):
        q = p + rng.normal(0, 12, 2)
        t0 = time.perf_counter()
        stroke.add(brush_stroke([p, q], 10, img.shape))
        times.append(time.perf_counter() - t0)
        p = q
    t0 = time.perf_counter()
    stroke.finish()
    finish = time.perf_counter() - t0
    median = float(np.median(times))
    record_property("brush_segment_median_ms_4096", round(median * 1e3, 3))
    print(f"brush segment on 4096x4096: median {median * 1e3:.3f} ms, finish {finish * 1e3:.1f} ms")
    assert median < 0.020


def test_edit_is_compact_and_self_contained() -> None:
    img = LabelImage.blank(2048, 2048)
    edit = img.paint(brush_stroke([(100, 100), (1900, 1800)], 10, img.shape), 3)
    assert edit is not None
    assert edit.nbytes < 64 * 1024  # run-length footprint + a single old and new value
    assert edit.old.size == edit.new.size == 1
    other = LabelImage(img.array)  # an edit applies to any image in the same state
    other.undo(edit)
    assert not other.array.any()


def test_replace_and_bad_masks() -> None:
    img = LabelImage(np.zeros((5, 5), np.int64))
    target = np.eye(5, dtype=np.uint8) * 2
    edit = img.replace(target)
    assert edit is not None and edit.count == 5 and (img.array == target).all()
    assert img.replace(target) is None
    with pytest.raises(MaskError):
        img.replace(np.zeros((4, 5), np.uint8))
    with pytest.raises(MaskError):
        LabelImage(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(MaskError):
        LabelImage(np.full((2, 2), 300))


def test_flood_fill_all_pixels_of_a_label() -> None:
    mask = np.zeros((30, 40), np.uint8)
    mask[2:6, 3:9] = 4
    mask[20:25, 30:38] = 4
    region = flood_fill(mask, (5, 3), contiguous=False)
    assert np.array_equal(region.to_full(mask.shape), mask == 4)
    assert tuple(region.bbox) == (3, 2, 38, 25)
    contiguous = flood_fill(mask, (5, 3))
    assert contiguous.to_full(mask.shape).sum() == 24
