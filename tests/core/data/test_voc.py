"""Dataset layouts: writing and reading VOC folders and image/mask folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.data.imageio import read_mask, write_image, write_mask
from core.data.palette import VOC_CLASSES
from core.data.voc import (
    FolderPairs,
    SegmentationDataset,
    VOCLayout,
    open_dataset,
    write_voc_dataset,
)
from core.errors import DatasetError, MaskError

CLASSES = ["background", "square", "disc"]
Item = tuple[str, np.ndarray, np.ndarray]


def _item(i: int, h: int = 10, w: int = 14) -> Item:
    rgb = np.full((h, w, 3), 20 * i, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[2:5, 3:7] = 1 + i % 2
    mask[0, 0] = 255
    return f"img_{i:03d}", rgb, mask


def _write(root: Path, n: int = 4, image_ext: str = ".png") -> list[Item]:
    items = [_item(i) for i in range(n)]
    ids = [i for i, _, _ in items]
    write_voc_dataset(
        root, iter(items), CLASSES, {"train": ids[:-1], "val": ids[-1:]}, image_ext=image_ext
    )
    return items


def test_write_and_open_voc(tmp_path: Path) -> None:
    root = tmp_path / "VOC2012"
    items = _write(root)
    assert (root / "JPEGImages" / "img_000.png").is_file()
    assert (root / "ImageSets" / "Segmentation" / "train.txt").read_text().split() == [
        "img_000", "img_001", "img_002",
    ]
    pairs, names = open_dataset(root, "train")
    assert names == CLASSES
    assert [p[0].name for p in pairs] == ["img_000.png", "img_001.png", "img_002.png"]
    ds = SegmentationDataset(pairs, num_classes=len(names))
    assert len(ds) == 3
    image, mask = ds[1]
    assert image.shape == (10, 14, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, items[1][1])
    np.testing.assert_array_equal(mask, items[1][2])
    val_pairs, _ = open_dataset(root, "val")
    assert [p[1].name for p in val_pairs] == ["img_003.png"]


@pytest.mark.parametrize("given", ["", "VOCdevkit", "VOCdevkit/VOC2012"])
def test_voc_root_detection(tmp_path: Path, given: str) -> None:
    _write(tmp_path / "VOCdevkit" / "VOC2012", image_ext=".jpg")
    layout = VOCLayout(tmp_path / given)
    assert layout.root == tmp_path / "VOCdevkit" / "VOC2012"
    assert layout.splits() == ["train", "val"]
    assert layout.image_path("img_000").name == "img_000.jpg"
    pairs, _ = open_dataset(tmp_path / given, "train")
    assert len(pairs) == 3


def test_voc_without_class_names_uses_voc_classes(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / "class_names.txt").unlink()
    assert open_dataset(tmp_path, "val")[1] == list(VOC_CLASSES)


def test_voc_missing_split(tmp_path: Path) -> None:
    _write(tmp_path)
    with pytest.raises(DatasetError, match=r"no split 'trainval'.*available splits: train, val"):
        open_dataset(tmp_path, "trainval")


def test_voc_missing_files_are_named(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / "SegmentationClass" / "img_001.png").unlink()
    (tmp_path / "JPEGImages" / "img_002.png").unlink()
    with pytest.raises(DatasetError) as err:
        open_dataset(tmp_path, "train")
    msg = str(err.value)
    assert "without a mask" in msg and "img_001" in msg
    assert "without an image" in msg and "img_002" in msg


def test_no_layout(tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DatasetError, match=r"JPEGImages/.*images/ and masks/"):
        open_dataset(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="not a PASCAL VOC folder"):
        VOCLayout(tmp_path)
    with pytest.raises(DatasetError, match="images/ and masks/"):
        FolderPairs(tmp_path)


def test_write_voc_dataset_rejects_bad_input(tmp_path: Path) -> None:
    _, rgb, mask = _item(0)
    with pytest.raises(DatasetError, match="no image and mask"):
        write_voc_dataset(tmp_path, [("a", rgb, mask)], CLASSES, {"train": ["a", "ghost"]})
    with pytest.raises(DatasetError, match="Invalid image id"):
        write_voc_dataset(tmp_path, [("a b", rgb, mask)], CLASSES, {})
    with pytest.raises(DatasetError, match="twice"):
        write_voc_dataset(tmp_path, [("a", rgb, mask), ("a", rgb, mask)], CLASSES, {})
    with pytest.raises(MaskError, match="labels outside"):
        write_voc_dataset(tmp_path, [("c", rgb, mask + 5)], CLASSES, {})
    with pytest.raises(MaskError, match="14x10"):
        write_voc_dataset(tmp_path, [("d", rgb[:5], mask)], CLASSES, {})


def _folder(root: Path, stems: list[str], masked: list[str]) -> None:
    for i, stem in enumerate(stems):
        _, rgb, mask = _item(i)
        write_image(root / "images" / f"{stem}.jpg", rgb)
        if stem in masked:
            write_mask(root / "masks" / f"{stem}.png", mask)


def test_folder_pairs(tmp_path: Path) -> None:
    _folder(tmp_path, ["a", "b", "c"], masked=["a", "c"])
    (tmp_path / "masks" / "orphan.png").write_bytes(b"")  # no image: ignored
    fp = FolderPairs(tmp_path)
    assert [(i.name, m.name if m else None) for i, m in fp.pairs()] == [
        ("a.jpg", "a.png"), ("b.jpg", None), ("c.jpg", "c.png"),
    ]
    pairs, names = open_dataset(tmp_path, "train")
    assert [m.name for _, m in pairs] == ["a.png", "c.png"]
    assert names == list(VOC_CLASSES)
    image, mask = SegmentationDataset(pairs)[1]
    assert image.shape[:2] == mask.shape == (10, 14)


def test_folder_pairs_split_listing_and_class_names(tmp_path: Path) -> None:
    _folder(tmp_path, ["a", "b", "c"], masked=["a", "b", "c"])
    (tmp_path / "val.txt").write_text("c\nb\n")
    (tmp_path / "class_names.txt").write_text("bg\nthing\nother\n")
    pairs, names = open_dataset(tmp_path, "val")
    assert [i.stem for i, _ in pairs] == ["c", "b"]
    assert names == ["bg", "thing", "other"]
    (tmp_path / "val.txt").write_text("c\nzzz\n")
    with pytest.raises(DatasetError, match="zzz"):
        open_dataset(tmp_path, "val")


def test_folder_pairs_split_subfolders(tmp_path: Path) -> None:
    _folder(tmp_path / "train", ["a", "b"], masked=["a", "b"])
    _folder(tmp_path / "val", ["c"], masked=["c"])
    assert [i.stem for i, _ in open_dataset(tmp_path, "train")[0]] == ["a", "b"]
    assert [i.stem for i, _ in open_dataset(tmp_path, "val")[0]] == ["c"]


def test_folder_without_any_mask(tmp_path: Path) -> None:
    _folder(tmp_path, ["a"], masked=[])
    (tmp_path / "masks").mkdir()
    with pytest.raises(DatasetError, match="no image with a mask"):
        open_dataset(tmp_path)


def test_dataset_size_mismatch_names_both_files(tmp_path: Path) -> None:
    _folder(tmp_path, ["a"], masked=[])
    write_mask(tmp_path / "masks" / "a.png", np.zeros((3, 3), np.uint8))
    ds = SegmentationDataset(open_dataset(tmp_path)[0])
    with pytest.raises(MaskError) as err:
        ds[0]
    assert "a.png" in str(err.value) and "a.jpg" in str(err.value)


def test_dataset_transform_and_label_check(tmp_path: Path) -> None:
    _write(tmp_path)
    pairs, _ = open_dataset(tmp_path, "train")
    ds = SegmentationDataset(pairs, transform=lambda im, m: (im.shape, int(m.max())))
    assert ds[0] == ((10, 14, 3), 255)
    write_mask(pairs[0][1], np.full((10, 14), 9, np.uint8))
    with pytest.raises(MaskError, match="9"):
        SegmentationDataset(pairs, num_classes=3)[0]
    assert read_mask(pairs[0][1]).max() == 9
    with pytest.raises(ValueError):
        SegmentationDataset([(pairs[0][0], None)])  # type: ignore[list-item]
