"""Canvas zoom and pan, and synchronized panes."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.canvas.canvas import ImageCanvas
from app.canvas.view_sync import ViewSync
from app.common.render import ImageBuffer, rgb_image


@pytest.fixture
def image_buffer() -> ImageBuffer:
    return rgb_image(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8))


def _canvas(qtbot: QtBot, buf: ImageBuffer) -> ImageCanvas:
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(320, 240)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_image(buf)
    return canvas


def test_fit_and_actual_size(qtbot: QtBot, image_buffer: ImageBuffer) -> None:
    canvas = _canvas(qtbot, image_buffer)
    canvas.fit()
    assert canvas.zoom < 1.0
    canvas.actual_size()
    assert canvas.zoom == pytest.approx(1.0)


def test_zoom_keeps_the_point_under_the_cursor(qtbot: QtBot, image_buffer: ImageBuffer) -> None:
    canvas = _canvas(qtbot, image_buffer)
    canvas.set_zoom(2.0)
    pos = QPointF(60, 50)
    before = canvas.mapToScene(pos.toPoint())
    canvas.zoom_at(1.25, pos)
    after = canvas.mapToScene(pos.toPoint())
    assert canvas.zoom == pytest.approx(2.5)
    assert abs(before.x() - after.x()) <= 1 and abs(before.y() - after.y()) <= 1


def test_wheel_zooms_and_hover_reports_pixels(qtbot: QtBot, image_buffer: ImageBuffer) -> None:
    canvas = _canvas(qtbot, image_buffer)
    canvas.actual_size()
    pos = QPointF(120, 90)
    anchor = canvas.mapToScene(pos.toPoint())
    wheel = QWheelEvent(
        pos, canvas.viewport().mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas.viewport(), wheel)
    assert canvas.zoom == pytest.approx(1.25)
    moved = canvas.mapToScene(pos.toPoint())
    assert abs(moved.x() - anchor.x()) <= 1 and abs(moved.y() - anchor.y()) <= 1
    seen: list[tuple[int, int]] = []
    canvas.hovered.connect(lambda x, y: seen.append((x, y)))
    qtbot.mouseMove(canvas.viewport(), QPoint(100, 100))
    qtbot.mouseMove(canvas.viewport(), QPoint(101, 101))
    assert seen and seen[-1] != (-1, -1)
    assert 0 <= seen[-1][0] < 400 and 0 <= seen[-1][1] < 300


def test_panes_stay_in_sync_after_zooming_one(qtbot: QtBot, image_buffer: ImageBuffer) -> None:
    panes = [_canvas(qtbot, image_buffer) for _ in range(3)]
    sync = ViewSync(panes)
    panes[1].zoom_at(3.0, QPointF(200, 150))
    panes[1].horizontalScrollBar().setValue(panes[1].horizontalScrollBar().value() + 17)
    ref_center = panes[1].view_center()
    for canvas in panes:
        assert canvas.zoom == pytest.approx(panes[1].zoom)
        c = canvas.view_center()
        assert abs(c.x() - ref_center.x()) <= 1 and abs(c.y() - ref_center.y()) <= 1
    assert len(sync.canvases) == 3
