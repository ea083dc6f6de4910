"""A mask and its corrections stay paired: crashes between the two renames, legacy
projects, masks changed outside the app, and SIGKILL while saving in a loop."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.annotation.project import Project
from core.annotation.saves import SAVES_DIR
from core.data.imageio import read_mask, write_mask
from core.errors import MaskError
from tests.core.annotation import save_worker as worker
from tests.core.annotation.processes import wait_ready

ROOT = Path(__file__).resolve().parents[3]
SHAPE = worker.SHAPE


class Crash(Exception):
    """Stands for the process dying at that moment."""


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    image = tmp_path / "scene.png"
    Image.fromarray(np.zeros((*SHAPE, 3), np.uint8)).save(image)
    return Project.create(tmp_path / "p", [f"c{i}" for i in range(worker.CLASSES)], [image])


def _crash_on(monkeypatch: pytest.MonkeyPatch, part: str, nth: int = 1) -> None:
    """Let ``os.replace`` die on its ``nth`` rename into ``part`` (``Corrections``...)."""
    real, seen = os.replace, []

    def replace(src, dst):
        if part in Path(dst).parts and ".tmp-" not in Path(dst).name:
            seen.append(dst)
            if len(seen) == nth:
                raise Crash(f"killed before renaming into {dst}")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def _expect(loaded, corrected) -> None:
    if isinstance(corrected, np.ndarray):
        assert loaded.corrections is not None and not loaded.whole
        np.testing.assert_array_equal(loaded.corrections, corrected)
    else:
        assert loaded.corrections is None and loaded.whole is bool(corrected)


KINDS = {"pixels": 0, "whole": 1, "pixels again": 2, "not corrected": 3}


@pytest.mark.parametrize("old", KINDS)
@pytest.mark.parametrize("new", KINDS)
def test_a_crash_between_the_two_renames_keeps_the_old_pair(
    project: Project, monkeypatch: pytest.MonkeyPatch, old: str, new: str
) -> None:
    """The corrections file (or its removal) is done, the mask rename is not."""
    (image_id,) = project.ids()
    old_mask, old_corr = worker.pair(KINDS[old] + 4)
    new_mask, new_corr = worker.pair(KINDS[new] + 8)
    assert project.save_mask(image_id, old_mask, old_corr)
    _crash_on(monkeypatch, "SegmentationClass")
    with pytest.raises(Crash):
        project.save_mask(image_id, new_mask, new_corr)
    monkeypatch.undo()
    corr_file = project.corrections_path(image_id)
    if isinstance(new_corr, np.ndarray):  # the torn state: the new corrections are on disk
        np.testing.assert_array_equal(read_mask(corr_file) > 0, new_corr)
    else:
        assert not corr_file.exists()
    reopened = Project.open(project.folder)
    loaded = reopened.load_pair(image_id)
    np.testing.assert_array_equal(loaded.mask, old_mask)
    _expect(loaded, old_corr)
    expect_flag = old_corr is True or (isinstance(old_corr, np.ndarray) and old_corr.any())
    assert reopened.image(image_id).corrected is bool(expect_flag)
    assert Project.open(project.folder).image(image_id).corrected is bool(expect_flag)
    if loaded.status == "restored":
        assert "cut off" in loaded.note
    # the next save writes a clean pair again
    assert reopened.save_mask(image_id, new_mask, new_corr)
    again = Project.open(project.folder).load_pair(image_id)
    assert again.status == "paired"
    np.testing.assert_array_equal(again.mask, new_mask)
    _expect(again, new_corr)
    assert sorted(p.name for p in (project.folder / SAVES_DIR).iterdir()) == [f"{image_id}.json"]


def test_a_crash_between_the_first_two_renames_of_a_torn_state(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The corrections were renamed, the mask was not: exactly what the old code paired."""
    (image_id,) = project.ids()
    a_mask, a_corr = worker.pair(0)
    b_mask, b_corr = worker.pair(2)
    project.save_mask(image_id, a_mask, a_corr)
    _crash_on(monkeypatch, "SegmentationClass")
    with pytest.raises(Crash):
        project.save_mask(image_id, b_mask, b_corr)
    monkeypatch.undo()
    on_disk = read_mask(project.corrections_path(image_id)) > 0
    np.testing.assert_array_equal(on_disk, b_corr)  # B's corrections beside A's mask...
    loaded = Project.open(project.folder).load_pair(image_id)
    assert loaded.status == "restored"
    np.testing.assert_array_equal(loaded.mask, a_mask)
    np.testing.assert_array_equal(loaded.corrections, a_corr)  # ...but A's are used
    np.testing.assert_array_equal(Project.open(project.folder).load_corrections(image_id), a_corr)
    _rgb, mask, corr = Project.open(project.folder).training_items([image_id])[0]
    np.testing.assert_array_equal(mask, a_mask)
    np.testing.assert_array_equal(corr, a_corr)


