"""Fine-tuning from the UI: train on corrections, before/after table, versions, cancel."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.canvas.overlays import CHANGE_COLOR
from app.common.render import qimage_to_rgb
from app.shell.main_window import MainWindow
from tests.app.conftest import Screenshot


@pytest.fixture
def corrected(qtbot: QtBot, window: MainWindow, samples: Path, tmp_path: Path) -> MainWindow:
    """A window whose first two samples were corrected (saved to the project); the third,
    with a reference mask, is held out."""
    folder = Path(shutil.copytree(samples, tmp_path / "samples"))
    with qtbot.waitSignal(window.controller.resultReady, timeout=60000):
        window.start([folder])
    m = window.editing.manager
    assert m.start("reference") is not None  # the whole mask is the user's
    with qtbot.waitSignal(window.controller.resultReady, timeout=60000):
        window.actions.next_image.trigger()
    assert m.start("reference") is not None
    assert window.editing.save_now()
    assert len(window.editing.projects.project.corrected_ids()) == 2
    return window


def test_train_on_corrections_fills_the_table_and_adds_a_version(
    qtbot: QtBot, corrected: MainWindow, screenshot: Screenshot
) -> None:
    win = corrected
    ui, dock = win.finetune, win.finetune.dock
    old_id = win.controller.model.info.id
    win.docks["finetune"].show()
    win.docks["finetune"].raise_()
    dock.iterations.setValue(40)
    with qtbot.waitSignal(ui.controller.finished, timeout=120000) as done:
        qtbot.mouseClick(dock.train_button, Qt.MouseButton.LeftButton)
        assert not dock.train_button.isEnabled() and dock.cancel_button.isEnabled()
    outcome = done.args[0]
    assert outcome.iterations == 40 and outcome.images == 2 and outcome.held_images == 1
    assert outcome.info.parent == old_id and outcome.checkpoint.is_file()
    assert outcome.checkpoint.parent == win.editing.projects.folder / "models"
    # the before/after table: four metrics per variant, corrected and held-out images
    assert dock.table.rowCount() == 10
    for key in ("corrected", "held out"):
        for variant in ("32s", "16s", "8s"):
            for metric in ("pixel_acc", "mean_acc", "mean_iu", "fw_iu"):
                before, after = dock.table.value(key, variant, metric)
                assert 0.0 <= before <= 1.0 and 0.0 <= after <= 1.0
    assert dock.table.item(5, 0).text().startswith("Held out (1)")
    assert dock.table.value("corrected", "8s", "pixel_acc")[1] > \
        dock.table.value("corrected", "8s", "pixel_acc")[0]
    assert not dock.caption.isVisible()  # the masks are the user's whole (the references)
    assert len(dock.curve.xs) == 40 and dock.curve.plot is not None
    # the new version is loaded and the image segmented again with it
    new_id = outcome.info.id
    qtbot.waitUntil(lambda: win.state.model_id == new_id and win.state.prediction() is not None,
                    timeout=60000)
    # what changed: the pixels whose 8s class differs from the parent's prediction
    doc = win.state.document
    old8, new8 = doc.output(old_id, "8s").labels, doc.output(new_id, "8s").labels
    win.tabs.setCurrentWidget(win.viewer)
    win.actions.show_changes.trigger()
    win.viewer.refresh_now()
    marks = win.viewer.marks_layer.buffer
    assert marks is not None and win.viewer.caption.isVisible()
    rgb = qimage_to_rgb(marks.image)
    assert np.array_equal((rgb == CHANGE_COLOR).all(-1), old8 != new8)
    assert f"{(old8 != new8).mean():.2%}" in win.viewer.caption.text()
    assert (old8 != new8).any()  # 40 steps on corrected references do change the output
    screenshot(win, "finetune_changes")
    win.tabs.setCurrentWidget(win.compare)
    win.compare.refresh_now()
    for variant in ("32s", "16s", "8s"):
        pane = win.compare.panes[variant]
        changed = doc.output(old_id, variant).labels != doc.output(new_id, variant).labels
        pane_rgb = qimage_to_rgb(pane.marks.buffer.image)
        assert np.array_equal((pane_rgb == CHANGE_COLOR).all(-1), changed)
        assert pane.caption.text().startswith(f"changed on {changed.mean():.2%}")
    win.tabs.setCurrentWidget(win.viewer)
    win.actions.show_changes.trigger()
    win.viewer.refresh_now()
    assert not win.viewer.caption.isVisible()
    actions = ui.fill_versions_menu()
    assert len(actions) == 2
    assert actions[1].isChecked() and "↳" in actions[1].text() and old_id[:8] in actions[1].text()
    assert dock.versions.topLevelItemCount() == 1
    assert dock.versions.topLevelItem(0).childCount() == 1
    win.resize(1500, 1100)
    win.resizeDocks([win.docks["finetune"]], [470], Qt.Orientation.Horizontal)
    win.docks["finetune"].raise_()
    qtbot.wait(50)
    ui.scroll.verticalScrollBar().setValue(0)
    screenshot(win, "finetune")
    screenshot(dock, "finetune_dock")
    # switch back to the parent version
    with qtbot.waitSignal(win.controller.modelLoaded, timeout=60000):
        actions[0].trigger()
    assert win.controller.model.info.id == old_id and win.state.model_id == old_id
    assert ui.fill_versions_menu()[0].isChecked()


def test_cancel_keeps_the_old_model(qtbot: QtBot, corrected: MainWindow) -> None:
    win = corrected
    ui, dock = win.finetune, win.finetune.dock
    old = win.controller.model
    dock.iterations.setValue(100_000)
    with qtbot.waitSignal(ui.controller.progress, timeout=60000):
        assert dock.train()
    with qtbot.waitSignal(ui.controller.cancelled, timeout=30000):
        qtbot.mouseClick(dock.cancel_button, Qt.MouseButton.LeftButton)
    assert win.controller.model is old and win.state.model_id == old.model_id
    models = win.editing.projects.folder / "models"
    assert not models.exists() or not list(models.iterdir())
    assert "unchanged" in dock.status.text() and dock.train_button.isEnabled()
    assert len(ui.fill_versions_menu()) == 1


def test_training_without_corrections_explains_why(qtbot: QtBot, loaded_window: MainWindow
                                                   ) -> None:
    assert not loaded_window.finetune.start()
    assert "No corrected image" in loaded_window.notifications.last("warning").text


def test_options_reach_the_job(qtbot: QtBot, corrected: MainWindow) -> None:
    dock, ctl = corrected.finetune.dock, corrected.finetune.controller
    dock.mode_box.setCurrentIndex(dock.mode_box.findData("full"))
    dock.mode_box.activated.emit(dock.mode_box.currentIndex())
    assert dock.iterations.value() == 500 and dock.lr.value() == pytest.approx(1e-4)
    dock.corrected_only.setChecked(True)
    dock.mix.setChecked(True)
    dock.iterations.setValue(7)
    corrected.docks["finetune"].show()
    # the dock's own widgets, through its Train button, make the job (no options set by hand)
    with qtbot.waitSignal(ctl.busyChanged, timeout=10000):
        qtbot.mouseClick(dock.train_button, Qt.MouseButton.LeftButton)
    job = ctl.job
    assert job is not None
    assert job.config.mode == "full" and job.config.corrected_only
    assert job.config.iterations == 7 and job.config.lr == pytest.approx(1e-4)
    third = corrected.navigator.entries[2]
    assert job.config.mix_original == [(third.image, third.mask)] and job.held_out == []
    assert job.out_path.name == "tiny-ft1.safetensors" and job.preview is not None
    with qtbot.waitSignal(ctl.busyChanged, timeout=120000):  # cancelled (or done)
        ctl.cancel()
