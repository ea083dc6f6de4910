"""Annotation projects: create/open, atomic autosave, corrections, VOC export."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from core.annotation.project import PROJECT_FILE, Project
from core.data.imageio import read_mask, write_image
from core.data.scenes import SCENE_CLASSES, generate_scene
from core.errors import DatasetError, MaskError, WriteError
from tests.conftest import break_image_writes


@pytest.fixture()
def images(tmp_path: Path) -> list[Path]:
    """Three 48x64 scene images; two share a stem in different folders."""
    out = []
    for i, sub in enumerate(["a", "b", "b"]):
        rgb, _ = generate_scene(i, (48, 64))
        p = tmp_path / "src" / sub / (f"img {i}.png" if i < 2 else "img 0.jpg")
        write_image(p, rgb)
        out.append(p)
    return out


def _mask(seed: int) -> np.ndarray:
    return generate_scene(seed, (48, 64))[1]


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp-" in p.name]


def test_create_open_round_trip_with_referenced_and_copied_images(
    tmp_path: Path, images: list[Path]
) -> None:
    proj = Project.create(tmp_path / "proj", SCENE_CLASSES, images[:2])
    assert proj.ids() == ["img_0", "img_1"]
    assert proj.add_images(images) == ["img_0_2"]  # known images are skipped, stems clash
    assert proj.image_path("img_0") == images[0].resolve()
    copied = Project.create(tmp_path / "copied", SCENE_CLASSES, images[:1], copy_images=True)
    assert copied.image_path("img_0").parent == (tmp_path / "copied" / "JPEGImages").resolve()
    assert copied.image("img_0").copied
    assert (copied.read_image("img_0") == proj.read_image("img_0")).all()

    corrected = np.zeros((48, 64), bool)
    corrected[10:20, 5:30] = True
    assert proj.save_mask("img_1", _mask(1), corrected)
    assert proj.save_mask("img_0", _mask(0))
    again = Project.open(tmp_path / "proj")
    assert again.ids() == proj.ids() and again.class_names == list(SCENE_CLASSES)
    assert (again.load_mask("img_1") == _mask(1)).all()
    assert (again.load_corrections("img_1") == corrected).all()
    assert again.load_corrections("img_0") is None
    assert again.load_mask("img_0_2") is None
    assert again.corrected_ids() == ["img_1"] and again.labeled_ids() == ["img_0", "img_1"]
    meta = json.loads((tmp_path / "proj" / PROJECT_FILE).read_text())
    assert [im["corrected"] for im in meta["images"]] == [False, True, False]
    assert not Path(meta["images"][0]["path"]).is_absolute()  # relative: the tree can move
    assert read_mask(tmp_path / "proj" / "SegmentationClass" / "img_1.png").shape == (48, 64)
    with PIL.Image.open(tmp_path / "proj" / "SegmentationClass" / "img_1.png") as im:
        assert im.mode == "P"
    assert (tmp_path / "proj" / "class_names.txt").read_text().split() == list(SCENE_CLASSES)
    rgb, mask, corr = again.training_items()[0]
    assert rgb.shape == (48, 64, 3) and (mask == _mask(1)).all() and corr is not None
    with pytest.raises(DatasetError, match="already holds a project"):
        Project.create(tmp_path / "proj", SCENE_CLASSES)
    with pytest.raises(DatasetError, match="not an FCN Studio project"):
        Project.open(tmp_path)


def test_corrected_flag_forms(tmp_path: Path, images: list[Path]) -> None:
    proj = Project.create(tmp_path / "p", SCENE_CLASSES, images[:1])
    proj.save_mask("img_0", _mask(0), np.ones((48, 64), bool))
    assert proj.image("img_0").corrected and proj.corrections_path("img_0").is_file()
    proj.save_mask("img_0", _mask(0), True)  # the whole mask is the user's
    assert proj.image("img_0").corrected and not proj.corrections_path("img_0").exists()
    proj.save_mask("img_0", _mask(0), False)
    assert not proj.image("img_0").corrected
    assert not Project.open(tmp_path / "p").image("img_0").corrected


def test_save_mask_is_cheap_when_nothing_changed(tmp_path: Path, images: list[Path]) -> None:
    proj = Project.create(tmp_path / "p", SCENE_CLASSES, images[:1])
    mask = _mask(0)
    assert proj.save_mask("img_0", mask)
    path = proj.mask_path("img_0")
    stamp = path.stat().st_mtime_ns
    os.utime(path, ns=(stamp - 10**9, stamp - 10**9))
    assert not proj.save_mask("img_0", mask.copy())  # same content: nothing written
    assert path.stat().st_mtime_ns == stamp - 10**9
    mask[0, 0] = 3
    assert proj.save_mask("img_0", mask)
    assert read_mask(path)[0, 0] == 3


def test_bad_masks_are_refused(tmp_path: Path, images: list[Path]) -> None:
    proj = Project.create(tmp_path / "p", SCENE_CLASSES, images[:1])
    with pytest.raises(MaskError, match="64x48"):
        proj.save_mask("img_0", np.zeros((40, 64), np.uint8))
    with pytest.raises(MaskError, match="outside"):
        proj.save_mask("img_0", np.full((48, 64), 9, np.uint8))
    with pytest.raises(DatasetError, match="no image 'nope'"):
        proj.save_mask("nope", _mask(0))
    with pytest.raises(DatasetError, match="distinct"):
        Project.create(tmp_path / "q", ["a", "a"])


def test_a_failed_replace_leaves_the_previous_mask_intact(
    tmp_path: Path, images: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = Project.create(tmp_path / "p", SCENE_CLASSES, images[:1])
    proj.save_mask("img_0", _mask(0))
    before = proj.mask_path("img_0").read_bytes()

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(MaskError, match="No space left"):
        proj.save_mask("img_0", _mask(5))
    monkeypatch.undo()
    assert proj.mask_path("img_0").read_bytes() == before
    assert temp_files(tmp_path / "p") == []
    assert proj.save_mask("img_0", _mask(5))  # a failed save is retried, not skipped
    assert (proj.load_mask("img_0") == _mask(5)).all()


def test_a_writer_failing_midway_leaves_the_previous_mask_intact(
    tmp_path: Path, images: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = Project.create(tmp_path / "p", SCENE_CLASSES, images[:1])
    proj.save_mask("img_0", _mask(0))
    before = proj.mask_path("img_0").read_bytes()
    break_image_writes(monkeypatch)
    with pytest.raises(MaskError, match="disk went away"):
        proj.save_mask("img_0", _mask(5), np.ones((48, 64), bool))
    monkeypatch.undo()
    assert proj.mask_path("img_0").read_bytes() == before
    assert not proj.corrections_path("img_0").exists()
    assert temp_files(tmp_path / "p") == []
    assert not Project.open(tmp_path / "p").image("img_0").corrected


def test_project_json_write_is_atomic(
    tmp_path: Path, images: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = Project.create(tmp_path / "p", SCENE_CLASSES, images[:1])
    before = (tmp_path / "p" / PROJECT_FILE).read_text()
    monkeypatch.setattr(os, "replace", lambda s, d: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(WriteError, match=r"project\.json: boom"):
        proj.add_images(images[1:2])
    monkeypatch.undo()
    assert (tmp_path / "p" / PROJECT_FILE).read_text() == before
    assert temp_files(tmp_path / "p") == []


def test_export_voc_is_accepted_by_train(tmp_path: Path, images: list[Path]) -> None:
    import torch

    from core.cli import main
    from core.data.voc import open_dataset

    proj = Project.create(tmp_path / "p", SCENE_CLASSES, images)
    for k, image_id in enumerate(proj.ids()):
        corr = np.zeros((48, 64), bool)
        corr[:24] = True
        proj.save_mask(image_id, _mask(k), corr)
    out = proj.export_voc(tmp_path / "voc", corrected_only=True)
    pairs, names = open_dataset(out, split="train")
    val, _ = open_dataset(out, split="val")
    assert names == list(SCENE_CLASSES) and len(pairs) == 2 and len(val) == 1
    exported = read_mask(out / "SegmentationClass" / "img_1.png")
    assert (exported[24:] == 255).all() and (exported[:24] == _mask(1)[:24]).all()
    threads = torch.get_num_threads()
    try:
        rc = main(["train", "--data", str(out), "--out", str(tmp_path / "run"),
                   "--iterations", "1", "--batch-size", "1", "--crop", "48",
                   "--width", "0.0625", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0 and (tmp_path / "run" / "model.safetensors").is_file()
    with pytest.raises(DatasetError, match="no saved mask"):
        Project.create(tmp_path / "empty", SCENE_CLASSES, images[:1]).export_voc(tmp_path / "x")


def test_default_folder_stays_out_of_dataset_image_folders(tmp_path) -> None:
    from core.annotation.project import DEFAULT_FOLDER_NAME, Project

    voc = tmp_path / "VOC2012" / "JPEGImages" / "a.jpg"
    pairs = tmp_path / "data" / "images" / "b.png"
    plain = tmp_path / "photos" / "c.png"
    assert Project.default_folder([voc]) == tmp_path / "VOC2012" / DEFAULT_FOLDER_NAME
    assert Project.default_folder([pairs]) == tmp_path / "data" / DEFAULT_FOLDER_NAME
    assert Project.default_folder([plain]) == tmp_path / "photos" / DEFAULT_FOLDER_NAME
