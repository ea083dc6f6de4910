"""Mask editing driven by real mouse and key events on the viewer canvas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.features.editing.cursor import brush_radius
from app.features.editing.mask_layer import label_lut
from app.features.editing.session import EditSession
from app.shell.main_window import MainWindow
from core.annotation import brush_stroke, lasso, polygon_fill
from tests.app.conftest import Screenshot, click, drag, vpos

LEFT = Qt.MouseButton.LeftButton


def empty_session(win: MainWindow) -> EditSession:
    session = win.editing.manager.start("empty")
    assert session is not None and win.editing.manager.annotating
    return session


def test_a_stroke_sets_exactly_the_expected_pixels(qtbot: QtBot, editor: MainWindow) -> None:
    session = empty_session(editor)
    tools = editor.editing.tools
    tools.set_tool("brush")
    tools.set_class(2)
    tools.set_size(5)
    path = [(10, 10), (20, 12), (30, 20)]
    drag(qtbot, editor, path)
    shape = session.labels.shape
    expected = brush_stroke(path, brush_radius(5), shape).to_full(shape)
    assert np.array_equal(session.labels == 2, expected)
    assert set(np.unique(session.labels)) == {0, 2}
    assert session.stack.count() == 1 and session.dirty  # one undo command per stroke
    assert editor.isWindowModified()
    # the mask layer shows exactly the labels (LUT colors) and replaces the overlay
    layer = editor.editing.manager.layer
    lut = label_lut(editor.state.colors(), editor.state.hidden_classes)
    assert np.array_equal(layer.argb, lut[session.labels])
    assert layer.isVisible() and not editor.viewer.canvas.overlay_layer.isVisible()


def test_a_fast_stroke_leaves_no_gaps(qtbot: QtBot, editor: MainWindow) -> None:
    session = empty_session(editor)
    tools = editor.editing.tools
    tools.set_class(1)
    tools.set_size(3)
    drag(qtbot, editor, [(5, 5), (110, 80)])  # one mouse move across the image
    painted = session.labels == 1
    for t in np.linspace(0, 1, 400):
        x, y = round(5 + t * 105), round(5 + t * 75)
        assert painted[y, x], f"gap at {(x, y)}"
    expected = brush_stroke([(5, 5), (110, 80)], 1.0, painted.shape).to_full(painted.shape)
    assert np.array_equal(painted, expected)


def test_each_move_repaints_only_its_dirty_rectangle(
    qtbot: QtBot, editor: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_session(editor)
    layer = editor.editing.manager.layer
    rects = []
    monkeypatch.setattr(layer, "update_region", lambda rect: rects.append(rect))
    editor.editing.tools.set_size(5)
    drag(qtbot, editor, [(20, 20), (24, 20), (28, 21)])
    assert len(rects) == 3
    assert all(r.width() <= 10 and r.height() <= 6 for r in rects), rects


def test_undo_and_redo_restore_the_mask_byte_for_byte(qtbot: QtBot, editor: MainWindow) -> None:
    session = empty_session(editor)
    tools, actions = editor.editing.tools, editor.editing.actions
    states = [session.labels.copy()]
    tools.set_size(7)
    tools.set_class(1)
    drag(qtbot, editor, [(10, 10), (60, 40)])
    states.append(session.labels.copy())
    tools.set_tool("eraser")
    tools.set_eraser_value(255)
    drag(qtbot, editor, [(30, 5), (30, 60)])
    states.append(session.labels.copy())
    assert (session.labels == 255).any()  # erased to void
    tools.set_tool("fill")
    tools.set_class(3)
    click(qtbot, editor, 100, 80)  # the untouched background region
    states.append(session.labels.copy())
    tools.set_tool("brush")
    tools.set_class(2)
    drag(qtbot, editor, [(70, 20), (75, 60), (90, 70)])
    states.append(session.labels.copy())
    assert session.stack.count() == 4
    for expected in reversed(states[:-1]):
        actions.undo.trigger()
        assert np.array_equal(session.labels, expected)
    assert not session.dirty and not editor.isWindowModified()
    for expected in states[1:]:
        actions.redo.trigger()
        assert np.array_equal(session.labels, expected)
    layer = editor.editing.manager.layer
    lut = label_lut(editor.state.colors(), editor.state.hidden_classes)
    assert np.array_equal(layer.argb, lut[session.labels])


def test_fill_polygon_lasso_and_eyedropper(qtbot: QtBot, editor: MainWindow) -> None:
    doc = editor.state.document
    start = np.zeros((doc.height, doc.width), np.uint8)
    start[20:40, 30:60] = 1
    start[60:70, 10:20] = 1
    session = editor.editing.manager.start_from(start, "test mask")
    tools = editor.editing.tools
    tools.set_tool("fill")
    tools.set_class(3)
    click(qtbot, editor, 40, 30)
    expected = start.copy()
    expected[20:40, 30:60] = 3  # only the contiguous region, not the other class-1 box
    assert np.array_equal(session.labels, expected)
    editor.editing.dock.contiguous_box.setChecked(False)  # every pixel of the clicked class
    assert not tools.fill_contiguous
    tools.set_class(2)
    click(qtbot, editor, 5, 5)  # background: all of it, both boxes untouched
    all_bg = expected == 0
    expected[all_bg] = 2
    assert np.array_equal(session.labels, expected)
    editor.editing.actions.undo.trigger()
    expected[all_bg] = 0
    assert np.array_equal(session.labels, expected)
    tools.set_fill_contiguous(True)
    assert editor.editing.dock.contiguous_box.isChecked()

    tools.set_tool("polygon")
    tools.set_class(2)
    vertices = [(70, 10), (100, 12), (95, 40), (72, 35)]
    for v in vertices:
        click(qtbot, editor, *v)
    assert tools.busy and tools.preview.isVisible()
    canvas = editor.viewer.canvas
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    shape = start.shape
    expected[polygon_fill(vertices, shape).to_full(shape)] = 2
    assert np.array_equal(session.labels, expected)

    tools.set_tool("lasso")
    tools.set_class(1)
    path = [(10, 75), (25, 72), (35, 85), (20, 92), (8, 88)]
    drag(qtbot, editor, path)
    expected[lasso(path, shape).to_full(shape)] = 1
    assert np.array_equal(session.labels, expected)

    tools.set_tool("brush")
    tools.set_tool("eyedropper")
    click(qtbot, editor, 80, 20)
    assert tools.cls == 2 and tools.tool == "brush"  # back to the previous tool
    assert session.stack.count() == 3


def test_keys_wheel_and_cursor_footprint(qtbot: QtBot, editor: MainWindow) -> None:
    empty_session(editor)
    tools = editor.editing.tools
    canvas = editor.viewer.canvas
    canvas.setFocus()
    tools.set_size(5)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert tools.size == 6
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert tools.size == 4
    qtbot.keyClick(canvas, Qt.Key.Key_3)
    assert tools.cls == 3
    assert editor.editing.dock.class_box.currentData() == 3
    qtbot.keyClick(canvas, Qt.Key.Key_7)  # no class 7 in a 4-class model
    assert tools.cls == 3 and "no class 7" in editor.notifications.last().text
    qtbot.keyClick(canvas, Qt.Key.Key_E)  # tool shortcuts
    assert tools.tool == "eraser"
    qtbot.keyClick(canvas, Qt.Key.Key_B)
    assert tools.tool == "brush"
    pos = QPointF(vpos(editor, 40, 30))
    wheel = QWheelEvent(pos, canvas.viewport().mapToGlobal(pos), QPoint(), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    zoom = canvas.zoom
    QApplication.sendEvent(canvas.viewport(), wheel)
    assert tools.size == 5 and canvas.zoom == zoom  # Ctrl+wheel sizes, does not zoom
    tools.set_size(7)
    qtbot.mouseMove(canvas.viewport(), vpos(editor, 40, 30))
    cursor = tools.cursor
    assert cursor.isVisible() and (cursor.pos().x(), cursor.pos().y()) == (40, 30)
    box = cursor.footprint().boundingRect()
    assert (box.left(), box.top(), box.width(), box.height()) == (-3, -3, 7, 7)


def test_paint_only_over_one_class(qtbot: QtBot, editor: MainWindow) -> None:
    doc = editor.state.document
    start = np.zeros((doc.height, doc.width), np.uint8)
    start[:, 40:] = 1
    session = editor.editing.manager.start_from(start, "halves")
    tools = editor.editing.tools
    tools.set_preserve(1)
    tools.set_class(2)
    tools.set_size(9)
    drag(qtbot, editor, [(30, 30), (50, 30)])
    changed = session.labels != start
    assert changed.any() and (start[changed] == 1).all() and (session.labels[changed] == 2).all()


def test_restart_from_a_prediction_is_undoable_and_annotate_off_shows_the_overlay(
    qtbot: QtBot, editor: MainWindow
) -> None:
    m = editor.editing.manager
    session = m.start("8s")
    assert np.array_equal(session.labels, editor.state.output("8s").labels)
    assert not session.dirty  # nothing to save until the user edits it
    m.start("empty")
    assert (session.labels == 0).all() and session.stack.count() == 1
    editor.editing.actions.undo.trigger()
    assert np.array_equal(session.labels, editor.state.output("8s").labels)
    editor.editing.actions.annotate.setChecked(False)
    editor.viewer.refresh_now()
    assert not m.layer.isVisible() and editor.viewer.canvas.overlay_layer.isVisible()
    assert editor.viewer.canvas.left_pans


def test_200_strokes_on_4096_squared_keep_the_undo_history_under_100_mb(qtbot: QtBot) -> None:
    session = EditSession(None, np.zeros((4096, 4096), np.uint8), 21, "test")
    rng = np.random.default_rng(0)
    shape = session.labels.shape
    for _ in range(200):
        stroke = session.image.begin_stroke(int(rng.integers(1, 21)))
        p = rng.uniform(0, 4096, 2)
        for _ in range(20):
            q = np.clip(p + rng.normal(0, 60, 2), 0, 4095)
            stroke.add(brush_stroke([p, q], 25.0, shape))
            p = q
        session.push(stroke.finish())
    assert session.stack.count() == 200
    assert session.history_bytes() < 100 * 2**20
    final = session.labels.copy()
    while session.stack.canUndo():
        session.stack.undo()
    assert not session.labels.any()
    while session.stack.canRedo():
        session.stack.redo()
    assert np.array_equal(session.labels, final)


def test_screenshot_of_the_editing_view(
    qtbot: QtBot, editor: MainWindow, screenshot: Screenshot
) -> None:
    m = editor.editing.manager
    m.start("8s")
    tools = editor.editing.tools
    tools.set_class(2)
    tools.set_size(9)
    drag(qtbot, editor, [(15, 60), (40, 70), (70, 66)])
    tools.set_tool("polygon")
    for v in [(80, 15), (110, 20), (100, 45)]:
        click(qtbot, editor, *v)
    tools.set_tool("brush")  # (cancels the polygon) show the brush cursor
    tools.set_tool("polygon")
    for v in [(80, 15), (110, 20), (100, 45)]:
        click(qtbot, editor, *v)
    qtbot.mouseMove(editor.viewer.canvas.viewport(), vpos(editor, 88, 50))
    editor.editing.dock.parentWidget().raise_()
    editor.viewer.refresh_now()
    path = screenshot(editor, "editing")
    assert path.is_file()
    # the file holds the window as it is on screen, the corrected mask over the image
    saved = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB32)
    assert saved == editor.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert (m.session.labels == 2).sum() > 100  # the stroke and the polygon are painted
    canvas = editor.viewer.canvas
    shown = canvas.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    top_left = canvas.viewport().mapTo(editor, canvas.viewport().rect().topLeft())
    ratio = saved.width() / editor.width()
    inside = saved.copy(round(top_left.x() * ratio), round(top_left.y() * ratio),
                        shown.width(), shown.height())
    assert inside == shown  # the viewer's pixels, mask layer included, are in the file


def test_start_from_a_mask_file_checks_size_and_classes(
    qtbot: QtBot, editor: MainWindow, tmp_path: Path
) -> None:
    from core.data.imageio import write_mask

    doc = editor.state.document
    good = np.zeros((doc.height, doc.width), np.uint8)
    good[10:30, 10:50] = 3
    good[0, :5] = 255
    write_mask(tmp_path / "good.png", good)
    write_mask(tmp_path / "small.png", good[:50])
    bad = good.copy()
    bad[5, 5] = 9  # not a class of the 4-class model
    write_mask(tmp_path / "bad.png", bad)
    editing = editor.editing
    editing.start_from_file(str(tmp_path / "small.png"))
    assert editing.manager.session is None and "the image 128x96" in \
        editor.notifications.last("error").text
    editing.start_from_file(str(tmp_path / "bad.png"))
    assert editing.manager.session is None and "[9]" in editor.notifications.last("error").text
    session = editing.start_from_file(str(tmp_path / "good.png"))
    assert np.array_equal(session.labels, good) and session.corrections() is True
    assert session.dirty and editor.isWindowModified()  # a loaded mask is unsaved until written


def test_legend_and_metrics_follow_the_corrected_mask(qtbot: QtBot, editor: MainWindow) -> None:
    from app.panels.stats_panel import AGAINST_EDITED, AGAINST_REFERENCE
    from core.metrics import label_scores

    legend, stats, state = editor.legend, editor.stats, editor.state
    m = editor.editing.manager
    session = m.start("8s")
    n = len(state.class_names())

    def header() -> str:
        return legend.headerItem().text(1)

    def share(cls: int) -> str:
        return legend.topLevelItem(cls).text(1)

    def expected_share(cls: int) -> str:
        labels = session.labels
        return f"{(labels == cls).sum() / (labels != 255).sum():.1%}"

    qtbot.waitUntil(lambda: header() == "Your mask", timeout=3000)
    assert all(share(c) == expected_share(c) for c in range(n))
    # Metrics: the reference by default (the sample has one), the corrected mask on request.
    qtbot.waitUntil(lambda: stats.against_row.isVisibleTo(stats), timeout=3000)
    ref_iu = stats.value("mean_iu", "8s")
    assert stats.against == AGAINST_REFERENCE and ref_iu
    stats.against_box.setCurrentIndex(stats.against_box.findData(AGAINST_EDITED))
    stats.against_box.activated.emit(stats.against_box.currentIndex())
    assert stats.value("mean_iu", "8s") == "1.000"  # the mask is the 8s prediction, as yet
    assert "corrected mask" in stats.note.text()
    before_32s = stats.value("mean_iu", "32s")
    # A stroke of another class: both follow (after their short coalescing delay).
    editor.editing.tools.set_class(2)
    editor.editing.tools.set_size(15)
    drag(qtbot, editor, [(10, 20), (60, 30), (100, 60)])
    assert session.stack.count() == 1
    qtbot.waitUntil(lambda: stats.value("mean_iu", "8s") != "1.000", timeout=3000)
    qtbot.waitUntil(lambda: share(2) == expected_share(2), timeout=3000)
    assert all(share(c) == expected_share(c) for c in range(n))
    for variant in ("32s", "16s", "8s"):
        fresh = label_scores(state.output(variant).labels, session.labels, n)
        assert stats.value("mean_iu", variant) == f"{fresh['mean_iu']:.3f}"
        assert stats.value("pixel_acc", variant) == f"{fresh['pixel_acc']:.3f}"
    assert stats.value("mean_iu", "32s") != before_32s
    editor.editing.actions.undo.trigger()
    qtbot.waitUntil(lambda: stats.value("mean_iu", "8s") == "1.000", timeout=3000)
    stats.set_against(AGAINST_REFERENCE)
    assert stats.value("mean_iu", "8s") == ref_iu
    editor.editing.actions.annotate.setChecked(False)
    qtbot.waitUntil(lambda: header() == "Pixels (8s)", timeout=3000)
