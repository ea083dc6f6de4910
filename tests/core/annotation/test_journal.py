"""The stroke journal: replay after a crash, torn and corrupt files, absurd records, kill -9."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.annotation import LabelImage, brush_stroke
from core.annotation.journal import JOURNAL_DIR, Journal, mask_digest
from core.annotation.project import Project
from core.errors import DatasetError, MaskError
from tests.core.annotation import journal_worker as worker
from tests.core.annotation.processes import wait_ready

ROOT = Path(__file__).resolve().parents[3]
SHAPE = (48, 64)
HEADER = 36  # bytes


def _strokes(image: LabelImage, journal: Journal | None, n: int, seed: int = 0) -> list:
    """Paint ``n`` strokes; return the mask after each (journaling each when given one)."""
    states = []
    for i in range(n):
        worker.paint(image, seed * 1000 + i, journal)
        states.append(image.array.copy())
    return states


def _journal(tmp_path: Path, saved: np.ndarray | None, **kwargs) -> Journal:
    journal = Journal.open(tmp_path, "img", SHAPE, num_classes=worker.CLASSES, **kwargs)
    assert journal.replay(saved) == (saved, 0)
    return journal


def _reopen(tmp_path: Path, saved: np.ndarray | None) -> tuple[np.ndarray | None, int, str]:
    journal = Journal.open(tmp_path, "img", SHAPE, num_classes=worker.CLASSES)
    mask, n = journal.replay(saved)
    return mask, n, journal.discarded


def test_replay_over_the_saved_mask_gives_every_journaled_stroke(tmp_path: Path) -> None:
    saved = worker.start_mask(SHAPE)
    journal = _journal(tmp_path, saved)
    image = LabelImage(saved)
    states = _strokes(image, journal, 12)
    assert journal.path == tmp_path / JOURNAL_DIR / "img.fcnj"
    mask, n, problem = _reopen(tmp_path, saved)
    assert problem == "" and n == journal.strokes >= 12
    np.testing.assert_array_equal(mask, states[-1])
    np.testing.assert_array_equal(saved, worker.start_mask(SHAPE))  # not changed in place
    again, n2, _ = _reopen(tmp_path, saved)  # replaying does not consume the journal
    assert n2 == n and np.array_equal(again, mask)


def test_no_saved_mask_needs_the_starting_mask_first(tmp_path: Path) -> None:
    journal = _journal(tmp_path, None)
    start = worker.start_mask(SHAPE)
    with pytest.raises(MaskError, match="whole starting mask"):
        journal.append((0, 0, 5, 5), start[:5, :5])
    journal.append((0, 0, SHAPE[1], SHAPE[0]), start)
    states = _strokes(LabelImage(start), journal, 5)
    mask, n, _ = _reopen(tmp_path, None)
    assert n == journal.strokes and np.array_equal(mask, states[-1])


def test_replay_over_no_saved_mask_tells_where_the_session_started(tmp_path: Path) -> None:
    journal = _journal(tmp_path, None)
    start = worker.start_mask(SHAPE)
    journal.append((0, 0, SHAPE[1], SHAPE[0]), start)
    states = _strokes(LabelImage(start), journal, 3)
    again = Journal.open(tmp_path, "img", SHAPE, num_classes=worker.CLASSES)
    mask, n = again.replay(None)
    assert n == journal.strokes and np.array_equal(mask, states[-1])
    assert again.start is not None and np.array_equal(again.start, start)
    saved = states[-1]
    again.clear_after_save(saved)
    over_saved = Journal.open(tmp_path, "img", SHAPE, num_classes=worker.CLASSES)
    assert over_saved.replay(saved) == (saved, 0) and over_saved.start is None


def test_clear_after_save_and_a_crash_before_it(tmp_path: Path) -> None:
    saved = worker.start_mask(SHAPE)
    journal = _journal(tmp_path, saved)
    image = LabelImage(saved)
    _strokes(image, journal, 6)
    new_saved = image.array.copy()
    # a crash between saving the mask and clearing the journal: its strokes are in the mask
    mask, n, problem = _reopen(tmp_path, new_saved)
    assert mask is new_saved and n == 0 and "before the last save" in problem
    assert not journal.path.exists()
    # the normal order: save, clear, then the journal begins over the saved mask
    journal = _journal(tmp_path, new_saved)
    _strokes(image, journal, 3, seed=1)
    second_save = image.array.copy()
    journal.clear_after_save(second_save)
    assert not journal.path.exists()
    states = _strokes(image, journal, 4, seed=2)
    mask, n, problem = _reopen(tmp_path, second_save)
    assert problem == "" and n == journal.strokes and np.array_equal(mask, states[-1])
    mask, n, problem = _reopen(tmp_path, new_saved)  # not over the mask saved before
    assert n == 0 and "before the last save" in problem


def test_journal_of_another_mask_or_size_is_discarded(tmp_path: Path) -> None:
    saved = worker.start_mask(SHAPE)
    journal = _journal(tmp_path, None)
    journal.append((0, 0, SHAPE[1], SHAPE[0]), saved)
    mask, n, problem = _reopen(tmp_path, saved)  # a mask was saved since it began
    assert n == 0 and "before the last save" in problem
    journal = _journal(tmp_path, saved)
    _strokes(LabelImage(saved), journal, 2)
    mask, n, problem = _reopen(tmp_path, None)  # the saved mask it began over is gone
    assert (mask, n) == (None, 0) and "gone" in problem
    journal = _journal(tmp_path, saved)
    _strokes(LabelImage(saved), journal, 2)
    other = Journal.open(tmp_path, "img", (SHAPE[0] + 1, SHAPE[1]))
    bigger = np.zeros((SHAPE[0] + 1, SHAPE[1]), np.uint8)
    assert other.replay(bigger) == (bigger, 0) and "mask, the image is" in other.discarded


@pytest.mark.parametrize("bbox, values, footprint, match", [
    ((0, 0, 65, 10), np.zeros((10, 65)), None, "outside"),
    ((-1, 0, 4, 4), np.zeros((4, 5)), None, "outside"),
    ((3, 3, 3, 9), np.zeros((6, 0)), None, "outside"),
    ((0, 0, 4, 4), np.zeros((4, 4), np.float32), None, "integer labels"),
    ((0, 0, 4, 4), np.full((4, 4), 7), None, "labels 0..4"),
    ((0, 0, 4, 4), np.full((4, 4), 256), None, "labels 0..4"),
    ((0, 0, 4, 4), np.zeros((4, 3), np.uint8), None, "bbox"),
    ((0, 0, 4, 4), np.zeros(3, np.uint8), np.ones((4, 4), bool), "values for 16"),
    ((0, 0, 4, 4), np.zeros(1, np.uint8), np.ones((4, 3), bool), "footprint"),
    ((0, 0, 4, 4), np.zeros(1, np.uint8), np.ones((4, 4), np.uint8), "footprint"),
    ((0, 0, 10**30, 4), np.zeros(1, np.uint8), None, "outside"),
    ((0.5, 0, 4, 4), np.zeros((4, 4), np.uint8), None, "four integers"),
    ((0, 0, 4, 4), np.zeros((0,), np.uint8), np.zeros((4, 4), bool), "at least one"),
])
def test_absurd_records_are_refused(tmp_path: Path, bbox, values, footprint, match) -> None:
    journal = _journal(tmp_path, np.zeros(SHAPE, np.uint8))
    with pytest.raises(MaskError, match=match):
        journal.append(bbox, values, footprint)
    assert not journal.path.exists() and journal.strokes == 0


def test_bad_ids_shapes_and_order_of_calls(tmp_path: Path) -> None:
    for bad in ("", "..", "a/b", "a\\b", "x\0y", "é" * 150):
        with pytest.raises(DatasetError):
            Journal.open(tmp_path, bad, SHAPE)
    for shape in ((0, 4), (4, 2**21), (4.5, 4), (4,)):
        with pytest.raises(MaskError):
            Journal.open(tmp_path, "img", shape)
    journal = Journal.open(tmp_path, "img", SHAPE)
    with pytest.raises(RuntimeError, match="replay"):
        journal.append((0, 0, 1, 1), np.zeros((1, 1), np.uint8))
    with pytest.raises(MaskError, match="uint8"):
        journal.replay(np.zeros(SHAPE, np.int64))


def _journaled_plain(tmp_path: Path, n: int) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
    """A journal of ``n`` strokes over a saved mask: (saved, the state after each record,
    the byte offset where each record ends)."""
    saved = worker.start_mask(SHAPE)
    journal = _journal(tmp_path, saved)
    image = LabelImage(saved)
    rng = np.random.default_rng(n)
    states, ends = [], []
    while journal.strokes < n:
        stroke = image.begin_stroke(int(rng.integers(0, worker.CLASSES)))
        stroke.add(brush_stroke(rng.uniform(0, 60, (3, 2)), float(rng.uniform(1, 6)), SHAPE))
        edit = stroke.finish()
        if edit is not None:
            journal.append_edit(edit)
            states.append(image.array.copy())
            ends.append(journal.path.stat().st_size)
    return saved, states, ends


def test_a_torn_last_record_is_dropped_at_every_byte(tmp_path: Path) -> None:
    saved, states, ends = _journaled_plain(tmp_path, 4)
    path = tmp_path / JOURNAL_DIR / "img.fcnj"
    data = path.read_bytes()
    assert len(data) == ends[-1]
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        mask, n, problem = _reopen(tmp_path, saved)
        whole = sum(end <= cut for end in ends)
        assert n == whole, cut
        np.testing.assert_array_equal(mask, states[whole - 1] if whole else saved)
        clean = [HEADER, *ends]  # a header alone is an empty journal
        assert (problem == "") == (cut in clean), cut
        if whole:  # truncated to the last good record, so appends continue it
            assert path.stat().st_size == ends[whole - 1], cut
        elif cut == HEADER:
            assert path.stat().st_size == HEADER
        else:  # nothing to replay: removed
            assert not path.exists(), cut
    path.write_bytes(data[: ends[1] + 3])
    journal = Journal.open(tmp_path, "img", SHAPE, num_classes=worker.CLASSES)
    mask, n = journal.replay(saved)
    assert n == 2
    journal.append((0, 0, 2, 2), np.full((2, 2), 3))
    mask, n, problem = _reopen(tmp_path, saved)
    assert n == 3 and problem == "" and (mask[:2, :2] == 3).all()


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(records=st.integers(1, 5), data=st.data())
def test_corrupt_journals_replay_a_prefix_or_nothing(tmp_path_factory, records, data) -> None:
    tmp_path = tmp_path_factory.mktemp("j")
    saved, states, ends = _journaled_plain(tmp_path, records)
    path = tmp_path / JOURNAL_DIR / "img.fcnj"
    blob = bytearray(path.read_bytes())
    how = data.draw(st.sampled_from(["flip", "garbage", "truncate", "splice"]))
    pos = data.draw(st.integers(0, len(blob) - 1))
    if how == "flip":
        blob[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "garbage":
        junk = data.draw(st.binary(min_size=1, max_size=64))
        blob[pos : pos + len(junk)] = junk
    elif how == "truncate":
        del blob[pos:]
    else:  # a copy of an earlier record appended again (out of sequence)
        blob += blob[HEADER : ends[0]]
    path.write_bytes(bytes(blob))
    mask, n, problem = _reopen(tmp_path, saved)
    # the records wholly before the damage are replayed; never a damaged or later one
    intact = records if how == "splice" else sum(end <= pos for end in ends)
    if pos < HEADER and how != "splice":
        intact = 0
    assert n <= records
    np.testing.assert_array_equal(mask, states[n - 1] if n else saved)
    if how in ("flip", "truncate", "splice"):
        assert n == intact, (how, pos, problem)
    else:  # garbage may rewrite bytes with the same bytes
        assert n >= intact
    if how == "splice":
        assert "out of sequence" in problem


def test_a_compressed_bomb_is_refused(tmp_path: Path) -> None:
    saved = np.zeros(SHAPE, np.uint8)
    journal = _journal(tmp_path, saved)
    journal.append((0, 0, 4, 4), np.ones((4, 4), np.uint8))
    import struct

    body = zlib.compress(bytes(10_000_000), 9)  # 10 MB of zeros for a 4x4 box
    payload = struct.pack("<IIIIIB", 2, 0, 0, 4, 4, 0) + body
    with open(journal.path, "ab") as fh:
        fh.write(struct.pack("<II", len(payload), zlib.crc32(payload)) + payload)
    mask, n, problem = _reopen(tmp_path, saved)
    assert n == 1 and "record 2" in problem and (mask[:4, :4] == 1).all()


def test_project_journal_fits_the_image(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((*SHAPE, 3), np.uint8)).save(image)
    project = Project.create(tmp_path / "p", ["bg", "a", "b", "c", "d"], [image])
    (image_id,) = project.ids()
    journal = project.journal(image_id)
    assert journal.shape == SHAPE and journal.num_classes == 5
    assert journal.path.parent == project.folder / JOURNAL_DIR
    mask, n = journal.replay(project.load_mask(image_id))
    assert (mask, n) == (None, 0)
    assert mask_digest(np.zeros(SHAPE, np.uint8)) != mask_digest(np.zeros(SHAPE[::-1], np.uint8))


# ---------------------------------------------------------------------- real processes


@pytest.mark.slow
def test_kill_9_while_painting_loses_at_most_the_stroke_in_progress(tmp_path: Path) -> None:
    image_file = tmp_path / "scene.png"
    Image.fromarray(np.zeros((96, 128, 3), np.uint8)).save(image_file)
    project = Project.create(tmp_path / "project", [f"c{i}" for i in range(worker.CLASSES)],
                             [image_file])
    (image_id,) = project.ids()
    rng = random.Random(7)
    state = worker.start_mask((96, 128))  # the model of the worker's mask
    seen = {mask_digest(state)}  # every state the worker went through
    start = 0
    recovered_from_journal = 0
    for _round in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.core.annotation.journal_worker", str(project.folder),
             str(start)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_ready(proc)
            time.sleep(rng.uniform(0.02, 0.4))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        out = proc.stdout.read().split()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
        done = [int(x) for x in out]
        assert done == list(range(start, start + len(done)))
        last = start + len(done)  # strokes start .. last - 1 were journaled
        # the model: the states after each acknowledged stroke...
        model = LabelImage(state)
        for i in range(start, last):
            worker.paint(model, i)
            seen.add(mask_digest(model.array))
        after = model.array.copy()
        # ... and the stroke in progress may have been journaled (or its stroke, not its undo)
        candidates = [(after, last)]
        for undo in (True, False):
            model = LabelImage(after)
            worker.paint(model, last, undo=undo)
            candidates.append((model.array.copy(), last + 1))

        reopened = Project.open(project.folder)
        saved = reopened.load_mask(image_id)
        if saved is not None:  # every save is of a state the worker had
            assert mask_digest(saved) in seen, _round
        journal = reopened.journal(image_id)
        mask, n = journal.replay(saved)
        assert mask is not None
        matches = [c for c in candidates if np.array_equal(mask, c[0])]
        assert matches, (f"round {_round}: recovered mask is none of the allowed states "
                         f"(strokes {start}..{last - 1} acknowledged; {journal.discarded})")
        if n and saved is not None and not np.array_equal(mask, saved):
            recovered_from_journal += 1
        state, start = matches[0][0].copy(), matches[0][1]
        seen.add(mask_digest(state))
    assert start > 8 * 3, "the worker painted too few strokes to test anything"
    assert recovered_from_journal >= 2, "no kill fell between autosaves"
