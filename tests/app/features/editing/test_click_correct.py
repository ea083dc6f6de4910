"""Click correction through real mouse and key events: a click on a wrong region previews
the adapted model's change there (computed in the correction thread, as the core computes
it), Enter applies it as one undoable, journaled edit whose pixels count as corrected,
Esc leaves the mask; a new image or model drops pending clicks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.features.editing.session import EditSession
from app.shell.main_window import MainWindow
from core.annotation.project import Project
from tests.app.conftest import Screenshot, vpos

IMAGE = "sample_00"


def start_from_prediction(win: MainWindow) -> EditSession:
    session = win.editing.manager.start("8s")
    assert session is not None and win.editing.manager.annotating
    return session


def core_preview(win: MainWindow, labels: np.ndarray, x: int, y: int, label: int,
                 positive: bool = True) -> np.ndarray:
    """The preview region the core computes for one click (its own model copy)."""
    from core.checkpoints.checkpoint import load_checkpoint
    from core.insight.features import image_tensor, trunk_features
    from core.refine.clicks import Click, ClickConfig, ClickCorrector

    model, info = load_checkpoint(win.models.checkpoint)
    image = win.state.document.image
    feats = trunk_features(model.eval(), image_tensor(image, info.preprocessing))
    corrector = ClickCorrector(model, feats, labels, ClickConfig(), image=image)
    corrector.add(Click(x, y, label, positive))
    return corrector.preview().region


def wait_preview(qtbot: QtBot, win: MainWindow) -> dict:
    clicks = win.editing.clicks
    qtbot.waitUntil(lambda: clicks.result is not None and clicks._job is None, timeout=60000)
    return clicks.result


def press_key(qtbot: QtBot, win: MainWindow, key: Qt.Key) -> None:
    win.viewer.canvas.setFocus()
    qtbot.keyClick(win.viewer.canvas, key)


def test_a_positive_click_previews_and_enter_applies_corrected_pixels(
    qtbot: QtBot, editor: MainWindow, own_samples: Path, screenshot: Screenshot
) -> None:
    session = start_from_prediction(editor)
    before = session.labels.copy()
    assert not np.asarray(session.corrections()).any()
    tools, clicks, previews = editor.editing.tools, editor.editing.clicks, editor.editing.previews
    jobs = editor.editing.corrections
    press_key(qtbot, editor, Qt.Key.Key_K)
    assert tools.tool == "correct"
    # choosing the tool computes the image's trunk features in the correction thread
    assert [j.kind for j in jobs.pending()][-1] == "click_prepare"
    with qtbot.waitSignal(jobs.finished, timeout=60000,
                          check_params_cb=lambda job, _r: job.kind == "click_prepare") as done:
        pass
    assert done.args[1].value is True and done.args[1].thread == "fcn-correct"
    x, y = 100, 80
    label = (int(before[y, x]) + 1) % 4  # the mask is wrong here: it is this class
    tools.set_class(label)
    qtbot.mouseClick(editor.viewer.canvas.viewport(), Qt.MouseButton.LeftButton,
                     pos=vpos(editor, x, y))
    assert previews.pending and not editor.editing.actions.accept_preview.isEnabled()
    result = wait_preview(qtbot, editor)
    assert clicks.last_thread == "fcn-correct" and not result["first"]  # (prepared)
    region = result["region"]
    assert result["box"] == (0, 0, 128, 96) and region[y, x] and region.sum() > 20
    assert (result["labels"][region] == label).all()
    assert np.array_equal(region, core_preview(editor, before, x, y, label))
    # the preview: new labels over the changed pixels, their outline, the bar, the keys
    images = result["images"]
    h, w = images.after.shape
    shown = np.zeros_like(region)
    shown[images.y:images.y + h, images.x:images.x + w] = images.after != 0
    assert np.array_equal(shown, region)
    assert previews.after.isVisible() and previews.marks.array is images.marks
    assert previews.bar.isVisible() and "pixels change" in previews.bar.label.text()
    assert clicks.marks.hints and clicks.marks.hints[0].positive
    assert np.array_equal(session.labels, before)  # nothing applied yet
    editor.viewer.canvas.viewport().repaint()
    screenshot(editor, "correct_click_preview")
    press_key(qtbot, editor, Qt.Key.Key_V)  # before / after
    assert not previews.after.isVisible()
    press_key(qtbot, editor, Qt.Key.Key_V)
    assert previews.after.isVisible()

    press_key(qtbot, editor, Qt.Key.Key_Return)  # accept
    expected = before.copy()
    expected[region] = label
    assert np.array_equal(session.labels, expected)
    assert np.array_equal(np.asarray(session.corrections()), region)  # corrected pixels
    assert session.stack.count() == 1 and session.stack.command(0).text() == \
        "click correction"
    assert not previews.pending and not previews.bar.isVisible() and not clicks.hints
    project = Project.open(own_samples / "fcn-studio-project")
    mask, _ = project.journal(IMAGE).replay(project.load_mask(IMAGE))
    assert np.array_equal(mask, session.labels)  # journaled
    editor.editing.actions.undo.trigger()
    assert np.array_equal(session.labels, before)


def test_a_negative_click_and_esc_leave_the_mask(qtbot: QtBot, editor: MainWindow) -> None:
    session = start_from_prediction(editor)
    before = session.labels.copy()
    editor.editing.tools.set_tool("correct")
    clicks, previews = editor.editing.clicks, editor.editing.previews
    x, y = 30, 30
    qtbot.mouseClick(editor.viewer.canvas.viewport(), Qt.MouseButton.RightButton,
                     pos=vpos(editor, x, y))  # "this is not what the mask says"
    result = wait_preview(qtbot, editor)
    assert not clicks.marks.hints[0].positive
    if result["region"].any():
        assert (result["labels"][result["region"]] != before[y, x]).all()
    cancel = editor.actions.cancel
    assert not any(k.toString() == "Esc" for k in cancel.shortcuts())  # lent to Discard
    press_key(qtbot, editor, Qt.Key.Key_Escape)
    assert np.array_equal(session.labels, before) and session.stack.count() == 0
    assert not previews.pending and not clicks.hints and clicks.result is None
    assert any(k.toString() == "Esc" for k in cancel.shortcuts())  # given back


def test_a_scribble_and_a_second_click_then_another_image_drops_them(
    qtbot: QtBot, editor: MainWindow
) -> None:
    session = start_from_prediction(editor)
    before = session.labels.copy()
    tools, clicks = editor.editing.tools, editor.editing.clicks
    tools.set_tool("correct")
    tools.set_class((int(before[45, 60]) + 1) % 4)
    vp = editor.viewer.canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=vpos(editor, 55, 45))
    for px in range(56, 66):
        qtbot.mouseMove(vp, vpos(editor, px, 45))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=vpos(editor, 65, 45))
    assert len(clicks.hints) == 1 and len(clicks.hints[0].points) > 5  # a scribble
    wait_preview(qtbot, editor)
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                     vpos(editor, 20, 70))  # Shift: negative
    assert len(clicks.hints) == 2 and not clicks.hints[1].positive
    wait_preview(qtbot, editor)
    assert not clicks.result["first"]  # the trunk features were cached
    with qtbot.waitSignal(editor.controller.resultReady, timeout=60000):
        editor.actions.next_image.trigger()
    assert not clicks.hints and not editor.editing.previews.pending
    assert np.array_equal(session.labels, before)
