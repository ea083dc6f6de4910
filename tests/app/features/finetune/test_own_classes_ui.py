"""Your own classes through the real window: a new model for the project's classes (from
the loaded model; ImageNet offline says which file to place where), training refused while
the classes differ, then heads-only training on every annotated image of the project
(rough strokes painted with the brush, a corrected mask) with a held-out image marked in
the file list, the file list's states, and the demo model's first-contact notice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, Qt
from pytestqt.qtbot import QtBot

from app.features.finetune import first_contact
from app.features.finetune.image_states import HELD_OUT, PREDICTED
from app.features.finetune.new_model_dialog import IMAGENET
from app.panels.file_list import FileList
from app.shell.main_window import MainWindow
from core.checkpoints.checkpoint import read_info
from core.data.imageio import read_mask
from core.training.own_classes import make_model
from tests.app.conftest import Screenshot, drag
from tests.app.features.projects.helpers import (
    CELL_CLASSES,
    errors,
    make_project,
    scene_mask,
    write_images,
)


def start_model(qtbot: QtBot, win: MainWindow, model: str | None = None) -> None:
    """Load the model (``$FCN_STUDIO_MODEL`` unless given), no images."""
    with qtbot.waitSignal(win.controller.modelLoaded, timeout=60000):
        win.start([], model=model)


def open_project(qtbot: QtBot, win: MainWindow, folder: Path) -> None:
    """Open the project and wait for its first image's prediction."""
    assert win.projects_ui.open_project(folder)
    qtbot.waitUntil(
        lambda: win.state.document is not None and win.state.prediction() is not None, timeout=60000
    )


def warnings(win: MainWindow) -> list[str]:
    return [n.text for n in win.notifications.messages if n.level == "warning"]


def test_new_model_for_the_project_is_made_from_the_loaded_model_and_loaded(
    qtbot: QtBot, window: MainWindow, tiny_model: Path, tmp_path: Path, screenshot: Screenshot
) -> None:
    images = write_images(tmp_path / "photos", 2)
    folder = make_project(tmp_path / "cells", images, masks=False).folder
    action = window.actions.new_model_for_project
    start_model(qtbot, window)
    assert not action.isEnabled()  # no project: nothing to take classes from
    open_project(qtbot, window, folder)
    assert action.isEnabled()
    # the banners offer it with a short text (kept when the action is enabled)
    assert window.projects_ui.dock.new_model_button.text() == "New model for these classes…"
    ft = window.finetune
    # the 4-class model cannot train on the project's masks: refused, clearly
    assert not ft.dock.mismatch.isHidden() and not ft.dock.train_button.isEnabled()
    assert "New Model for This Project's Classes" in ft.dock.mismatch_label.text()
    assert not ft.controller.start()
    assert "Cannot train on corrections: the model's classes" in warnings(window)[-1]

    action.trigger()
    dialog = ft.new_model.dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.chosen().init == str(tiny_model)  # the loaded model first
    assert [s.init for s in dialog.sources()][-1] == IMAGENET
    # "_background_" is "background" (case, underscores and spacing ignored)
    assert dialog.preview.text() == (
        "Keep their score weights: _background_. Start at zero: cell, nucleus, debris."
    )
    screenshot(dialog, "new_model_dialog")
    parent_id = window.models.info.id
    with qtbot.waitSignal(window.controller.modelLoaded, timeout=60000):
        qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    assert window.models.class_names() == CELL_CLASSES
    path = Path(window.models.checkpoint)
    assert path.parent == folder / "models" and path.is_file()
    info = read_info(path)
    assert info.parent == parent_id and info.class_names == CELL_CLASSES
    assert info.training["kept_classes"] == ["_background_"]
    assert info.training["new_classes"] == ["cell", "nucleus", "debris"]
    assert ft.new_model.dialog is None  # closed once made
    assert ft.controller.class_mismatch() is None
    assert ft.dock.mismatch.isHidden() and ft.dock.train_button.isEnabled()
    assert ft.dock.status.text().startswith(f"New model {info.name} ({path.name})")
    assert window.projects_ui.dock.banner.isHidden()
    assert any(
        "Made " in n.text and "1 kept their score weights" in n.text
        for n in window.notifications.messages
    )
    assert not errors(window)
    # the new model is a version of the lineage, its parent the loaded model
    versions = ft.controller.versions()
    assert [v.id for v in versions][:1] == [parent_id] and info.id in [v.id for v in versions]
    # not trained yet: its prediction knows nothing of the new classes, so annotating
    # starts rough labels (all void), not an all-background mask from that prediction
    qtbot.waitUntil(lambda: window.state.prediction() is not None, timeout=60000)
    manager = window.editing.manager
    assert manager.start_choice == "8s"
    manager.set_annotating(True)
    assert manager.session is not None and (manager.session.image.array == 255).all()
    assert any("not trained yet" in n.text and "cell, nucleus, debris" in n.text
               for n in window.notifications.messages)


