"""Projects own their classes, through the real window: File > New Project… from a
labels.txt, the class editor (rename, merge, delete with remap, undo: masks on disk follow
pixel for pixel), a class edit killed midway, reopening a project."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from pytestqt.qtbot import QtBot

from app.shell.main_window import MainWindow
from core.annotation.classes import delete_class, make_classes, merge_classes
from core.annotation.project import Project
from core.data.palette import VOC_PALETTE, VOID
from tests.app.conftest import Screenshot
from tests.app.features.projects.helpers import (
    CELL_CLASSES,
    disk_masks,
    errors,
    make_project,
    new_window,
    recorded_classes,
    scene_mask,
    write_images,
)


def voc(i: int) -> list[int]:
    return [int(v) for v in VOC_PALETTE[i]]


def type_into(qtbot: QtBot, edit: object, text: str) -> None:
    """Replace a line edit's text by typing, then Return (editingFinished)."""
    edit.clear()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def choose(box: object, data: object) -> None:
    """Pick the combo box entry holding ``data`` as a user does (activated too)."""
    index = box.findData(data)
    assert index >= 0, data
    box.setCurrentIndex(index)
    box.activated.emit(index)


def table_names(win: MainWindow) -> list[str]:
    table = win.projects_ui.dock.table
    return [table.topLevelItem(i).text(1) for i in range(table.topLevelItemCount())]


