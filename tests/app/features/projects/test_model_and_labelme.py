"""A project's classes against the model's and against labelme files, through the real
window: a model with other classes is said once, its classes map by name, autosave keeps
working; a labelme label the project lacks is offered, added and imported in the
project's numbering; a labelme file beside an image becomes its mask on open, shown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.features.editing.labelme_import import label_map
from app.panels.stats_panel import AGAINST_EDITED
from app.shell.main_window import MainWindow
from app.state.project_classes import VOID_COLOR
from core.annotation.classes import map_by_name
from core.data.imageio import read_mask
from core.data.labelme import import_labelme
from tests.app.conftest import CLASS_NAMES, Screenshot, drag, make_checkpoint, open_window
from tests.app.features.projects.helpers import errors, make_project


def labelme_file(path: Path, image: str, labels: list[str]) -> Path:
    """A labelme JSON file with one triangle per label, over ``image``."""
    shapes = [{"label": lab, "points": [[10 + 30 * i, 10], [40 + 30 * i, 12], [30 + 30 * i, 50]],
               "shape_type": "polygon", "group_id": None, "flags": {}}
              for i, lab in enumerate(labels)]
    doc = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image,
           "imageData": None, "imageHeight": 96, "imageWidth": 128}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def mismatch_notes(win: MainWindow) -> list[str]:
    return [n.text for n in win.notifications.messages if "has other classes" in n.text]


def test_labelme_labels_the_project_lacks_are_offered_then_imported(
        qtbot: QtBot, editor: MainWindow, own_samples: Path, screenshot: Screenshot) -> None:
    images = own_samples / "images"
    manager, dock = editor.editing.manager, editor.projects_ui.dock
    path = labelme_file(images / "sample_02.json", "sample_02.png", ["disc", "tree", "Box"])
    report = editor.editing.import_labelme([str(path)])
    assert not report.images and "'tree'" in report.errors[0]
    assert "Nothing was renumbered" in report.errors[0]
    assert dock.offer.isVisible() and "'tree'" in dock.offer_text.text()
    qtbot.waitUntil(dock.isVisible)
    qtbot.wait(100)  # (laid out)
    screenshot(dock.parentWidget().parentWidget(), "project_dock_label_offer")  # the scroll area
    folder = own_samples / "fcn-studio-project"
    assert not (folder / "SegmentationClass" / "sample_02.png").exists()

    qtbot.mouseClick(dock.accept_offer_button, Qt.MouseButton.LeftButton)
    names = [*CLASS_NAMES, "tree"]
    assert editor.projects.project.class_names == names and not dock.offer.isVisible()
    _, expected = import_labelme(path, label_map(names, ["disc", "tree", "Box"]))
    saved = read_mask(folder / "SegmentationClass" / "sample_02.png")
    np.testing.assert_array_equal(saved, expected)
    assert {int(v) for v in np.unique(saved)} == {0, 1, 2, 4}  # Box is box (2), tree new (4)
    assert (folder / "class_names.txt").read_text().split() == names

    # declined: the file is not imported, nothing is offered, the error names the label
    manager.ask_add_labels = lambda labels, file: False
    sky = labelme_file(images / "sky.json", "sample_00.png", ["sky"])
    report = editor.editing.import_labelme([str(sky)])
    assert "'sky'" in report.errors[0] and not dock.offer.isVisible()
    assert "sky" in manager.declined_labels

    # a good file shows at once, Annotate turned on
    assert not manager.annotating
    good = labelme_file(images / "other.json", "sample_00.png", ["tree", "wire"])
    report = editor.editing.import_labelme([str(good)])
    assert report.images and not report.errors
    _, expected = import_labelme(good, label_map(names, ["tree", "wire"]))
    assert manager.annotating and manager.layer.isVisible()
    assert editor.state.document.title == "sample_00.png"
    np.testing.assert_array_equal(manager.layer.labels, expected)


def test_a_labelme_file_beside_an_image_becomes_its_mask_on_open(
        qtbot: QtBot, editor: MainWindow, own_samples: Path) -> None:
    images = own_samples / "images"
    manager = editor.editing.manager
    beside = labelme_file(images / "sample_01.json", "sample_01.png", ["wire", "_background_"])
    labelme_file(images / "sample_02.json", "elsewhere.png", ["disc"])  # not its annotation
    editor.navigator.go(1)
    qtbot.waitUntil(lambda: manager.session is not None, timeout=5000)
    _, expected = import_labelme(beside, label_map(CLASS_NAMES, ["wire", "_background_"]))
    np.testing.assert_array_equal(manager.session.labels, expected)
    assert manager.annotating and manager.layer.isVisible()
    folder = own_samples / "fcn-studio-project"
    np.testing.assert_array_equal(read_mask(folder / "SegmentationClass" / "sample_01.png"),
                                  expected)
    manager.set_annotating(False)
    editor.navigator.go(2)
    qtbot.wait(50)
    assert manager.session is None and not (folder / "SegmentationClass" /
                                            "sample_02.png").exists()
    assert not errors(editor)


def test_a_model_with_other_classes(qtbot: QtBot, app_env: None, own_samples: Path,
                                    tmp_path: Path, screenshot: Screenshot) -> None:
    images = sorted((own_samples / "images").glob("*.png"))
    names = ["_background_", "wire", "disc", "tree"]
    make_project(own_samples / "fcn-studio-project", images, names, masks=False)
    win = open_window(qtbot, own_samples)  # the 4-class model: background, disc, box, wire
    try:
        st, manager, dock = win.state, win.editing.manager, win.projects_ui.dock
        assert win.projects.project.class_names == names
        assert len(mismatch_notes(win)) == 1 and not errors(win)
        assert not dock.banner.isHidden() and dock.map_button.text() == "Map classes by name"
        assert manager.start("8s") is None  # not without a choice
        assert "Map classes by name" in win.notifications.last("warning").text

        qtbot.mouseClick(dock.map_button, Qt.MouseButton.LeftButton)
        assert st.project_classes.map_by_name and "3 of 4 model classes" in \
            dock.banner_text.text() and dock.map_button.text() == "✓ Mapped by name"
        lut = map_by_name(CLASS_NAMES, names)
        assert lut[:4].tolist() == [0, 2, 255, 1]
        colors = st.project_classes.colors
        assert st.colors() == [colors[0], colors[2], VOID_COLOR, colors[1]]  # the overlay
        pred = st.output("8s").labels
        session = manager.start("8s")
        np.testing.assert_array_equal(session.labels, lut[pred])
        box = win.editing.dock.class_box
        assert [box.itemText(i) for i in range(box.count())] == [
            f"{i}  {n}" for i, n in enumerate(names)]

        # paint 'tree' (3), autosave on the timer: saved in the project's numbering
        win.editing.tools.set_class(3)
        win.editing.tools.set_size(5)
        drag(qtbot, win, [(10, 20), (50, 25)])
        assert (session.labels == 3).any()
        win.projects.timer.timeout.emit()
        folder = own_samples / "fcn-studio-project"
        doc_id = st.document.path.stem
        np.testing.assert_array_equal(read_mask(folder / "SegmentationClass" / f"{doc_id}.png"),
                                      session.labels)
        assert not session.dirty and not errors(win)

        # the legend while annotating and the statistics against the mask: the project's
        legend = win.legend
        qtbot.waitUntil(lambda: legend.topLevelItemCount() == 4
                        and legend.topLevelItem(3).text(0) == "tree", timeout=3000)
        win.stats.set_against(AGAINST_EDITED)
        qtbot.waitUntil(lambda: "your corrected mask" in win.stats.note.text(), timeout=3000)
        assert "other classes" not in win.stats.note.text()
        win.projects_ui.host.show_dock("project")
        screenshot(win, "model_with_other_classes")

        # another model with other classes again: said once more (once per model), and
        # autosave keeps working
        other = make_checkpoint(tmp_path / "five.safetensors", num_classes=5)
        with qtbot.waitSignal(win.models.changed, timeout=60000):
            win.load_model(str(other))
        assert len(mismatch_notes(win)) == 2
        session = manager.session
        drag(qtbot, win, [(60, 60), (80, 62)])
        win.projects.timer.timeout.emit()
        win.navigator.next()
        win.navigator.previous()
        win.projects.timer.timeout.emit()
        assert len(mismatch_notes(win)) == 2 and not errors(win)
        np.testing.assert_array_equal(read_mask(folder / "SegmentationClass" / f"{doc_id}.png"),
                                      manager.session.labels)
    finally:
        win.controller.shutdown()