def test_a_crash_before_the_renames_or_before_the_manifest_is_a_pair(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    (image_id,) = project.ids()
    a_mask, a_corr = worker.pair(0)
    b_mask, b_corr = worker.pair(2)
    project.save_mask(image_id, a_mask, a_corr)
    _crash_on(monkeypatch, "Corrections")  # before either rename
    with pytest.raises(Crash):
        project.save_mask(image_id, b_mask, b_corr)
    monkeypatch.undo()
    loaded = Project.open(project.folder).load_pair(image_id)
    assert loaded.status == "paired"
    np.testing.assert_array_equal(loaded.mask, a_mask)
    np.testing.assert_array_equal(loaded.corrections, a_corr)
    _crash_on(monkeypatch, SAVES_DIR, nth=2)  # both renamed, the final manifest not written
    with pytest.raises(Crash):
        project.save_mask(image_id, b_mask, b_corr)
    monkeypatch.undo()
    manifest = json.loads((project.folder / SAVES_DIR / f"{image_id}.json").read_text())
    assert manifest["previous"], "the manifest of the unfinished save is still there"
    loaded = Project.open(project.folder).load_pair(image_id)
    assert loaded.status == "paired"
    np.testing.assert_array_equal(loaded.mask, b_mask)
    np.testing.assert_array_equal(loaded.corrections, b_corr)


def test_unfinished_saves_in_a_row_still_resolve(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    (image_id,) = project.ids()
    masks = [worker.pair(i) for i in (0, 2, 4, 6)]
    project.save_mask(image_id, *masks[0])
    for mask, corr in masks[1:]:  # three saves cut between the renames, one after another
        _crash_on(monkeypatch, "SegmentationClass")
        with pytest.raises(Crash):
            Project.open(project.folder).save_mask(image_id, mask, corr)
        monkeypatch.undo()
        loaded = Project.open(project.folder).load_pair(image_id)
        assert loaded.status == "restored"
        np.testing.assert_array_equal(loaded.mask, masks[0][0])
        np.testing.assert_array_equal(loaded.corrections, masks[0][1])


def test_corrected_none_keeps_the_saved_masks_corrections(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    (image_id,) = project.ids()
    a_mask, a_corr = worker.pair(0)
    b_mask, b_corr = worker.pair(2)
    c_mask, _ = worker.pair(5)
    project.save_mask(image_id, a_mask, a_corr)
    _crash_on(monkeypatch, "SegmentationClass")
    with pytest.raises(Crash):
        project.save_mask(image_id, b_mask, b_corr)
    monkeypatch.undo()
    reopened = Project.open(project.folder)
    assert reopened.save_mask(image_id, c_mask)  # None: keep the record of the saved mask
    loaded = Project.open(project.folder).load_pair(image_id)
    assert loaded.status == "paired"
    np.testing.assert_array_equal(loaded.mask, c_mask)
    np.testing.assert_array_equal(loaded.corrections, a_corr)  # A's, not B's
    assert not reopened.save_mask(image_id, c_mask)  # unchanged: nothing written


def test_a_legacy_project_without_manifests(project: Project) -> None:
    """Saved by the code before manifests: files taken as they are, then paired."""
    (image_id,) = project.ids()
    mask, corr = worker.pair(0)
    write_mask(project.mask_path(image_id), mask)
    write_mask(project.corrections_path(image_id), corr.astype(np.uint8))
    project.image(image_id).corrected = True
    project.save()
    loaded = Project.open(project.folder).load_pair(image_id)
    assert loaded.status == "legacy" and not loaded.whole
    np.testing.assert_array_equal(loaded.corrections, corr)
    # a legacy "whole" image: flag set, no corrections file
    project.corrections_path(image_id).unlink()
    loaded = Project.open(project.folder).load_pair(image_id)
    assert loaded.status == "legacy" and loaded.whole and loaded.corrections is None
    # the first save by this code pairs it; a crash in it falls back to the legacy state
    reopened = Project.open(project.folder)
    new_mask, new_corr = worker.pair(2)
    real = os.replace

    def crash(src, dst):
        if "SegmentationClass" in Path(dst).parts and ".tmp-" not in Path(dst).name:
            raise Crash
        real(src, dst)

    os.replace = crash
    try:
        with pytest.raises(Crash):
            reopened.save_mask(image_id, new_mask, new_corr)
    finally:
        os.replace = real
    loaded = Project.open(project.folder).load_pair(image_id)
    assert loaded.status == "restored" and loaded.whole and loaded.corrections is None
    np.testing.assert_array_equal(loaded.mask, mask)


def test_a_mask_changed_outside_the_app_has_unknown_corrections(project: Project) -> None:
    (image_id,) = project.ids()
    mask, corr = worker.pair(0)
    project.save_mask(image_id, mask, corr)
    edited = mask.copy()
    edited[:5] = 1
    write_mask(project.mask_path(image_id), edited)  # e.g. touched up in an image editor
    reopened = Project.open(project.folder)
    loaded = reopened.load_pair(image_id)
    assert loaded.status == "unknown" and "unknown" in loaded.note
    assert loaded.corrections is None and loaded.whole  # not the file beside it
    assert reopened.load_corrections(image_id) is None
    np.testing.assert_array_equal(loaded.mask, edited)
    out = reopened.export_voc(project.folder.parent / "voc", corrected_only=True,
                              val_fraction=0)
    np.testing.assert_array_equal(read_mask(out / "SegmentationClass" / f"{image_id}.png"),
                                  edited)  # no corrections known: nothing set to void
    # an unreadable manifest is "unknown" too, never a guess
    (project.folder / SAVES_DIR / f"{image_id}.json").write_text("{not json")
    assert Project.open(project.folder).load_pair(image_id).status == "unknown"
    # and a new save pairs again
    reopened.save_mask(image_id, mask, corr)
    again = Project.open(project.folder).load_pair(image_id)
    assert again.status == "paired"
    np.testing.assert_array_equal(again.corrections, corr)


def test_a_failed_manifest_write_fails_the_save_and_keeps_the_old_pair(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    (image_id,) = project.ids()
    a_mask, a_corr = worker.pair(0)
    project.save_mask(image_id, a_mask, a_corr)
    real = os.replace

    def full_disk(src, dst):
        if SAVES_DIR in Path(dst).parts:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(MaskError, match="No space left"):
        project.save_mask(image_id, *worker.pair(2))
    monkeypatch.undo()
    loaded = Project.open(project.folder).load_pair(image_id)
    assert loaded.status == "paired"
    np.testing.assert_array_equal(loaded.mask, a_mask)
    np.testing.assert_array_equal(loaded.corrections, a_corr)
    assert not [p for p in project.folder.rglob("*") if ".tmp-" in p.name]


# ---------------------------------------------------------------------- real processes


@pytest.mark.slow
def test_sigkill_while_saving_in_a_loop_never_mixes_two_saves(project: Project) -> None:
    (image_id,) = project.ids()
    rng = random.Random(11)
    start, committed = 0, None  # the last save known to be complete
    between = 0  # kills that fell between a save's corrections and mask renames
    statuses: set[str] = set()
    for _round in range(16):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.core.annotation.save_worker", str(project.folder),
             str(start)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_ready(proc)
            time.sleep(rng.uniform(0.05, 0.5))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
        lines = proc.stdout.read().split("\n")
        lines = [x for x in lines if x]
        begun = [int(x.split()[1]) for x in lines if x.startswith("begin")]
        done = [int(x.split()[1]) for x in lines if x.startswith("saved")]
        if done:
            committed = done[-1]
        in_progress = begun[-1] if begun and (not done or begun[-1] > done[-1]) else None
        if in_progress is not None and lines[-1] == "corrections":
            between += 1
        loaded = Project.open(project.folder).load_pair(image_id)
        if loaded is None:
            assert committed is None
        else:
            statuses.add(loaded.status)
            assert loaded.status in ("paired", "restored"), loaded.note
            which = [i for i in (committed, in_progress) if i is not None
                     and np.array_equal(worker.pair(i)[0], loaded.mask)]
            assert which, f"round {_round}: the mask is none of saves {committed}, {in_progress}"
            _expect(loaded, worker.pair(which[0])[1])  # its own corrections, never another's
            corrected = worker.pair(which[0])[1]
            flag = corrected is True or (isinstance(corrected, np.ndarray) and corrected.any())
            assert Project.open(project.folder).image(image_id).corrected is bool(flag)
            committed = which[0]
        start = begun[-1] + 1 if begun else start  # fresh masks for the next round
    assert between >= 1, "no kill fell between the two renames of a save"
    assert "restored" in statuses
