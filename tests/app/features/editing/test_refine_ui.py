"""Edit > Refine with Image Edges through the real editor: the CRF runs in the correction
thread, the preview marks exactly the changed pixels, Accept applies exactly those as one
undoable, journaled edit, Discard and a stroke meanwhile leave the mask."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from pytestqt.qtbot import QtBot

from app.features.editing.session import EditSession
from app.shell.main_window import MainWindow
from core.annotation.project import Project
from core.refine.crf import refine
from tests.app.conftest import Screenshot, drag
from tests.app.shell.test_shortcut_audit import clashes

IMAGE = "sample_00"


def rough_start(win: MainWindow) -> tuple[EditSession, np.ndarray]:
    """The reference mask with its disc and box grown by 3 pixels: a rough mask."""
    reference = win.state.document.reference.copy()
    rough = reference.copy()
    for cls in (1, 2):
        grown = cv2.dilate((reference == cls).astype(np.uint8), np.ones((7, 7), np.uint8))
        rough[(grown > 0) & (rough == 0)] = cls
    session = win.editing.manager.start_from(rough, "a rough mask")
    assert session is not None and win.editing.manager.annotating
    return session, rough


def wait_result(qtbot: QtBot, win: MainWindow) -> dict:
    refiner = win.editing.refiner
    qtbot.waitUntil(lambda: refiner.result is not None, timeout=60000)
    return refiner.result


def press_key(qtbot: QtBot, win: MainWindow, key: Qt.Key,
              modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    win.viewer.canvas.setFocus()
    qtbot.keyClick(win.viewer.canvas, key, modifier)


def test_refine_marks_the_changed_pixels_and_accept_changes_exactly_those(
    qtbot: QtBot, editor: MainWindow, own_samples: Path, screenshot: Screenshot
) -> None:
    session, rough = rough_start(editor)
    previews, refiner = editor.editing.previews, editor.editing.refiner
    press_key(qtbot, editor, Qt.Key.Key_R)  # Edit > Refine with Image Edges
    assert refiner.busy and previews.pending
    assert not editor.editing.actions.accept_preview.isEnabled()  # not yet
    result = wait_result(qtbot, editor)
    assert refiner.last_thread == "fcn-correct"
    image = editor.state.document.image
    core = refine(image, labels=rough, num_classes=4)  # the core, directly
    assert result["box"] == (0, 0, 128, 96)
    assert np.array_equal(result["labels"], core.labels)
    changed = result["changed"]
    assert np.array_equal(changed, core.changed) and changed.sum() > 30
    assert np.array_equal(session.labels, rough)  # nothing applied yet
    # the changed pixels are marked: their new colors and their outline, nothing else
    images = result["images"]
    h, w = images.after.shape
    drawn = np.zeros_like(changed)
    drawn[images.y:images.y + h, images.x:images.x + w] = images.after != 0
    assert np.array_equal(drawn, changed)
    outlined = np.zeros_like(changed)
    outlined[images.y:images.y + h, images.x:images.x + w] = images.marks != 0
    assert outlined.any() and not (outlined & ~changed).any()
    assert previews.marks.isVisible() and previews.after.isVisible()
    assert "pixels change" in previews.bar.label.text()
    editor.viewer.canvas.viewport().repaint()
    screenshot(editor, "correct_refine_preview")
    press_key(qtbot, editor, Qt.Key.Key_V)
    assert not previews.after.isVisible() and previews.marks.isVisible()  # before
    editor.viewer.canvas.viewport().repaint()
    screenshot(editor, "correct_refine_before")
    press_key(qtbot, editor, Qt.Key.Key_Return)  # Accept
    assert np.array_equal(session.labels, core.labels)
    assert np.array_equal(session.labels != rough, changed)  # exactly those pixels
    assert session.stack.count() == 1 and not previews.pending
    project = Project.open(own_samples / "fcn-studio-project")
    mask, _ = project.journal(IMAGE).replay(project.load_mask(IMAGE))
    assert np.array_equal(mask, session.labels)  # journaled
    editor.editing.actions.undo.trigger()
    assert np.array_equal(session.labels, rough)


def test_refine_the_part_in_view_and_discard(qtbot: QtBot, editor: MainWindow) -> None:
    session, rough = rough_start(editor)
    canvas = editor.viewer.canvas
    canvas.set_zoom(12.0)
    canvas.centerOn(QPointF(40, 30))
    press_key(qtbot, editor, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    result = wait_result(qtbot, editor)
    x0, y0, x1, y1 = result["box"]
    assert 0 < x1 - x0 < 128 and 0 < y1 - y0 < 96
    outside = np.ones(rough.shape, bool)
    outside[y0:y1, x0:x1] = False
    press_key(qtbot, editor, Qt.Key.Key_Escape)  # Discard
    assert not editor.editing.previews.pending and editor.editing.refiner.result is None
    assert np.array_equal(session.labels, rough) and session.stack.count() == 0
    press_key(qtbot, editor, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    result = wait_result(qtbot, editor)
    editor.editing.actions.accept_preview.trigger()
    assert not (session.labels != rough)[outside].any()  # only the part in view


def test_a_stroke_during_the_preview_drops_it(qtbot: QtBot, editor: MainWindow) -> None:
    session, _ = rough_start(editor)
    editor.editing.actions.refine.trigger()
    wait_result(qtbot, editor)
    editor.editing.tools.set_tool("brush")
    drag(qtbot, editor, [(10, 10), (20, 12)])
    assert editor.editing.refiner.result is None and not editor.editing.previews.pending
    assert "dropped" in editor.notifications.last("warning").text
    assert session.stack.count() == 1  # the stroke only


def test_another_image_cancels_a_running_refinement(
    qtbot: QtBot, editor: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.features.editing import correction_engine

    started, stopped = threading.Event(), threading.Event()

    def slow(*args: object, check: Callable[[], None], **kwargs: object) -> object:
        started.set()
        try:
            while True:  # until the job is cancelled
                check()
                time.sleep(0.01)
        finally:
            stopped.set()

    monkeypatch.setattr(correction_engine, "refine_box", slow)
    session, rough = rough_start(editor)
    controller = editor.editing.corrections
    with qtbot.waitSignal(controller.cancelled, timeout=30000):
        editor.editing.actions.refine.trigger()
        qtbot.waitUntil(started.is_set, timeout=30000)
        assert editor.editing.previews.pending
        assert clashes(editor) == []  # Enter, Esc and V are lent, never bound twice
        editor.actions.next_image.trigger()
    assert stopped.wait(5) and not controller.busy
    assert not editor.editing.previews.pending and editor.editing.refiner.result is None
    assert np.array_equal(session.labels, rough)


def test_the_dock_refines_and_stays_as_wide_after_the_edit(
    qtbot: QtBot, editor: MainWindow
) -> None:
    """The Annotate dock's Refine buttons run the refinement; its Undo / Redo buttons keep
    their short text, so a long step name ("Undo refine with image edges") does not widen
    the dock and move the canvas."""
    session, rough = rough_start(editor)
    dock = editor.editing.dock
    whole, visible = dock.refine_buttons
    assert whole.defaultAction() is editor.editing.actions.refine
    assert visible.defaultAction() is editor.editing.actions.refine_visible
    assert "(R)" in whole.text() and "(Shift+R)" in visible.text()
    qtbot.waitUntil(lambda: dock.isVisible())
    canvas = editor.viewer.canvas
    width, canvas_x = dock.width(), canvas.mapTo(editor, canvas.rect().topLeft()).x()
    qtbot.mouseClick(whole, Qt.MouseButton.LeftButton)
    wait_result(qtbot, editor)
    editor.editing.actions.accept_preview.trigger()
    assert session.stack.count() == 1 and not np.array_equal(session.labels, rough)
    editor.editing.actions.undo.trigger()  # a redo step named too
    editor.editing.actions.redo.trigger()
    assert editor.editing.actions.undo.text().endswith("refine with image edges")
    qtbot.wait(50)
    undo_button = next(b for b in dock.findChildren(type(whole))
                       if b.defaultAction() is editor.editing.actions.undo)
    assert undo_button.text() == "Undo"
    assert dock.width() == width
    assert canvas.mapTo(editor, canvas.rect().topLeft()).x() == canvas_x