def test_annotating_with_a_model_of_other_classes_starts_rough_labels(
    qtbot: QtBot, window: MainWindow, tiny_model: Path, tmp_path: Path
) -> None:
    """The loaded model's predictions cannot start a mask of the project's classes, so a
    new image's mask starts as rough labels (every pixel void) instead of failing."""
    images = write_images(tmp_path / "photos", 2)
    folder = make_project(tmp_path / "cells", images, masks=False).folder
    start_model(qtbot, window)
    open_project(qtbot, window, folder)
    manager = window.editing.manager
    assert manager.start_choice == "8s"
    manager.set_annotating(True)
    session = manager.session
    assert session is not None
    assert session.source.startswith("Rough labels")
    assert (session.image.array == 255).all()
    said = [n.text for n in window.notifications.messages if "start as rough labels" in n.text]
    assert len(said) == 1  # why the mask did not start from the chosen prediction
    assert manager.start("8s") is None  # a prediction start is still refused, with a reason
    assert "Map classes by name" in warnings(window)[-1]


def test_imagenet_offline_says_which_file_to_place_where(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    def offline(*_args: object, **_kwargs: object) -> None:
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = make_project(
        tmp_path / "cells", write_images(tmp_path / "photos", 1), masks=False
    ).folder
    start_model(qtbot, window)
    open_project(qtbot, window, folder)
    dialog = window.finetune.new_model.open_dialog()
    assert dialog.choose(IMAGENET)
    with qtbot.waitSignal(window.finetune.controller.modelFailed, timeout=60000):
        qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    text = dialog.message.text()
    assert dialog.message.isVisible() and text.startswith("No new model was made")
    assert "vgg16-397923af.pth" in text and str(tmp_path / "torch") in text
    assert errors(window)[-1] == text
    assert window.finetune.new_model.action.isEnabled() and dialog.create_button.isEnabled()
    assert not list((folder / "models").glob("*.safetensors"))


def test_training_uses_every_annotated_image_and_the_held_out_mark(
    qtbot: QtBot, window: MainWindow, tiny_model: Path, tmp_path: Path, screenshot: Screenshot
) -> None:
    images = write_images(tmp_path / "photos", 4)
    project = make_project(tmp_path / "cells", images, masks=False)
    ids = project.ids()
    project.save_mask(ids[1], scene_mask(1), True)  # a corrected (whole) mask
    project.save_mask(ids[2], scene_mask(2), True)  # to be held out
    model_path = project.folder / "models" / "cells.safetensors"
    _, info = make_model(CELL_CLASSES, tiny_model, model_path)
    start_model(qtbot, window, str(model_path))
    open_project(qtbot, window, project.folder)
    assert window.state.document.path == images[0]

    # rough labels on the shown image: a few strokes, the rest void
    editing = window.editing
    window.viewer.canvas.set_zoom(4.0)
    window.viewer.canvas.centerOn(QPointF(60, 45))
    assert editing.manager.start("empty-void") is not None
    editing.tools.set_size(5)
    for cls, y in ((0, 15), (1, 40), (2, 70)):
        editing.tools.set_class(cls)
        drag(qtbot, window, [(20, y), (90, y + 5)])
    assert editing.save_now()
    project = window.projects.project
    assert project.image_state(ids[0]) == "rough labels"
    saved = read_mask(project.mask_path(ids[0]))
    assert 0 < np.count_nonzero(saved != 255) < 0.5 * saved.size
    assert set(np.unique(saved)) == {0, 1, 2, 255}

    # hold out the third image from the file list's context menu
    states = window.finetune.states
    [hold] = states.context_actions(images[2])
    assert hold.text() == "Hold Out from Training" and not hold.isChecked()
    hold.trigger()
    assert project.held_out_ids() == [ids[2]]

    # the file list shows each image's state
    files = window.findChild(FileList)
    marks = [files.item_marks(row) for row in range(4)]
    assert "rough labels" in marks[0].tip and PREDICTED in marks[0].tags
    assert "corrected mask" in marks[1].tip and HELD_OUT not in marks[1].tags
    assert "corrected mask" in marks[2].tip and HELD_OUT in marks[2].tags
    assert "not annotated" in marks[3].tip and not marks[3].tags
    assert files.item(2).text().endswith(f"  {HELD_OUT}")
    assert not files.item(0).icon().isNull()
    assert "Held out: 1 image" in window.finetune.dock.held_label.text()

    # the job: every annotated image but the held-out one, whatever image is shown
    job = window.finetune.controller.build_job()
    assert job.ids == [ids[0], ids[1]]
    assert job.held_out == [(project.image_path(ids[2]), project.mask_path(ids[2]))]
    dock = window.finetune.dock
    window.docks["finetune"].show()
    window.docks["finetune"].raise_()
    dock.iterations.setValue(60)
    old = window.state.document.output(info.id, "8s").labels.copy()
    with qtbot.waitSignal(window.finetune.controller.finished, timeout=120000) as done:
        qtbot.mouseClick(dock.train_button, Qt.MouseButton.LeftButton)
    outcome = done.args[0]
    assert outcome.images == 2 and outcome.held_images == 1 and outcome.iterations == 60
    assert outcome.info.parent == info.id and outcome.info.class_names == CELL_CLASSES
    assert outcome.checkpoint.parent == project.folder / "models"
    # before/after per variant, on the trained images and the held-out one
    for key in ("corrected", "held out"):
        for variant in ("32s", "16s", "8s"):
            before, after = dock.table.value(key, variant, "pixel_acc")
            assert 0.0 <= before <= 1.0 and 0.0 <= after <= 1.0
    assert dock.table.item(5, 0).text().startswith("Held out (1)")
    b, a = dock.table.value("corrected", "8s", "pixel_acc")
    assert a > b  # trained on: better on its own labels
    assert "2 annotated image(s), 1 held out" in dock.status.text()
    new_id = outcome.info.id
    qtbot.waitUntil(
        lambda: window.state.model_id == new_id and window.state.prediction() is not None,
        timeout=60000,
    )
    new = window.state.document.output(new_id, "8s").labels
    assert (new != old).any()  # the predictions changed
    # the other images were segmented by the new version: ✓ in the file list
    qtbot.waitUntil(
        lambda: all(PREDICTED in files.item_marks(r).tags for r in range(4)), timeout=60000
    )
    screenshot(window, "own_classes_trained")
    assert not errors(window)


def test_the_demo_model_on_an_own_photo_is_said_once(
    qtbot: QtBot,
    window: MainWindow,
    tiny_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(first_contact, "bundled_model", lambda: tiny_model)  # the demo model
    photos = write_images(tmp_path / "photos", 2)
    with qtbot.waitSignal(window.controller.resultReady, timeout=60000):
        window.start([photos[0]])
    fc = window.finetune.first_contact
    qtbot.waitUntil(lambda: fc.said)
    notes = [n.text for n in window.notifications.messages if "bundled demo" in n.text]
    assert len(notes) == 1
    assert "generated shapes (background, disc, box, wire)" in notes[0]
    assert "File > New Project…" in notes[0] and "New Model for This Project's Classes" in notes[0]
    assert "Model > Download Published Models…" in notes[0]  # the other way on
    with qtbot.waitSignal(window.controller.resultReady, timeout=60000):
        window.navigator.open_paths([photos[1]])
    assert len([n for n in window.notifications.messages if "bundled demo" in n.text]) == 1
    assert window.settings.value(first_contact.SAID_KEY, False, bool)


def test_the_demo_model_on_its_own_samples_says_nothing(
    qtbot: QtBot,
    window: MainWindow,
    tiny_model: Path,
    samples: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(first_contact, "bundled_model", lambda: tiny_model)
    monkeypatch.setattr(first_contact, "bundled_samples", lambda: samples)
    with qtbot.waitSignal(window.controller.resultReady, timeout=60000):
        window.start([samples])
    assert not window.finetune.first_contact.said
    assert not [n for n in window.notifications.messages if "bundled demo" in n.text]


def test_the_app_and_cli_heads_only_train_the_same_model(
    qtbot: QtBot, window: MainWindow, tiny_model: Path, tmp_path: Path
) -> None:
    from core.checkpoints.checkpoint import load_checkpoint
    from core.cli import main as cli_main

    images = write_images(tmp_path / "photos", 3)
    project = make_project(tmp_path / "cells", images, masks=False)
    ids = project.ids()
    rough = np.full_like(scene_mask(0), 255)
    rough[10:20, 10:100], rough[40:45, 20:90] = 0, 1  # strokes, the rest void
    project.save_mask(ids[0], rough, rough != 255)
    project.save_mask(ids[1], scene_mask(1), True)
    project.save_mask(ids[2], scene_mask(2), True)
    project.set_held_out(ids[2], True)
    # the CLI: train --data <project> --init <the loaded model> --heads-only
    assert (
        cli_main(
            [
                "train",
                "--data",
                str(project.folder),
                "--out",
                str(tmp_path / "cli"),
                "--init",
                str(tiny_model),
                "--heads-only",
                "--iterations",
                "12",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    # the app: New Model for This Project's Classes (from the loaded model), then Train
    start_model(qtbot, window)
    open_project(qtbot, window, project.folder)
    ft = window.finetune
    dialog = ft.new_model.open_dialog()
    with qtbot.waitSignal(window.controller.modelLoaded, timeout=60000):
        qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    assert window.models.class_names() == CELL_CLASSES
    ft.dock.iterations.setValue(12)
    with qtbot.waitSignal(ft.controller.finished, timeout=120000) as done:
        assert ft.dock.train()
    outcome = done.args[0]
    assert outcome.images == 2 and outcome.held_images == 1
    app, app_info = load_checkpoint(outcome.checkpoint)
    cli, cli_info = load_checkpoint(tmp_path / "cli" / "model.safetensors")
    assert app_info.class_names == cli_info.class_names == CELL_CLASSES
    for key, value in app.state_dict().items():
        torch.testing.assert_close(value, cli.state_dict()[key], rtol=1e-4, atol=1e-5)
    start, _ = load_checkpoint(tmp_path / "cli" / "new-model.safetensors")
    assert not torch.equal(app.score_fr.weight, start.score_fr.weight)  # it did train
    assert read_info(outcome.checkpoint).parent == outcome.parent_id
