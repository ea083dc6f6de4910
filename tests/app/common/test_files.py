"""Finding images and reference masks in files, folders and dataset layouts."""

from __future__ import annotations

from pathlib import Path

from app.common.files import mask_for, natural_key, scan


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folder_pairs_with_masks_and_class_names(samples: Path) -> None:
    listing = scan([samples])
    assert [e.name for e in listing.entries] == [f"sample_{i:02d}.png" for i in range(3)]
    assert all(e.mask is not None and e.mask.parent.name == "masks" for e in listing.entries)
    assert listing.class_names == ["background", "disc", "box", "wire"]


def test_voc_layout(tmp_path: Path) -> None:
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    _touch(voc / "JPEGImages" / "2007_000032.jpg")
    _touch(voc / "JPEGImages" / "2007_000033.jpg")
    _touch(voc / "SegmentationClass" / "2007_000032.png")
    listing = scan([tmp_path])
    assert [e.image.name for e in listing.entries] == ["2007_000032.jpg", "2007_000033.jpg"]
    assert listing.entries[0].mask is not None and listing.entries[1].mask is None


def test_plain_folder_natural_order_and_single_file(tmp_path: Path) -> None:
    for name in ["img10.png", "img2.jpg", "notes.txt", ".hidden.png", "a.TIF"]:
        _touch(tmp_path / name)
    listing = scan([tmp_path])
    assert [e.name for e in listing.entries] == ["a.TIF", "img2.jpg", "img10.png"]
    assert all(e.mask is None for e in listing.entries)
    assert sorted(["x10", "x9"], key=lambda s: natural_key(Path(s))) == ["x9", "x10"]


def test_single_file_in_dataset_gets_its_mask(samples: Path) -> None:
    image = samples / "images" / "sample_01.png"
    assert mask_for(image) == samples / "masks" / "sample_01.png"
    listing = scan([image, image])
    assert len(listing.entries) == 1 and listing.entries[0].mask is not None


def test_missing_and_empty_paths_are_problems(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    listing = scan([tmp_path / "nope.png", tmp_path / "empty"])
    assert listing.entries == []
    assert len(listing.problems) == 2
    assert "does not exist" in listing.problems[0]
