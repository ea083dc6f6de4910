"""The stroke journal through the real app: strokes painted with the mouse survive a window
dropped without saving (and a SIGKILLed app), come back pixel for pixel, undo and redo are
journaled, a save clears the journal, and a journal that cannot be written stops, says so
and never costs the mask in memory."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from app.shell.main_window import MainWindow
from core.annotation.journal import JOURNAL_DIR, JOURNAL_SUFFIX
from core.annotation.project import Project
from core.data.imageio import read_mask, write_mask
from tests.app.conftest import click, drag, open_window
from tests.app.features.editing.journal_app_worker import digest

ROOT = Path(__file__).resolve().parents[4]

IMAGE = "sample_00"


def project_dir(folder: Path) -> Path:
    return folder / "fcn-studio-project"


def journal_file(folder: Path) -> Path:
    return project_dir(folder) / JOURNAL_DIR / f"{IMAGE}{JOURNAL_SUFFIX}"


def replayed(folder: Path) -> np.ndarray | None:
    """What a new process would recover now: the saved mask with the journal over it."""
    project = Project.open(project_dir(folder))
    mask, _ = project.journal(IMAGE).replay(project.load_mask(IMAGE))
    return mask


def stroke(qtbot: QtBot, win: MainWindow, cls: int, y: int, size: int = 5) -> None:
    win.editing.tools.set_tool("brush")
    win.editing.tools.set_class(cls)
    win.editing.tools.set_size(size)
    drag(qtbot, win, [(10, y), (40, y + 4), (70, y - 3)])


def crash(win: MainWindow) -> None:
    """The app dies here: nothing more of this window reaches the disk (no autosave; the
    window is left open, so its close-time save comes after the test's checks)."""
    win.editing.projects.timer.stop()


def test_strokes_undo_and_redo_survive_a_window_dropped_without_saving(
    qtbot: QtBot, editor: MainWindow, own_samples: Path
) -> None:
    m = editor.editing.manager
    session = m.start("empty")
    assert session is not None and not journal_file(own_samples).exists()  # nothing yet
    stroke(qtbot, editor, 2, 20)
    # the first change opened the journal: its start (the empty mask), then the stroke
    assert journal_file(own_samples).is_file()
    assert np.array_equal(replayed(own_samples), session.labels)
    stroke(qtbot, editor, 1, 40, size=9)
    editor.editing.tools.set_tool("fill")
    editor.editing.tools.set_class(3)
    click(qtbot, editor, 100, 80)  # fills the background region
    after_fill = session.labels.copy()
    assert (after_fill == 3).sum() > 1000
    assert np.array_equal(replayed(own_samples), after_fill)
    m.undo_group.undo()  # the fill's inverse is journaled
    assert np.array_equal(replayed(own_samples), session.labels)
    assert not np.array_equal(session.labels, after_fill)
    m.undo_group.redo()  # and the fill again
    assert np.array_equal(session.labels, after_fill)
    assert np.array_equal(replayed(own_samples), after_fill)
    m.undo_group.undo()
    stroke(qtbot, editor, 3, 60)  # a new stroke after an undo drops the redo side
    painted = session.labels.copy()
    corrected = session.corrections().copy()
    assert np.array_equal(replayed(own_samples), painted)
    assert not (project_dir(own_samples) / "SegmentationClass" / f"{IMAGE}.png").exists()
    crash(editor)

    again = open_window(qtbot, own_samples)
    try:
        m2 = again.editing.manager
        s2 = m2.session
        assert s2 is not None and m2.annotating
        np.testing.assert_array_equal(s2.labels, painted)  # pixel for pixel
        np.testing.assert_array_equal(s2.corrections(), corrected)
        note = again.notifications.last("warning").text
        # stroke, stroke, fill, undo, redo, undo, stroke: seven changes after the start
        assert "Recovered 7 strokes of sample_00.png" in note
        assert s2.dirty and again.isWindowModified()  # saved at the next autosave
        assert np.array_equal(m2.layer.argb[s2.labels == 3], m2.layer.argb[painted == 3])
        # Ctrl+Z takes the recovered strokes back (to the empty start), journaled too
        m2.undo_group.undo()
        assert not s2.labels.any()
        assert np.array_equal(replayed(own_samples), s2.labels)
        m2.undo_group.redo()
        assert np.array_equal(replayed(own_samples), painted)
        # the next autosave writes it and removes the journal
        projects = again.editing.projects
        with qtbot.waitSignal(projects.saved, timeout=5000):
            projects.timer.start(50)
        projects.timer.stop()
        saved = read_mask(project_dir(own_samples) / "SegmentationClass" / f"{IMAGE}.png")
        np.testing.assert_array_equal(saved, painted)
        assert not journal_file(own_samples).exists()
        assert not again.isWindowModified()
        pair = Project.open(project_dir(own_samples)).load_pair(IMAGE)
        assert pair.status == "paired"
        np.testing.assert_array_equal(pair.corrections, corrected)
        # strokes after the save go to a journal begun over the saved mask
        stroke(qtbot, again, 1, 75)
        assert journal_file(own_samples).is_file()
        assert np.array_equal(replayed(own_samples), s2.labels)
    finally:
        again.controller.shutdown()


def test_strokes_after_a_save_are_recovered_over_the_saved_mask(
    qtbot: QtBot, editor: MainWindow, own_samples: Path
) -> None:
    m = editor.editing.manager
    session = m.start("empty")
    stroke(qtbot, editor, 2, 20)
    assert editor.editing.save_now()
    assert not journal_file(own_samples).exists()  # cleared after the save
    saved = session.labels.copy()
    stroke(qtbot, editor, 1, 50)
    stroke(qtbot, editor, 3, 70)
    m.undo_group.undo()
    painted = session.labels.copy()
    corrected = session.corrections().copy()
    assert not np.array_equal(painted, saved)
    crash(editor)

    again = open_window(qtbot, own_samples)
    try:
        s2 = again.editing.manager.session
        np.testing.assert_array_equal(s2.labels, painted)
        np.testing.assert_array_equal(s2.corrections(), corrected)
        assert "Recovered 3 strokes" in again.notifications.last("warning").text
        again.editing.manager.undo_group.undo()  # back to exactly the saved mask
        np.testing.assert_array_equal(s2.labels, saved)
        assert not s2.dirty
    finally:
        again.controller.shutdown()


def test_a_start_that_is_not_the_saved_mask_is_journaled(
    qtbot: QtBot, editor: MainWindow, own_samples: Path, tmp_path: Path
) -> None:
    m = editor.editing.manager
    session = m.start("empty")
    stroke(qtbot, editor, 2, 20)
    assert editor.editing.save_now()
    # restarting from the 8s prediction replaces the saved mask: one journaled edit
    m.start("8s")
    prediction = editor.state.output("8s").labels
    np.testing.assert_array_equal(session.labels, prediction)
    np.testing.assert_array_equal(replayed(own_samples), prediction)
    crash(editor)
    again = open_window(qtbot, own_samples)
    try:
        np.testing.assert_array_equal(again.editing.manager.session.labels, prediction)
        assert "Recovered 1 stroke of" in again.notifications.last("warning").text
        # a mask file on an image without a session: the start itself is journaled at once
        again.editing.manager.set_annotating(False)
        with qtbot.waitSignal(again.controller.resultReady, timeout=60000):
            again.actions.next_image.trigger()
        assert again.state.document.title == "sample_01.png"
        assert again.editing.manager.session is None
        mask = np.zeros((96, 128), np.uint8)
        mask[10:40, 20:90] = 3
        write_mask(tmp_path / "mine.png", mask)
        s1 = again.editing.start_from_file(str(tmp_path / "mine.png"))
        assert s1 is not None and s1.dirty and s1.stack.count() == 0  # no edit pushed
        project = Project.open(project_dir(own_samples))
        journal = project.journal("sample_01")
        recovered, n = journal.replay(project.load_mask("sample_01"))
        assert n == 1 and np.array_equal(recovered, mask)  # nothing painted, yet safe
    finally:
        again.editing.projects.timer.stop()
        again.controller.shutdown()


def test_a_journal_that_cannot_be_written_never_costs_the_mask(
    qtbot: QtBot, editor: MainWindow, own_samples: Path
) -> None:
    m = editor.editing.manager
    session = m.start("empty")
    stroke(qtbot, editor, 2, 20)
    assert editor.editing.save_now()
    # a file where the journal folder belongs: every journal write fails (a real OSError)
    folder = project_dir(own_samples) / JOURNAL_DIR
    assert not any(folder.iterdir())
    folder.rmdir()
    folder.write_text("in the way")
    stroke(qtbot, editor, 1, 50)
    stroke(qtbot, editor, 3, 70)
    m.undo_group.undo()
    m.undo_group.redo()
    note = editor.notifications.last("warning").text
    assert "Stroke journal of sample_00.png stopped" in note and "next autosave" in note
    assert sum("Stroke journal" in n.text for n in editor.notifications.messages) == 1  # once
    painted = session.labels.copy()
    assert (painted == 3).any() and (painted == 1).any()  # editing went on
    assert session.journal.off and session.dirty
    # a save still works, and the journal resumes once its folder can be made
    folder.unlink()
    assert editor.editing.save_now()
    assert any("journal of sample_00.png works again" in n.text
               for n in editor.notifications.messages)
    stroke(qtbot, editor, 2, 80)
    assert session.journal.active
    np.testing.assert_array_equal(replayed(own_samples), session.labels)


def test_switching_project_folders_takes_the_journal_along(
    qtbot: QtBot, editor: MainWindow, own_samples: Path, tmp_path: Path
) -> None:
    m = editor.editing.manager
    session = m.start("empty")
    stroke(qtbot, editor, 2, 20)
    assert journal_file(own_samples).is_file()
    assert editor.editing.choose_project(str(tmp_path / "elsewhere"))
    assert not journal_file(own_samples).exists()  # its strokes go to the new project
    stroke(qtbot, editor, 3, 60)
    project = Project.open(tmp_path / "elsewhere")
    recovered, _ = project.journal(IMAGE).replay(project.load_mask(IMAGE))
    np.testing.assert_array_equal(recovered, session.labels)


def _lines(proc: subprocess.Popen, until: int, timeout: float) -> list[str]:
    """Read the worker's lines until ``until`` of them are ``done`` lines."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while sum(x.startswith("done") for x in lines) < until:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(f"the app worker stopped early: {lines[-3:]} "
                                 f"{proc.stderr.read()[-2000:]}")
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            lines.append(proc.stdout.readline().strip())
    return lines


@pytest.mark.slow
def test_sigkill_while_painting_in_the_real_app_recovers_every_journaled_stroke(
    qtbot: QtBot, own_samples: Path
) -> None:
    rng = random.Random(3)
    recovered_rounds = 0
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.app.features.editing.journal_app_worker",
             str(own_samples), "600"], cwd=ROOT, env=dict(os.environ),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            done_before = rng.randint(8, 20)
            lines = _lines(proc, done_before, 120)
            time.sleep(rng.uniform(0.0, 0.3))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
        lines += [x for x in proc.stdout.read().split("\n") if x]
        done = [x.split()[1] for x in lines if x.startswith("done")]
        allowed = {done[-1]}
        if lines[-1].startswith("pending"):  # killed while that step was being pushed
            allowed.add(lines[-1].split()[1])
        win = open_window(qtbot, own_samples)
        try:
            session = win.editing.manager.session
            assert session is not None, f"round {round_}: nothing restored"
            assert digest(session.labels) in allowed, (
                f"round {round_}: the recovered mask is not the painted one "
                f"({len(done)} steps done, last line {lines[-1][:12]})")
            recovered = session.dirty  # (clean: the kill came right after an autosave)
            recovered_rounds += recovered
            assert win.editing.save_now() and not session.dirty
            if recovered:
                assert not journal_file(own_samples).exists()
            np.testing.assert_array_equal(replayed(own_samples), session.labels)
        finally:
            win.controller.shutdown()
            win.close()
    assert recovered_rounds, "every kill fell right after an autosave: nothing recovered"
