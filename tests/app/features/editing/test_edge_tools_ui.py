"""The edge-aware tools through real mouse events on the editor: superpixel brush and fill,
magic wand and polygon snapping; each is one undo step and journaled, computed off the GUI
thread where it is heavy."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.features.editing.correction_engine import SuperpixelMap, compute_superpixels
from app.features.editing.cursor import brush_radius
from app.features.editing.edge_tools_ui import EdgeToolOptions
from app.features.editing.session import EditSession
from app.shell.main_window import MainWindow
from core.annotation import polygon_fill
from core.annotation.edge_tools import Superpixels, magic_wand, superpixel_brush, superpixel_fill
from core.annotation.project import Project
from tests.app.conftest import Screenshot, click, drag

IMAGE = "sample_00"


def start(win: MainWindow) -> EditSession:
    session = win.editing.manager.start("empty")
    assert session is not None and win.editing.manager.annotating
    return session


def journal_replays(folder: Path, session: EditSession) -> bool:
    """Whether the project's stroke journal replays to the mask being edited."""
    project = Project.open(folder / "fcn-studio-project")
    mask, _ = project.journal(IMAGE).replay(project.load_mask(IMAGE))
    return mask is not None and np.array_equal(mask, session.labels)


def wait_superpixels(qtbot: QtBot, win: MainWindow) -> SuperpixelMap:
    edge = win.editing.edge
    qtbot.waitUntil(lambda: edge.current_map() is not None, timeout=60000)
    return edge.current_map()


def test_the_superpixel_brush_paints_whole_superpixels(
    qtbot: QtBot, editor: MainWindow, own_samples: Path, screenshot: Screenshot
) -> None:
    session = start(editor)
    tools, edge = editor.editing.tools, editor.editing.edge
    tools.set_class(2)
    tools.set_size(3)
    editor.editing.actions.tools["superpixel"].trigger()  # the menu action, as S does
    assert tools.tool == "superpixel"
    found = wait_superpixels(qtbot, editor)
    assert found.thread == "fcn-correct"  # computed in the correction thread
    assert edge.edges.isVisible() and edge.edges.array is found.edges  # the boundaries
    image = editor.state.document.image
    core = Superpixels(image, size=edge.sp_size)  # the core, directly
    assert np.array_equal(found.superpixels.labels, core.labels)
    path = [(20, 20), (40, 30), (60, 35)]
    drag(qtbot, editor, path)
    shape = session.labels.shape
    expected = superpixel_brush(core, path, brush_radius(3)).to_full(shape)
    assert np.array_equal(session.labels == 2, expected)
    painted = np.unique(core.labels[expected])
    assert np.array_equal(np.isin(core.labels, painted), expected)  # whole superpixels
    assert expected.sum() > 3 * len(path) * 9  # more than the brush's own disc
    assert session.stack.count() == 1 and journal_replays(own_samples, session)
    editor.viewer.canvas.viewport().repaint()
    screenshot(editor, "correct_superpixel_brush")
    editor.editing.actions.undo.trigger()
    assert not session.labels.any() and journal_replays(own_samples, session)
    tools.set_tool("brush")
    assert not edge.edges.isVisible()  # only while a superpixel tool is in use


def test_superpixel_fill_takes_like_coloured_neighbours(qtbot: QtBot, editor: MainWindow,
                                                        own_samples: Path) -> None:
    session = start(editor)
    tools, edge = editor.editing.tools, editor.editing.edge
    tools.set_tool("superfill")
    tools.set_class(1)
    found = wait_superpixels(qtbot, editor)
    options = editor.editing.dock.findChild(EdgeToolOptions)
    options.fill.setValue(0.0)  # the dock's control
    assert edge.fill_tolerance == 0.0
    click(qtbot, editor, 100, 80)
    one = superpixel_fill(found.superpixels, (100, 80)).to_full(session.labels.shape)
    assert np.array_equal(session.labels == 1, one)
    options.fill.setValue(30.0)
    tools.set_class(3)
    click(qtbot, editor, 100, 80)
    many = superpixel_fill(found.superpixels, (100, 80), tolerance=30.0).to_full(one.shape)
    assert many.sum() > one.sum() and np.array_equal(session.labels == 3, many)
    assert session.stack.count() == 2 and journal_replays(own_samples, session)


