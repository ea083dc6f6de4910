"""Class edits on a project's masks: pixel for pixel, corrections kept, journals renumbered,
undo, legacy projects, and crashes (an exception at each step, SIGKILLed processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.annotation import renumber
from core.annotation.classes import (
    ProjectClass,
    add_class,
    delete_class,
    make_classes,
    merge_classes,
    move_class,
    recolor_class,
    rename_class,
)
from core.annotation.project import PROJECT_FILE, Project
from core.annotation.renumber import (
    EDIT_DIR,
    UNDO_DIR,
    apply_class_edit,
    undo_class_edit,
    undo_info,
)
from core.data.palette import VOC_PALETTE, VOID
from core.errors import DatasetError

ROOT = Path(__file__).resolve().parents[3]
SHAPE = (30, 40)
NAMES = ["background", "cat", "dog", "bird"]


class Crash(Exception):
    """Stands for the process dying at that moment."""


def _mask(i: int, n: int = len(NAMES)) -> np.ndarray:
    rng = np.random.default_rng(i)
    m = rng.integers(0, n, SHAPE, dtype=np.uint8)
    m[0, :3] = VOID
    return m


def _corrections(i: int) -> np.ndarray:
    return np.random.default_rng(100 + i).random(SHAPE) < 0.4


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    """Three images, masks saved with pixel corrections (image 2: whole)."""
    images = []
    for i in range(3):
        p = tmp_path / "src" / f"im{i}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((*SHAPE, 3), 40 * i, np.uint8)).save(p)
        images.append(p)
    proj = Project.create(tmp_path / "p", NAMES, images)
    for i, image_id in enumerate(proj.ids()):
        proj.save_mask(image_id, _mask(i), True if i == 2 else _corrections(i))
    return proj


def _check(folder: Path, names: list[str], lut: np.ndarray) -> Project:
    """Reopen: the classes are ``names`` and every mask is ``lut`` of the original,
    with its own corrections (paired)."""
    proj = Project.open(folder)
    assert proj.class_names == names
    assert (folder / "class_names.txt").read_text().split() == names
    for i, image_id in enumerate(proj.ids()):
        saved = proj.load_pair(image_id)
        assert saved is not None and saved.status == "paired", saved and saved.note
        np.testing.assert_array_equal(saved.mask, lut[_mask(i)])
        if i == 2:
            assert saved.whole and saved.corrections is None
        else:
            np.testing.assert_array_equal(saved.corrections, _corrections(i))
    return proj


IDENTITY = np.arange(256, dtype=np.uint8)


@pytest.mark.parametrize("make", [
    lambda c: merge_classes(c, 1, 2),
    lambda c: delete_class(c, 2),
    lambda c: delete_class(c, 1, into=3),
    lambda c: move_class(c, 3, 0),
])
def test_edits_renumber_every_mask_pixel_for_pixel(project: Project, make) -> None:
    edit = make(project.classes)
    result = apply_class_edit(project, edit)
    assert result.masks == 3 and project.class_names == [c.name for c in edit.after]
    _check(project.folder, [c.name for c in edit.after], edit.lut)
    assert not (project.folder / EDIT_DIR).exists()
    assert undo_info(Project.open(project.folder)).description == edit.description


def test_rename_recolor_add_touch_no_mask(project: Project) -> None:
    before = {p: p.stat().st_mtime_ns for p in (project.folder / "SegmentationClass").iterdir()}
    apply_class_edit(project, rename_class(project.classes, 1, "kitten"))
    apply_class_edit(project, recolor_class(project.classes, 1, (1, 2, 3)))
    result = apply_class_edit(project, add_class(project.classes, "fish"))
    assert result.masks == 0
    assert before == {p: p.stat().st_mtime_ns
                      for p in (project.folder / "SegmentationClass").iterdir()}
    again = _check(project.folder, ["background", "kitten", "dog", "bird", "fish"], IDENTITY)
    assert again.classes[1] == ProjectClass("kitten", (1, 2, 3))
    assert again.classes[4].color == tuple(int(v) for v in VOC_PALETTE[4])
    data = json.loads((project.folder / PROJECT_FILE).read_text())
    assert data["classes"][1] == {"name": "kitten", "color": [1, 2, 3]}


def test_undo_restores_masks_byte_for_byte_and_renumbers_later_saves(project: Project) -> None:
    folder = project.folder
    files = {p.name: p.read_bytes() for p in (folder / "SegmentationClass").iterdir()}
    edit = merge_classes(project.classes, 1, 2)
    apply_class_edit(project, edit)
    later = edit.lut[_mask(9)]  # a mask saved after the edit, in the new numbering
    project.save_mask("im1", later, True)
    result = undo_class_edit(project)
    assert result.approximate == 1 and result.masks == 3
    again = Project.open(folder)
    assert again.class_names == NAMES and again.colors == project.colors
    for name in ("im0.png", "im2.png"):
        assert (folder / "SegmentationClass" / name).read_bytes() == files[name]
    np.testing.assert_array_equal(again.load_mask("im1"), edit.inverse_lut()[later])
    assert undo_info(again) is None  # one level; nothing to redo
    with pytest.raises(DatasetError, match="no class edit to undo"):
        undo_class_edit(again)


def test_undo_needs_the_classes_the_edit_made(project: Project) -> None:
    apply_class_edit(project, delete_class(project.classes, 3))
    apply_class_edit(project, rename_class(project.classes, 1, "kitten"))
    assert undo_info(project).kind == "rename"  # only the last edit
    (project.folder / PROJECT_FILE).write_text(
        (project.folder / PROJECT_FILE).read_text().replace("kitten", "cat"))
    (project.folder / "class_names.txt").write_text("background\ncat\ndog\n")
    assert undo_info(Project.open(project.folder)) is None
    with pytest.raises(DatasetError, match="another class list"):
        apply_class_edit(project, add_class(make_classes(NAMES), "x"))


def test_unsaved_journal_strokes_are_renumbered(project: Project) -> None:
    journal = project.journal("im0")
    journal.replay(project.load_mask("im0"))
    journal.append((2, 2, 6, 5), np.full((3, 4), 1, np.uint8))  # a stroke of "cat"
    expected_old = _mask(0)
    expected_old[2:5, 2:6] = 1
    edit = move_class(project.classes, 1, 3)  # cat to label 3
    assert apply_class_edit(project, edit).journals == 1
    again = Project.open(project.folder)
    replayed, strokes = again.journal("im0").replay(again.load_mask("im0"))
    assert strokes == 1
    np.testing.assert_array_equal(replayed, edit.lut[expected_old])


def test_a_journal_without_a_saved_mask_keeps_its_start(tmp_path: Path,
                                                        project: Project) -> None:
    image = tmp_path / "src" / "new.png"
    Image.fromarray(np.zeros((*SHAPE, 3), np.uint8)).save(image)
    (image_id,) = project.add_images([image])
    journal = project.journal(image_id)
    journal.replay(None)
    start = _mask(5)
    journal.append((0, 0, SHAPE[1], SHAPE[0]), start)
    journal.append((0, 0, 2, 2), np.full((2, 2), 3, np.uint8))
    edit = merge_classes(project.classes, 3, 1)
    apply_class_edit(project, edit)
    again = project.journal(image_id)
    replayed, _strokes = again.replay(None)
    expected = start.copy()
    expected[:2, :2] = 3
    np.testing.assert_array_equal(replayed, edit.lut[expected])
    np.testing.assert_array_equal(again.start, edit.lut[start])


def test_a_project_saved_before_colors_opens_with_the_voc_palette(project: Project) -> None:
    f = project.folder / PROJECT_FILE
    data = json.loads(f.read_text())
    del data["classes"]
    f.write_text(json.dumps(data))
    legacy = Project.open(project.folder)
    assert legacy.class_names == NAMES
    assert legacy.colors == [tuple(int(v) for v in VOC_PALETTE[i]) for i in range(4)]
    data["classes"] = [{"name": "x", "color": [0, 0, 0]}]
    f.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="disagree"):
        Project.open(project.folder)


# --------------------------------------------------------------------------- crashes


def _crash_on_rewrite(monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    real, seen = Project.rewrite_mask, []

    def rewrite(self, image_id, mask):
        seen.append(image_id)
        if len(seen) == nth:
            raise Crash("killed while rewriting masks")
        real(self, image_id, mask)

    monkeypatch.setattr(Project, "rewrite_mask", rewrite)


@pytest.mark.parametrize("nth", [1, 2, 3])
def test_a_crash_among_the_masks_is_finished_on_reopen(
        project: Project, monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    edit = merge_classes(project.classes, 1, 2)
    _crash_on_rewrite(monkeypatch, nth)
    with pytest.raises(Crash):
        apply_class_edit(project, edit)
    monkeypatch.undo()
    assert (project.folder / EDIT_DIR).is_dir()
    _check(project.folder, [c.name for c in edit.after], edit.lut)
    assert not (project.folder / EDIT_DIR).exists() and (project.folder / UNDO_DIR).is_dir()


def test_a_crash_before_the_commit_changes_nothing(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.replace

    def replace(src, dst):
        if Path(dst).name == EDIT_DIR:
            raise Crash("killed before the commit")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Crash):
        apply_class_edit(project, delete_class(project.classes, 1))
    monkeypatch.undo()
    _check(project.folder, NAMES, IDENTITY)
    assert not (project.folder / ".classedit.new").exists()


@pytest.mark.parametrize("where", ["set_classes", "done"])
def test_a_crash_after_the_masks(project: Project, monkeypatch: pytest.MonkeyPatch,
                                 where: str) -> None:
    edit = move_class(project.classes, 0, 3)
    if where == "set_classes":
        real = Project.set_classes

        def set_classes(self, classes):
            real(self, classes)
            raise Crash("killed after project.json")

        monkeypatch.setattr(Project, "set_classes", set_classes)
    else:
        real_rm = renumber._rmtree
        monkeypatch.setattr(renumber, "_rmtree", lambda p: (_ for _ in ()).throw(
            Crash("killed after done")) if p.name == UNDO_DIR else real_rm(p))
    with pytest.raises(Crash):
        apply_class_edit(project, edit)
    monkeypatch.undo()
    _check(project.folder, [c.name for c in edit.after], edit.lut)


def test_an_interrupted_undo_is_finished_too(project: Project,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    files = {p.name: p.read_bytes() for p in (project.folder / "SegmentationClass").iterdir()}
    apply_class_edit(project, delete_class(project.classes, 2))
    _crash_on_rewrite(monkeypatch, 2)
    with pytest.raises(Crash):
        undo_class_edit(project)
    monkeypatch.undo()
    _check(project.folder, NAMES, IDENTITY)
    assert files == {p.name: p.read_bytes()
                     for p in (project.folder / "SegmentationClass").iterdir()}


def test_an_edit_that_cannot_be_finished_is_a_clear_error(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    _crash_on_rewrite(monkeypatch, 1)
    with pytest.raises(Crash):
        apply_class_edit(project, merge_classes(project.classes, 1, 2))
    monkeypatch.undo()
    (project.folder / EDIT_DIR / "plan.json").write_text("{broken")
    with pytest.raises(DatasetError, match="class edit plan"):
        Project.open(project.folder)


def _rotation(k: int, n: int) -> np.ndarray:
    """The lut of ``k`` moves of class 0 to the last label."""
    lut = np.arange(256, dtype=np.uint8)
    lut[:n] = (np.arange(n) - k) % n
    return lut


def test_killed_processes_leave_every_mask_in_the_numbering_of_the_classes(
        project: Project) -> None:
    """A process rotating the classes, SIGKILLed 10 times at random: each reopening has
    every mask in the numbering its classes say (the rotation count read off the names)."""
    rng = np.random.default_rng(7)
    n, mid = len(NAMES), 0
    for _round in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.core.annotation.classedit_worker",
             str(project.folder)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        try:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
            time.sleep(rng.uniform(0.05, 0.6))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        lines = [x for x in proc.stdout.read().split("\n") if x]
        mid += bool(lines) and lines[-1].startswith("begin")
        names = Project.open(project.folder).class_names
        k = NAMES.index(names[0])
        assert names == NAMES[k:] + NAMES[:k]
        _check(project.folder, names, _rotation(k, n))
    assert mid >= 3, "the kills should land in the middle of edits"
