"""The fine-tune dock's results as a new user meets them: the whole before/after table in
view, why a prediction-started mask makes the figures red, and results that go stale when
another model or project folder is used."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, QRect, Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.features.finetune.results_table import WORSE
from app.shell.main_window import MainWindow
from tests.app.conftest import Screenshot, drag, make_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def correct_two_from_predictions(qtbot: QtBot, win: MainWindow) -> None:
    """The first two images: masks started from the FCN-8s prediction, one stroke each
    (through the mouse), saved; the third (it has a reference mask) is held out."""
    m = win.editing.manager
    assert m.start("8s") is not None and m.session.source == "FCN-8s prediction"
    for image in range(2):
        if image:
            with qtbot.waitSignal(win.controller.resultReady, timeout=60000):
                win.actions.next_image.trigger()
            qtbot.waitUntil(lambda: m.session is not None, timeout=10000)  # auto-started
            win.viewer.canvas.set_zoom(4.0)
            win.viewer.canvas.centerOn(QPointF(60, 45))
        win.editing.tools.set_class(3)
        win.editing.tools.set_size(9)
        drag(qtbot, win, [(40, 30), (80, 40)])
    assert win.editing.save_now()
    assert len(win.editing.projects.project.corrected_ids()) == 2


def train(qtbot: QtBot, win: MainWindow, steps: int) -> object:
    dock = win.finetune.dock
    win.docks["finetune"].show()
    win.docks["finetune"].raise_()
    dock.iterations.setValue(steps)
    with qtbot.waitSignal(win.finetune.controller.finished, timeout=120000) as done:
        qtbot.mouseClick(dock.train_button, Qt.MouseButton.LeftButton)
    outcome = done.args[0]
    qtbot.waitUntil(lambda: win.state.model_id == outcome.info.id, timeout=60000)
    return outcome


def in_view(win: MainWindow, widget: QWidget) -> bool:
    """Whether the whole ``widget`` lies inside the dock's visible area."""
    view = win.finetune.scroll.viewport()
    area = QRect(0, 0, view.width(), view.height())
    return area.contains(QRect(widget.mapTo(view, widget.rect().topLeft()), widget.size()))


def test_the_whole_table_shows_and_a_prediction_start_is_explained(
    qtbot: QtBot, editor: MainWindow, screenshot: Screenshot
) -> None:
    win = editor
    correct_two_from_predictions(qtbot, win)
    win.docks["finetune"].raise_()
    qtbot.waitUntil(win.finetune.dock.isVisible, timeout=5000)
    dock_size = win.docks["finetune"].size()  # the default size in a 1280 x 800 window
    train(qtbot, win, 40)
    dock, table = win.finetune.dock, win.finetune.dock.table
    assert win.docks["finetune"].size() == dock_size  # the default size, as it was
    # every row inside the table (it has no scrollbar of its own) and the table scrolled
    # into the dock's view
    assert table.rowCount() == 10 and table.all_rows_visible()
    assert not table.verticalScrollBar().isVisible()
    assert not table.horizontalScrollBar().isVisible()
    qtbot.waitUntil(lambda: in_view(win, table), timeout=5000)
    if dock.results.height() <= win.finetune.scroll.viewport().height():
        assert in_view(win, dock.results)  # with its caption when both fit
    assert not win.finetune.scroll.horizontalScrollBar().isVisible()  # the columns fit
    # why FCN-8s's figures on the corrected images drop: said under the table ...
    assert dock.caption.isVisible()
    text = dock.caption.text()
    assert "FCN-8s prediction (2 of 2 images)" in text and "held-out rows" in text
    # ... and in the tooltip of each red FCN-8s cell of the corrected images
    worse = [table.cell("corrected", "8s", m) for m in ("pixel_acc", "mean_acc", "mean_iu",
                                                        "fw_iu")]
    worse = [c for c in worse if c.foreground().color() == WORSE]
    assert worse, "the 8s figures against masks started from its prediction drop"
    assert all("scored largely against itself" in c.toolTip() for c in worse)
    held = table.cell("held out", "8s", "mean_iu")
    assert "against itself" not in held.toolTip()
    screenshot(win, "finetune_prediction_start")
    screenshot(win.docks["finetune"], "finetune_prediction_start_dock")


def test_results_of_another_model_or_project_are_marked(
    qtbot: QtBot, editor: MainWindow, tmp_path: Path, screenshot: Screenshot
) -> None:
    win = editor
    correct_two_from_predictions(qtbot, win)
    outcome = train(qtbot, win, 5)
    dock, ui = win.finetune.dock, win.finetune
    assert not dock.stale_label.isVisible() and not dock.table.stale
    assert [v.id for v in ui.controller.versions()] == [outcome.parent_id, outcome.info.id]
    # another model: the results are marked as the previous one's, its versions not listed
    other = make_checkpoint(tmp_path / "other.safetensors", seed=3)
    with qtbot.waitSignal(win.controller.modelLoaded, timeout=60000):
        win.inference.load_model(str(other))
    assert dock.stale_label.isVisible() and dock.table.stale and dock.curve.stale
    assert "results of the last fine-tune" in dock.stale_label.text()
    assert "other.safetensors" in dock.stale_label.text()
    cell = dock.table.cell("corrected", "8s", "mean_iu")
    assert cell.foreground().color().name() == "#8c8c8c"  # gray, neither red nor green
    assert not dock.caption.isEnabled()
    assert "correct some masks" in dock.status.text()
    assert dock.versions.topLevelItemCount() == 1
    assert dock.versions.topLevelItem(0).childCount() == 0
    assert "(in use)" in dock.versions.topLevelItem(0).text(0)
    assert len(ui.fill_versions_menu()) == 1
    screenshot(win.docks["finetune"], "finetune_stale_dock")
    # back to the new version: they are its results again
    with qtbot.waitSignal(win.controller.modelLoaded, timeout=60000):
        win.inference.load_model(str(outcome.checkpoint))
    assert not dock.stale_label.isVisible() and not dock.table.stale
    assert dock.status.text().startswith("Done in")
    assert dock.versions.topLevelItem(0).childCount() == 1
    # another project folder: marked again
    assert win.editing.choose_project(str(tmp_path / "another-project"))
    assert dock.stale_label.isVisible() and "project folder" in dock.stale_label.text()
