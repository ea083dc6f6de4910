"""The brush size, the eraser's target and the tool are kept across sessions."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.shell.main_window import MainWindow
from tests.app.conftest import open_window


def test_brush_size_eraser_and_tool_are_kept_across_sessions(
    qtbot: QtBot, editor: MainWindow, own_samples: Path
) -> None:
    win = editor
    assert win.editing.manager.start("empty") is not None
    dock = win.editing.dock
    dock.size_spin.setValue(4)
    qtbot.keyClick(win.file_list, Qt.Key.Key_BracketRight)  # the key, too
    dock.eraser_box.setCurrentIndex(dock.eraser_box.findData(255))
    dock.eraser_box.activated.emit(dock.eraser_box.currentIndex())
    qtbot.keyClick(win.file_list, Qt.Key.Key_G)  # Fill
    qtbot.keyClick(win.file_list, Qt.Key.Key_I)  # the eyedropper is a one-click tool...
    assert win.editing.tools.tool == "eyedropper"
    win.close()
    win.controller.shutdown()
    second = open_window(qtbot, own_samples)  # a new session, the same settings file
    try:
        tools, dock = second.editing.tools, second.editing.dock
        assert tools.size == 5 and dock.size_spin.value() == 5
        assert tools.eraser_value == 255 and dock.eraser_box.currentData() == 255
        assert tools.tool == "fill"  # ... not kept: the tool it returns to is
        assert second.editing.actions.tools["fill"].isChecked()
    finally:
        second.controller.shutdown()
