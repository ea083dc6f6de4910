"""Keeping annotations safe: autosave, atomic writes, close, reopen, labelme, VOC export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from pytestqt.qtbot import QtBot

from app.shell.main_window import MainWindow
from core.data.imageio import read_mask
from tests.app.conftest import CLASS_NAMES, drag, open_window
from tests.conftest import break_image_writes


def paint(qtbot: QtBot, win: MainWindow, cls: int = 2, y: int = 20) -> np.ndarray:
    """Start an empty mask if needed, paint one stroke; return a copy of the mask."""
    m = win.editing.manager
    session = m.session or m.start("empty")
    win.editing.tools.set_class(cls)
    win.editing.tools.set_size(5)
    drag(qtbot, win, [(10, y), (50, y + 5)])
    return session.labels.copy()


def project_dir(folder: Path) -> Path:
    # images in an images/ + masks/ dataset: the project goes beside them, not inside images/
    return folder / "fcn-studio-project"


def test_switching_images_autosaves_into_a_voc_project(
    qtbot: QtBot, editor: MainWindow, own_samples: Path
) -> None:
    mask = paint(qtbot, editor)
    session = editor.editing.manager.session
    corrected = session.corrections().copy()
    assert editor.isWindowModified()
    with qtbot.waitSignal(editor.controller.resultReady, timeout=60000):
        editor.actions.next_image.trigger()
    proj = project_dir(own_samples)
    assert np.array_equal(read_mask(proj / "SegmentationClass" / "sample_00.png"), mask)
    assert np.array_equal(read_mask(proj / "Corrections" / "sample_00.png") > 0, corrected)
    assert (proj / "class_names.txt").read_text().split() == CLASS_NAMES
    assert not editor.isWindowModified() and not session.dirty
    # going back shows the kept session (its undo history too)
    editor.actions.prev_image.trigger()
    assert editor.editing.manager.session is session and session.stack.canUndo()


def test_autosave_every_interval(qtbot: QtBot, editor: MainWindow, own_samples: Path) -> None:
    projects = editor.editing.projects
    assert projects.timer.isActive() and projects.timer.interval() == 30_000
    projects.timer.start(50)
    mask = paint(qtbot, editor)
    with qtbot.waitSignal(projects.saved, timeout=5000):
        pass
    saved = read_mask(project_dir(own_samples) / "SegmentationClass" / "sample_00.png")
    assert np.array_equal(saved, mask) and not editor.isWindowModified()


def test_a_write_failing_midway_leaves_the_previous_file_intact(
    qtbot: QtBot, editor: MainWindow, own_samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = paint(qtbot, editor, cls=1)
    assert editor.editing.save_now()
    target = project_dir(own_samples) / "SegmentationClass" / "sample_00.png"
    before = target.read_bytes()
    paint(qtbot, editor, cls=3, y=50)
    break_image_writes(monkeypatch)
    assert not editor.editing.save_now()
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert np.array_equal(read_mask(target), first)
    assert not [p for p in target.parent.parent.rglob("*") if ".tmp" in p.name]
    session = editor.editing.manager.session
    assert session.dirty and editor.isWindowModified()
    assert "disk went away" in session.save_error
    note = editor.notifications.last("error")
    assert "NOT saved" in note.text and "disk went away" in note.text
    assert "NOT saved" in editor.editing.dock.source_label.text()
    editor.editing.actions.save.trigger()  # the next save (Ctrl+S) writes it
    assert not editor.isWindowModified() and (read_mask(target) == 3).any()


def test_close_saves_and_reopening_restores_everything(
    qtbot: QtBot, editor: MainWindow, own_samples: Path
) -> None:
    mask = paint(qtbot, editor)
    corrected = editor.editing.manager.session.corrections().copy()
    assert editor.close()
    saved = read_mask(project_dir(own_samples) / "SegmentationClass" / "sample_00.png")
    assert np.array_equal(saved, mask)
    again = open_window(qtbot, own_samples)
    try:
        m = again.editing.manager
        assert m.annotating and m.session is not None and m.layer.isVisible()
        assert np.array_equal(m.session.labels, mask)
        assert np.array_equal(m.session.corrections(), corrected)
        assert not again.isWindowModified()
    finally:
        again.controller.shutdown()


def test_close_asks_when_a_save_fails(
    qtbot: QtBot, editor: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    mask = paint(qtbot, editor)
    asked: list[list[str]] = []

    def keep_open(failed: list[str]) -> bool:
        asked.append(failed)
        return False

    editor.editing.confirm_discard = keep_open
    monkeypatch.setattr(PIL.Image.Image, "save", lambda *a, **k: (_ for _ in ()).throw(
        OSError("read-only file system")))
    assert not editor.close()
    assert editor.isVisible() and len(asked) == 1 and "read-only" in asked[0][0]
    assert np.array_equal(editor.editing.manager.session.labels, mask)
    monkeypatch.undo()
    assert editor.close()


def test_a_project_folder_chosen_by_the_user(
    qtbot: QtBot, editor: MainWindow, tmp_path: Path
) -> None:
    assert editor.editing.choose_project(str(tmp_path / "my project"))
    mask = paint(qtbot, editor)
    assert editor.editing.save_now()
    saved = read_mask(tmp_path / "my project" / "SegmentationClass" / "sample_00.png")
    assert np.array_equal(saved, mask)


def labelme_file(path: Path, image: str, labels: list[str]) -> Path:
    shapes = [{"label": lab, "points": [[10 + 30 * i, 10], [40 + 30 * i, 12], [30 + 30 * i, 50]],
               "shape_type": "polygon", "group_id": None, "flags": {}}
              for i, lab in enumerate(labels)]
    doc = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image,
           "imageData": None, "imageHeight": 96, "imageWidth": 128}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_import_labelme(qtbot: QtBot, editor: MainWindow, own_samples: Path) -> None:
    from app.features.editing.labelme_import import label_map
    from core.data.labelme import import_labelme

    good = labelme_file(own_samples / "images" / "sample_01.json", "sample_01.png",
                        ["disc", "_background_", "wire"])
    bad = labelme_file(own_samples / "images" / "sample_02.json", "sample_02.png",
                       ["disc", "tree"])
    report = editor.editing.import_labelme([str(bad), str(good)])
    assert len(report.images) == 1 and len(report.errors) == 1
    error = editor.notifications.last("error").text
    assert "'tree'" in error and "sample_02.json" in error and "'disc'" in error
    proj = project_dir(own_samples)
    assert not (proj / "SegmentationClass" / "sample_02.png").exists()
    _, expected = import_labelme(good, label_map(CLASS_NAMES))  # _background_ = background
    assert np.array_equal(read_mask(proj / "SegmentationClass" / "sample_01.png"), expected)
    # the imported image is shown, with its mask loaded for editing
    assert editor.state.document.title == "sample_01.png"
    session = editor.editing.manager.session
    assert session is not None and np.array_equal(session.labels, expected)
    assert session.corrections() is True


def test_export_voc_that_core_train_accepts(
    qtbot: QtBot, editor: MainWindow, tmp_path: Path
) -> None:
    import torch

    from core.cli import main
    from core.data.voc import open_dataset

    paint(qtbot, editor)
    with qtbot.waitSignal(editor.controller.resultReady, timeout=60000):
        editor.actions.next_image.trigger()
    paint(qtbot, editor, cls=3)
    out = tmp_path / "voc"
    with qtbot.waitSignal(editor.editing.exporter.finished, timeout=30000):
        assert editor.editing.export_voc(str(out))
    train, names = open_dataset(out, split="train")
    val, _ = open_dataset(out, split="val")
    assert names == CLASS_NAMES and len(train) + len(val) == 2
    threads = torch.get_num_threads()
    try:
        rc = main(["train", "--data", str(out), "--out", str(tmp_path / "run"),
                   "--iterations", "1", "--batch-size", "1", "--crop", "48",
                   "--width", "0.0625", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0 and (tmp_path / "run" / "model.safetensors").is_file()


def test_autosave_waits_for_a_stroke_in_progress(
    qtbot: QtBot, editor: MainWindow, own_samples: Path
) -> None:
    from PySide6.QtCore import Qt

    from tests.app.conftest import vpos

    paint(qtbot, editor, cls=1, y=60)  # unsaved work: the next tick would save it...
    session = editor.editing.manager.session
    tools = editor.editing.tools
    tools.set_class(2)
    vp = editor.viewer.canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=vpos(editor, 10, 20))
    qtbot.mouseMove(vp, vpos(editor, 40, 25))  # ...but a stroke is half painted
    assert tools.busy and (session.labels == 2).any() and session.dirty
    projects = editor.editing.projects
    projects.timer.start(20)
    qtbot.wait(200)  # several autosave ticks with the stroke half painted
    target = project_dir(own_samples) / "SegmentationClass" / "sample_00.png"
    assert not target.exists() and session.dirty
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=vpos(editor, 60, 30))
    with qtbot.waitSignal(projects.saved, timeout=5000):
        pass
    projects.timer.stop()
    assert np.array_equal(read_mask(target), session.labels) and not session.dirty