def test_the_magic_wand_fills_the_colour_region(qtbot: QtBot, editor: MainWindow,
                                               own_samples: Path) -> None:
    session = start(editor)
    tools = editor.editing.tools
    image = editor.state.document.image
    red = np.all(image == (220, 60, 40), axis=2).astype(np.uint8)  # the red disc
    inside = cv2.distanceTransform(red, cv2.DIST_L2, 3)
    y, x = np.unravel_index(int(np.argmax(inside)), red.shape)  # its deepest pixel
    editor.viewer.canvas.setFocus()
    qtbot.keyClick(editor.viewer.canvas, Qt.Key.Key_W)
    assert tools.tool == "wand"
    tools.set_class(1)
    editor.editing.dock.findChild(EdgeToolOptions).wand.setValue(10)
    assert editor.editing.edge.wand_tolerance == 10
    click(qtbot, editor, x, y)
    disc = magic_wand(image, (x, y), 10).to_full(session.labels.shape)
    assert np.array_equal(session.labels == 1, disc)
    _, parts = cv2.connectedComponents(red, connectivity=8)
    assert disc.sum() > 100 and np.array_equal(disc, parts == parts[y, x])  # the red part
    assert session.stack.count() == 1 and journal_replays(own_samples, session)
    editor.editing.actions.undo.trigger()
    assert not session.labels.any()


def test_snap_moves_polygon_vertices_onto_the_box_edges(
    qtbot: QtBot, editor: MainWindow, own_samples: Path, screenshot: Screenshot
) -> None:
    session = start(editor)
    tools = editor.editing.tools
    image = editor.state.document.image
    box = np.all(image == (40, 70, 220), axis=2)  # the blue box
    rows, cols = np.flatnonzero(box.any(1)), np.flatnonzero(box.any(0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    rough = [(x0 + 3, y0 - 2), (x1 - 2, y0 + 3), (x1 + 2, y1 - 3), (x0 - 2, y1 + 2)]
    editor.editing.actions.snap.trigger()  # Edit > Snap Polygon to Edges
    assert tools.snap_edges
    tools.set_tool("polygon")
    tools.set_class(2)
    for v in rough:
        click(qtbot, editor, *v)
    editor.viewer.canvas.setFocus()
    qtbot.keyClick(editor.viewer.canvas, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: session.stack.count() == 1, timeout=30000)
    painted = session.labels == 2
    truth = box.copy()
    plain = polygon_fill(rough, painted.shape).to_full(painted.shape)

    def iou(a: np.ndarray) -> float:
        return float((a & truth).sum() / (a | truth).sum())

    assert iou(painted) > 0.9 > iou(plain)
    assert session.stack.command(0).text() == "polygon (snapped)"
    assert journal_replays(own_samples, session)
    screenshot(editor, "correct_snap_polygon")


def test_a_large_image_gets_superpixels_of_the_part_in_view() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (1200, 1400, 3), dtype=np.uint8)
    image[200:600, 300:900] = (200, 40, 40)
    from app.features.editing.correction_engine import SP_MAX_PIXELS, superpixel_box

    view = (300, 200, 640, 460)
    box = superpixel_box(image.shape[:2], view)
    assert box == (215, 135, 725, 525)
    found = compute_superpixels(image, box, 16)
    assert found.scale == 1 and found.covers(view) and not found.covers((0, 0, 10, 10))
    region = found.fill(500, 300, 0.0)
    assert region.bbox.x0 >= box[0] and region.bbox.y0 >= box[1]
    core = Superpixels(np.ascontiguousarray(image[135:525, 215:725]))
    local = superpixel_fill(core, (285, 165))
    assert region.count == local.count and region.bbox.x0 == local.bbox.x0 + 215
    whole = compute_superpixels(image, (0, 0, 1400, 1200), 16)  # seen whole: a copy
    assert whole.scale > 1 and whole.superpixels.shape[0] * whole.superpixels.shape[1] \
        <= SP_MAX_PIXELS
    stroke = whole.brush([(500, 300), (560, 320)], 4)
    assert stroke.bbox.x0 <= 500 < stroke.bbox.x1 and stroke.to_full((1200, 1400))[300, 500]
