"""The editor's keys and clicks as a new user meets them: Redo's keys, the class and brush
keys wherever the focus is, and a click that only brings the window forward."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from app.features.editing import tool_controller
from app.shell.main_window import MainWindow
from tests.app.conftest import click, drag

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def annotate_empty(win: MainWindow) -> object:
    session = win.editing.manager.start("empty")
    assert session is not None and win.editing.manager.annotating
    return session


def ambiguous(qtlog: object) -> list[str]:
    return [r.message for r in qtlog.records if "Ambiguous" in r.message]


def test_redo_works_with_ctrl_shift_z_and_ctrl_y(
    qtbot: QtBot, editor: MainWindow, qtlog: object
) -> None:
    session = annotate_empty(editor)
    editor.editing.tools.set_class(2)
    drag(qtbot, editor, [(10, 10), (40, 30)])
    painted = session.labels.copy()
    assert (painted == 2).any()
    canvas = editor.viewer.canvas
    for redo in ((Qt.Key.Key_Z, CTRL | SHIFT), (Qt.Key.Key_Y, CTRL)):
        qtbot.keyClick(canvas, Qt.Key.Key_Z, CTRL)  # undo
        assert not (session.labels == 2).any()
        qtbot.keyClick(canvas, *redo)
        assert np.array_equal(session.labels, painted), redo
    assert ambiguous(qtlog) == []


def test_class_and_size_keys_work_wherever_the_focus_is(
    qtbot: QtBot, editor: MainWindow, qtlog: object
) -> None:
    win = editor
    annotate_empty(win)
    tools, dock = win.editing.tools, win.editing.dock
    tools.set_size(5)
    # the focus in the Annotate dock (Start button), then in the file list: keys still work
    for widget, digit, cls in ((dock.start_button, Qt.Key.Key_3, 3),
                               (win.file_list, Qt.Key.Key_2, 2)):
        widget.setFocus()
        qtbot.waitUntil(widget.hasFocus, timeout=2000)
        qtbot.keyClick(widget, digit)
        assert tools.cls == cls and dock.class_box.currentData() == cls
    qtbot.keyClick(win.file_list, Qt.Key.Key_BracketRight)
    qtbot.keyClick(win.file_list, Qt.Key.Key_BracketRight)
    assert tools.size == 7 and dock.size_spin.value() == 7
    qtbot.keyClick(win.file_list, Qt.Key.Key_BracketLeft)
    assert tools.size == 6
    # "1" is class 1 while annotating (View > Actual Size keeps Ctrl+1) ...
    canvas = win.viewer.canvas
    canvas.set_zoom(4.0)
    qtbot.keyClick(win.file_list, Qt.Key.Key_1)
    assert tools.cls == 1 and canvas.zoom == pytest.approx(4.0)
    qtbot.keyClick(win.file_list, Qt.Key.Key_1, CTRL)
    assert canvas.zoom == pytest.approx(1.0)
    # ... a text field keeps its digits
    dock.size_spin.setFocus()
    qtbot.waitUntil(dock.size_spin.hasFocus, timeout=2000)
    dock.size_spin.selectAll()
    qtbot.keyClicks(dock.size_spin, "3")
    assert tools.cls == 1 and dock.size_spin.value() == 3 and tools.size == 3
    # another tab in front: the digits are not the editor's ("1" is 100% there)
    win.tabs.setCurrentWidget(win.compare)
    win.file_list.setFocus()
    pane = win.compare.panes["8s"].canvas
    pane.set_zoom(3.0)
    qtbot.keyClick(win.file_list, Qt.Key.Key_3)
    qtbot.keyClick(win.file_list, Qt.Key.Key_1)
    assert tools.cls == 1 and pane.zoom == pytest.approx(1.0)
    # not annotating: "1" is 100% in the viewer too
    win.tabs.setCurrentWidget(win.viewer)
    win.editing.manager.set_annotating(False)
    canvas.set_zoom(4.0)
    qtbot.keyClick(win.file_list, Qt.Key.Key_1)
    qtbot.keyClick(win.file_list, Qt.Key.Key_3)
    assert canvas.zoom == pytest.approx(1.0) and tools.cls == 1
    assert ambiguous(qtlog) == []


def test_a_click_that_activates_the_window_only_focuses_the_canvas(
    qtbot: QtBot, editor: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    win = editor
    session = annotate_empty(win)
    win.editing.tools.set_class(1)
    canvas = win.viewer.canvas
    other = QWidget()
    qtbot.addWidget(other)
    other.show()
    other.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is other, timeout=5000)
    assert not win.isActiveWindow()
    click(qtbot, win, 20, 20)  # brings the window forward: no paint
    assert session.stack.count() == 0 and not (session.labels == 1).any()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    assert canvas.hasFocus()
    click(qtbot, win, 20, 20)  # now it paints
    assert session.stack.count() == 1 and session.labels[20, 20] == 1
    # the window became active an instant before the press (Qt handled the activation of
    # that very click first): focus only, once
    monkeypatch.setattr(tool_controller, "ACTIVATION_CLICK_S", 60.0)
    QApplication.sendEvent(canvas, QEvent(QEvent.Type.WindowActivate))
    click(qtbot, win, 30, 20)
    assert session.stack.count() == 1 and session.labels[20, 30] == 0
    click(qtbot, win, 30, 20)
    assert session.stack.count() == 2 and session.labels[20, 30] == 1
    # in the active window a press paints even when another widget had the focus (no key
    # needs the canvas focus; the first stroke after using the dock is meant)
    win.editing.dock.class_box.setFocus()
    qtbot.waitUntil(win.editing.dock.class_box.hasFocus, timeout=2000)
    click(qtbot, win, 40, 20)
    assert session.stack.count() == 3 and session.labels[20, 40] == 1
