"""Tests of the procedural scene generator and the scene dataset writer."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core.data.palette import VOC_PALETTE, VOID, read_class_names
from core.data.scenes import (
    SCENE_CLASSES,
    generate_scene,
    scene_seed,
    write_scene_dataset,
)

N_CLASSES = len(SCENE_CLASSES)
WIRE = SCENE_CLASSES.index("wire")
DOT = SCENE_CLASSES.index("dot")


@pytest.fixture(scope="module")
def scenes() -> list[tuple[np.ndarray, np.ndarray]]:
    """Twenty default scenes."""
    return [generate_scene(s) for s in range(20)]


def test_class_list() -> None:
    assert SCENE_CLASSES[0] == "background"
    assert 6 <= N_CLASSES <= 7
    assert len(set(SCENE_CLASSES)) == N_CLASSES


def test_deterministic() -> None:
    a_rgb, a_mask = generate_scene(123)
    b_rgb, b_mask = generate_scene(123)
    np.testing.assert_array_equal(a_rgb, b_rgb)
    np.testing.assert_array_equal(a_mask, b_mask)
    c_rgb, c_mask = generate_scene(124)
    assert not np.array_equal(a_rgb, c_rgb)
    assert not np.array_equal(a_mask, c_mask)


def test_no_global_rng_use() -> None:
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    generate_scene(5)
    assert np.random.random() == before


def test_shapes_and_dtypes(scenes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    for rgb, mask in scenes:
        assert rgb.shape == (256, 256, 3) and rgb.dtype == np.uint8
        assert mask.shape == (256, 256) and mask.dtype == np.uint8
        assert mask.max() < N_CLASSES
    rgb, mask = generate_scene(7, (96, 160))
    assert rgb.shape == (96, 160, 3) and mask.shape == (96, 160)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate_scene(0, (16, 16))
    with pytest.raises(ValueError):
        generate_scene(0, domain="mars")
    with pytest.raises(ValueError):
        generate_scene(-1)


def test_all_classes_appear(scenes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    seen = set()
    for _, mask in scenes:
        seen.update(np.unique(mask).tolist())
        fg = np.count_nonzero(mask)
        assert 0 < fg < mask.size
    assert seen == set(range(N_CLASSES))


def test_wires_are_thin(scenes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    total = kept = 0
    kernel = np.ones((9, 9), np.uint8)
    for _, mask in scenes:
        wire = (mask == WIRE).astype(np.uint8)
        total += int(wire.sum())
        kept += int(cv2.erode(wire, kernel).sum())
    assert total > 1000
    assert kept < 0.05 * total


def test_small_objects_present(scenes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    widths = []
    for _, mask in scenes:
        _, _, stats, _ = cv2.connectedComponentsWithStats((mask == DOT).astype(np.uint8))
        widths += stats[1:, cv2.CC_STAT_WIDTH].tolist()
    assert len(widths) >= 20
    assert np.median(widths) <= 20
    assert sum(w <= 16 for w in widths) >= 10


def test_mask_matches_image(scenes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Occlusion keeps image and mask consistent: each class shows its colour family."""
    hue_centres = {"disc": 2, "wire": 28, "triangle": 60, "ring": 90, "box": 113, "dot": 150}
    for rgb, mask in scenes:
        inner = cv2.erode(mask, np.ones((3, 3), np.uint8)) == mask  # away from borders
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL).astype(np.float64) * (180 / 256)
        for name, centre in hue_centres.items():
            sel = (mask == SCENE_CLASSES.index(name)) & inner & (hsv[..., 1] > 60)
            if sel.sum() < 30:
                continue
            diff = np.abs((hsv[..., 0][sel] - centre + 90) % 180 - 90)
            assert np.median(diff) < 12, name


def test_occlusion_happens() -> None:
    """Later objects paint over earlier ones, so some object regions are cut by others."""
    touching = 0
    for s in range(20):
        _, mask = generate_scene(s)
        grown = cv2.dilate(mask, np.ones((3, 3), np.uint8))
        touching += int(np.count_nonzero((grown != mask) & (mask != 0)))
    assert touching > 0