def test_new_project_from_a_labels_txt(qtbot: QtBot, window: MainWindow, tmp_path: Path,
                                       screenshot: Screenshot) -> None:
    photos = tmp_path / "photos"
    write_images(photos)
    (tmp_path / "many.txt").write_text("".join(f"c{i}\n" for i in range(300)))
    (tmp_path / "dup.txt").write_text("cell\nCell\n")
    labels = tmp_path / "labels.txt"
    labels.write_text("__ignore__\n_background_\ncell\nnucleus\n", encoding="utf-8")
    window.actions.new_project.trigger()
    dialog = window.projects_ui.dialog
    assert dialog is not None and dialog.isVisible()
    type_into(qtbot, dialog.images_edit, str(photos))
    assert dialog.images_note.text() == "3 image(s)"
    assert dialog.folder_edit.text() == str(photos / "fcn-studio-project")
    choose(dialog.source_box, "file")
    for bad, why in ((tmp_path / "many.txt", "300 classes"),
                     (tmp_path / "dup.txt", "differ only in case"),
                     (tmp_path / "none.txt", "none.txt")):
        type_into(qtbot, dialog.file_edit, str(bad))
        assert why in dialog.problem.text() and not dialog.create_button.isEnabled()
    type_into(qtbot, dialog.file_edit, str(labels))
    assert [dialog.preview.item(i).text() for i in range(dialog.preview.count())] == [
        "0  _background_", "1  cell", "2  nucleus"]
    assert dialog.create_button.isEnabled()
    qtbot.mouseClick(dialog.copy, Qt.MouseButton.LeftButton,
                     pos=QPoint(8, dialog.copy.height() // 2))  # (the button, not its row)
    assert dialog.copy_images()
    screenshot(dialog, "new_project_dialog")
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)

    project = window.projects.project
    folder = photos / "fcn-studio-project"
    assert project is not None and project.folder == folder and window.projects_ui.dialog is None
    assert project.class_names == ["_background_", "cell", "nucleus"]
    assert recorded_classes(folder) == [{"name": n, "color": voc(i)} for i, n in
                                        enumerate(project.class_names)]
    assert (folder / "class_names.txt").read_text().split() == project.class_names
    assert all(project.image(i).copied for i in project.ids())
    assert len(window.navigator.entries) == 3
    assert window.state.project_classes.names == project.class_names
    assert table_names(window) == project.class_names
    dock = window.projects_ui.dock
    qtbot.waitUntil(lambda: dock.isVisible())
    screenshot(dock, "project_dock")
    assert not errors(window)


def test_typed_classes_and_a_folder_that_holds_a_project(
        qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    images = write_images(photos, 2)
    make_project(photos / "fcn-studio-project", images, masks=False)
    dialog = window.projects_ui.new_project()
    type_into(qtbot, dialog.images_edit, str(photos))
    assert "already holds a project" in dialog.problem.text()
    type_into(qtbot, dialog.folder_edit, str(tmp_path / "other"))
    for line in ("background", "", "leaf", "  stem  "):
        qtbot.keyClicks(dialog.typed, line)
        qtbot.keyClick(dialog.typed, Qt.Key.Key_Return)
    assert dialog.classes and [c.name for c in dialog.classes] == ["background", "leaf", "stem"]
    dialog.typed.setPlainText("leaf\nleaf\n")
    assert "named twice" in dialog.problem.text() and not dialog.create_button.isEnabled()
    dialog.typed.setPlainText("a\n" + "x" * 101)
    assert "at most 100" in dialog.problem.text()


@pytest.fixture
def cells(tmp_path: Path) -> Path:
    """A project folder with four classes and three saved masks."""
    images = write_images(tmp_path / "cells")
    return make_project(tmp_path / "cells-project", images).folder


def test_class_edits_rewrite_the_masks_and_undo(qtbot: QtBot, window: MainWindow, cells: Path,
                                                screenshot: Screenshot) -> None:
    ui = window.projects_ui
    assert ui.open_project(cells)
    dock = ui.dock
    qtbot.waitUntil(lambda: window.state.document is not None)
    original = disk_masks(cells)
    originals = {k: (cells / "SegmentationClass" / f"{k}.png").read_bytes() for k in original}
    asked: list[str] = []
    dock.confirm = lambda text: asked.append(text) or True

    # add (Return in the name field), undone; then rename: no mask changes
    type_into(qtbot, dock.name_edit, "mitosis")
    assert table_names(window) == [*CELL_CLASSES, "mitosis"] and not errors(window)
    assert dock.selected() == 4
    qtbot.mouseClick(dock.undo_button, Qt.MouseButton.LeftButton)
    assert table_names(window) == CELL_CLASSES
    type_into(qtbot, dock.name_edit, "Cell")  # 'cell' but for case: refused, clearly
    assert "differ only in case" in errors(window)[-1] and table_names(window) == CELL_CLASSES
    dock.name_edit.setText("   ")
    qtbot.mouseClick(dock.add_button, Qt.MouseButton.LeftButton)
    assert "name is empty" in errors(window)[-1] and table_names(window) == CELL_CLASSES
    window.notifications.messages.clear()
    dock.select(1)
    dock.name_edit.setText("cell body")
    qtbot.mouseClick(dock.rename_button, Qt.MouseButton.LeftButton)
    assert Project.open(cells).class_names == ["_background_", "cell body", "nucleus", "debris"]
    assert {k: (cells / "SegmentationClass" / f"{k}.png").read_bytes() for k in original} \
        == originals

    # merge debris into cell body: pixel for pixel
    classes = make_classes(Project.open(cells).class_names)
    merge = merge_classes(classes, 3, 1)
    dock.select(3)
    choose(dock.merge_box, 1)
    qtbot.mouseClick(dock.merge_button, Qt.MouseButton.LeftButton)
    assert asked and "Merged 'debris' into 'cell body'" in asked[-1]
    merged = disk_masks(cells)
    for k, mask in original.items():
        np.testing.assert_array_equal(merged[k], merge.lut[mask])
    assert table_names(window) == ["_background_", "cell body", "nucleus"]
    note = window.notifications.last().text
    assert "Merged 'debris' into 'cell body'" in note and "3 mask(s) rewritten" in note

    # delete nucleus, its pixels to _background_
    delete = delete_class(merge.after, 2, into=0)
    dock.select(2)
    choose(dock.delete_box, 0)
    qtbot.mouseClick(dock.delete_button, Qt.MouseButton.LeftButton)
    for k, mask in disk_masks(cells).items():
        np.testing.assert_array_equal(mask, delete.lut[merge.lut[original[k]]])
    assert recorded_classes(cells) == [{"name": "_background_", "color": voc(0)},
                                       {"name": "cell body", "color": voc(1)}]
    screenshot(dock, "project_dock_after_edits")

    # the editor shows the renumbered mask in the project's classes
    window.editing.manager.set_annotating(True)
    session = window.editing.manager.session
    doc_id = window.state.document.path.stem
    assert session is not None and np.array_equal(session.labels, disk_masks(cells)[doc_id])
    box = window.editing.dock.class_box
    assert [box.itemText(i) for i in range(box.count())] == ["0  _background_", "1  cell body"]

    # undo the last class edit: the masks as they were before it, byte for byte
    assert "Last: Deleted 'nucleus'" in dock.last_label.text()
    qtbot.mouseClick(dock.undo_button, Qt.MouseButton.LeftButton)
    for k, mask in disk_masks(cells).items():
        np.testing.assert_array_equal(mask, merged[k])
    assert table_names(window) == ["_background_", "cell body", "nucleus"]
    assert not dock.undo_button.isEnabled()
    session = window.editing.manager.session
    assert session is not None and np.array_equal(session.labels, merged[doc_id])
    assert not errors(window)


def test_a_class_edit_waits_for_unsaved_masks_and_keeps_painting_safe(
        qtbot: QtBot, window: MainWindow, cells: Path) -> None:
    ui = window.projects_ui
    ui.open_project(cells)
    qtbot.waitUntil(lambda: window.state.document is not None)
    manager = window.editing.manager
    manager.set_annotating(True)
    session = manager.session
    edit = session.image.replace(np.full_like(session.labels, 3), label="all debris")
    session.push(edit)
    assert session.dirty
    ui.dock.select(3)
    ui.dock.confirm = lambda _text: True
    choose(ui.dock.delete_box, -1)  # pixels to void
    qtbot.mouseClick(ui.dock.delete_button, Qt.MouseButton.LeftButton)
    doc_id = window.state.document.path.stem
    saved = disk_masks(cells)[doc_id]
    assert (saved == VOID).all()  # saved first (all debris), then debris deleted to void
    assert not manager.dirty


class Crash(BaseException):
    """Stands for the app being killed at that moment."""


def test_a_class_edit_killed_midway_is_finished_when_the_project_opens_again(
        qtbot: QtBot, window: MainWindow, cells: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window.projects_ui.open_project(cells)
    qtbot.waitUntil(lambda: window.state.document is not None)
    original = disk_masks(cells)
    real, seen = Project.rewrite_mask, []

    def rewrite(self: Project, image_id: str, mask: np.ndarray) -> None:
        seen.append(image_id)
        if len(seen) == 2:
            raise Crash("killed among the masks")
        real(self, image_id, mask)

    monkeypatch.setattr(Project, "rewrite_mask", rewrite)
    dock = window.projects_ui.dock
    dock.confirm = lambda _text: True
    dock.select(2)
    choose(dock.merge_box, 3)
    with qtbot.capture_exceptions() as caught:
        qtbot.mouseClick(dock.merge_button, Qt.MouseButton.LeftButton)
    assert caught and isinstance(caught[0][1], Crash)
    monkeypatch.undo()
    half = disk_masks(cells)  # one mask renumbered, the others not yet
    assert sum(not np.array_equal(half[k], original[k]) for k in original) == 1

    again = new_window(qtbot)
    try:
        assert again.projects_ui.open_project(cells)
        edit = merge_classes(make_classes(CELL_CLASSES), 2, 3)
        assert again.projects.project.class_names == ["_background_", "cell", "debris"]
        for k, mask in disk_masks(cells).items():
            np.testing.assert_array_equal(mask, edit.lut[original[k]])
        assert any("was cut off" in n.text and "Merged 'nucleus' into 'debris'" in n.text
                   for n in again.notifications.messages)
        assert not errors(again)
    finally:
        again.controller.shutdown()


def test_reopening_a_project_brings_back_classes_colors_and_masks(
        qtbot: QtBot, window: MainWindow, cells: Path) -> None:
    ui = window.projects_ui
    ui.open_project(cells)
    qtbot.waitUntil(lambda: window.state.document is not None)
    ui.dock.select(2)
    ui.dock.pick_color = lambda _current: (10, 200, 30)
    qtbot.mouseClick(ui.dock.color_button, Qt.MouseButton.LeftButton)
    window.editing.manager.set_annotating(True)
    session = window.editing.manager.session
    session.push(session.image.replace(np.full_like(session.labels, 2), label="nucleus"))
    doc_id = window.state.document.path.stem
    window.close()  # saves
    assert (disk_masks(cells)[doc_id] == 2).all()

    again = new_window(qtbot)
    try:
        again.open_paths([cells])  # File > Open Folder on the project folder
        qtbot.waitUntil(lambda: again.state.document is not None)
        assert again.projects.folder == cells
        assert len(again.navigator.entries) == 3
        assert again.state.project_classes.colors[2] == (10, 200, 30)
        assert table_names(again) == CELL_CLASSES
        manager = again.editing.manager
        manager.set_annotating(True)
        again.navigator.go([e.image.stem for e in again.navigator.entries].index(doc_id))
        assert manager.session is not None and (manager.session.labels == 2).all()
        assert manager.layer.labels is manager.session.labels
        assert tuple(again.state.mask_colors()[2]) == (10, 200, 30)
        legend = again.legend
        qtbot.waitUntil(lambda: legend.topLevelItem(0) is not None
                        and legend.topLevelItem(1).text(0) == "cell", timeout=3000)
        assert legend.headerItem().text(1) == "Your mask"
        assert legend.topLevelItem(2).text(1) == "100.0%"
        scene = scene_mask(0)
        assert scene.shape == manager.session.labels.shape
    finally:
        again.controller.shutdown()