def test_void_border() -> None:
    _, plain = generate_scene(3)
    _, void = generate_scene(3, void_border=True)
    band = void == VOID
    assert band.any()
    np.testing.assert_array_equal(void[~band], plain[~band])
    assert np.all(plain[band] != 0)


def test_shifted_domain_differs() -> None:
    default = np.stack([generate_scene(s)[0] for s in range(10)]).astype(np.float64)
    shifted = np.stack([generate_scene(s, domain="shifted")[0] for s in range(10)])
    shifted = shifted.astype(np.float64)
    d_means, s_means = default.mean(axis=(0, 1, 2)), shifted.mean(axis=(0, 1, 2))
    # A warm colour cast: red rises relative to blue.
    assert (s_means[0] - s_means[2]) - (d_means[0] - d_means[2]) > 20

    # Stronger noise: larger high-frequency residual.
    def residual(x: np.ndarray) -> float:
        return float(np.abs(np.diff(x, axis=2)).mean())

    assert residual(shifted) > 1.5 * residual(default)
    # Same seed, same layout.
    np.testing.assert_array_equal(generate_scene(4)[1], generate_scene(4, domain="shifted")[1])


def test_scene_seed_distinct() -> None:
    a = {scene_seed(1, i) for i in range(100)}
    b = {scene_seed(2, i) for i in range(100)}
    assert len(a) == 100 and not a & b
    assert scene_seed(1, 5) == scene_seed(1, 5)


def test_write_scene_dataset(tmp_path: Path) -> None:
    root = tmp_path / "données"
    calls: list[tuple[int, int]] = []
    out = write_scene_dataset(
        root, 10, seed=9, size=(64, 96), progress=lambda d, t: calls.append((d, t))
    )
    assert out == root
    assert calls[-1] == (10, 10) and len(calls) == 10
    assert read_class_names(root / "class_names.txt") == list(SCENE_CLASSES)

    sets = root / "ImageSets" / "Segmentation"
    train = (sets / "train.txt").read_text(encoding="utf-8").split()
    val = (sets / "val.txt").read_text(encoding="utf-8").split()
    trainval = (sets / "trainval.txt").read_text(encoding="utf-8").split()
    ids = [f"scene_9_{i:05d}" for i in range(10)]
    assert len(val) == 2 and not set(train) & set(val)
    assert sorted(train + val) == sorted(trainval) == ids

    for i, sid in enumerate(ids):
        rgb, mask = generate_scene(scene_seed(9, i), (64, 96))
        with Image.open(root / "SegmentationClass" / f"{sid}.png") as im:
            assert im.mode == "P"
            pal = np.array(im.getpalette()[: 3 * N_CLASSES], np.uint8).reshape(-1, 3)
            np.testing.assert_array_equal(pal, VOC_PALETTE[:N_CLASSES])
            np.testing.assert_array_equal(np.array(im), mask)
        jpg = cv2.imdecode(np.fromfile(root / "JPEGImages" / f"{sid}.jpg", np.uint8), 1)
        assert jpg.shape == rgb.shape
        assert np.abs(jpg[..., ::-1].astype(int) - rgb).mean() < 6
    assert not list(root.rglob(".*tmp*"))


def test_write_png_images(tmp_path: Path) -> None:
    write_scene_dataset(tmp_path, 2, seed=1, size=(48, 48), image_ext=".png", domain="shifted")
    rgb, _ = generate_scene(scene_seed(1, 0), (48, 48), domain="shifted")
    png = cv2.imread(str(tmp_path / "JPEGImages" / "scene_1_00000.png"))
    np.testing.assert_array_equal(png[..., ::-1], rgb)
    with pytest.raises(ValueError):
        write_scene_dataset(tmp_path, 0, seed=1)
    with pytest.raises(ValueError):
        write_scene_dataset(tmp_path, 2, seed=1, image_ext=".gif")
    with pytest.raises(ValueError):
        write_scene_dataset(tmp_path, 2, seed=-1)


def test_generation_is_fast() -> None:
    import time

    start = time.perf_counter()
    for s in range(20):
        generate_scene(s)
    assert (time.perf_counter() - start) / 20 < 0.1  # budget is 30 ms; leave slack for CI
